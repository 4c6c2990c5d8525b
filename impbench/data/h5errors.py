"""HDF5's failures while a store is written (a full disk), made into what the rest of impbench
handles: ``h5_os_error`` (h5py's ``RuntimeError`` -> ``OSError`` with the errno it names),
quiet ``__dealloc__`` noise, and ``HDF5_UNCLEAN`` for the command line's exit.

h5py reports some failed writes as ``RuntimeError`` (at close: "Disable slist on flush dest
failure failed (... errno = 28 ...)"), prints the failures of releasing its ids from
``__dealloc__`` as tracebacks, and after such a failure HDF5's library cleanup at process
exit can crash (SIGSEGV) even with every file closed.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from typing import Any

#: True once a store's HDF5 file was given up after a failed write: the command line then ends
#: its process without HDF5's cleanup (``impbench.cli.main``).
HDF5_UNCLEAN = False


def mark_unclean() -> None:
    global HDF5_UNCLEAN
    HDF5_UNCLEAN = True


def h5_os_error(error: BaseException, path: str | os.PathLike) -> OSError:
    """An ``OSError`` for an h5py ``RuntimeError`` (HDF5 reports a failed write at close that
    way): its errno when the message names one (``errno = 28``: a full disk), else ``EIO``;
    ``filename`` is ``path``."""
    text = str(error)
    match = re.search(r"errno = (\d+)", text)
    if match:
        code = int(match.group(1))
        return OSError(code, os.strerror(code), str(path))
    first = text.splitlines()[0] if text else type(error).__name__
    return OSError(errno.EIO, f"HDF5 write failed: {first[:200]}", str(path))


def _quiet_h5_unraisable(unraisable: Any) -> None:
    """``sys.unraisablehook`` while a store is written: h5py's failures to release an id on a
    full disk (raised in ``__dealloc__``, so printed as tracebacks) are not shown; the write
    that fails reports the disk once. Anything else goes to the previous hook."""
    if issubclass(unraisable.exc_type, (OSError, RuntimeError)) and "h5py" in repr(unraisable.object):
        return
    _PREVIOUS_UNRAISABLE_HOOK(unraisable)


def _quiet_h5_excepthook(exc_type: type, exc: BaseException, tb: Any) -> None:
    """``sys.excepthook`` while a store is written: Cython prints a ``__dealloc__``'s exception
    through it too (h5py's ``ObjectID._dealloc`` on a full disk); those are not shown."""
    import traceback

    frames = traceback.extract_tb(tb) if tb is not None else []
    if issubclass(exc_type, (OSError, RuntimeError)) and frames and all("_objects.pyx" in f.filename for f in frames):
        return
    _PREVIOUS_EXCEPTHOOK(exc_type, exc, tb)


_PREVIOUS_UNRAISABLE_HOOK = sys.unraisablehook
_PREVIOUS_EXCEPTHOOK = sys.excepthook


def quiet_dealloc_errors() -> None:
    """Install the two hooks above (once; they pass anything else on)."""
    sys.unraisablehook, sys.excepthook = _quiet_h5_unraisable, _quiet_h5_excepthook
