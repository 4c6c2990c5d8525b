"""Writing files safely: one ``atomic_write``, one ``to_jsonable``, one file fingerprint.

Every file impbench writes appears complete or not at all: it is written to a unique temporary
name in the same folder, then renamed over the target (``os.replace`` is atomic on POSIX). The
temporary file gets ordinary permissions (``0o666`` less the umask), not ``mkstemp``'s 0600.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

#: Temporary files are named ``.<name>.<random>.tmp`` beside their target.
TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, data: str | bytes, *, suffix: str = TMP_SUFFIX) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` through a temporary file in the
    same folder and a rename; the folder is created when missing. Returns the path.

    On any error (a full disk included) the temporary file is removed and the exception
    propagates; a previous file at ``path`` stays as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        name_os_error(error, path)
        raise
    return path


#: ``errno`` values of a write that the user must fix (disk full, quota, read-only, permission):
#: the CLI reports them as one line naming the path, not as a traceback.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def name_os_error(error: BaseException, path: str | os.PathLike) -> None:
    """Give an ``OSError`` without a file name (a ``write`` on an open file: disk full) the
    name of the file being written, so its one-line report names it."""
    if isinstance(error, OSError) and error.filename is None:
        error.filename = str(path)


def os_error_reason(error: OSError) -> str:
    """The short reason of an ``OSError`` ("No space left on device"), also for h5py's, whose
    ``strerror`` is a long HDF5 message but whose ``errno`` is set."""
    if error.errno:
        try:
            return os.strerror(error.errno)
        except ValueError:  # pragma: no cover - an unknown errno
            pass
    text = str(error.strerror or error or type(error).__name__)
    return text.splitlines()[0] if text else type(error).__name__


def os_error_line(error: OSError, path: str | os.PathLike | None = None) -> str:
    """``"<path>: <reason>"`` for an ``OSError``: the path it names (else ``path``) and the
    short reason; a rename names both paths."""
    where = error.filename if error.filename is not None else path
    if error.filename is not None and error.filename2 is not None:
        where = f"{error.filename} -> {error.filename2}"
    reason = os_error_reason(error)
    return f"{where}: {reason}" if where is not None else reason


def to_jsonable(value: Any) -> Any:
    """Dataclasses, mappings, sequences, numpy scalars/arrays and paths as plain JSON values;
    non-finite floats become None; anything else with ``to_dict`` is converted, else ``str``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "to_dict"):
        return to_jsonable(value.to_dict())
    return str(value)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """``data`` as indented JSON (through ``to_jsonable``), written atomically."""
    return atomic_write(path, json.dumps(to_jsonable(data), indent=2) + "\n")


def file_fingerprint(path: str | os.PathLike) -> dict:
    """``{"path", "size", "mtime_ns"}`` of an existing file (its resolved path): what decides
    whether something made from it is still current. ``OSError`` when it is missing."""
    path = Path(path)
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
