"""Writing files safely: one ``atomic_write``, one ``to_jsonable``, one file fingerprint.

Every file impbench writes appears complete or not at all: it is written to a unique temporary
name in the same folder, then renamed over the target (``os.replace`` is atomic on POSIX). The
temporary file gets ordinary permissions (``0o666`` less the umask), not ``mkstemp``'s 0600.
"""

from __future__ import annotations

import dataclasses
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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def temp_path(path: str | os.PathLike, suffix: str = TMP_SUFFIX) -> Path:
    """A fresh, empty temporary file beside ``path`` (for writers that fill it themselves and
    rename it with ``os.replace`` when complete). The caller removes it on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return Path(tmp)


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
