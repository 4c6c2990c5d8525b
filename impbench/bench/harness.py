"""The harness process: stopping a run on SIGINT/SIGTERM, checking the output folder before
anything is created, and which work holds a GPU."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

from impbench.errors import ImpbenchError


class RunInterrupted(BaseException):
    """The run was stopped by SIGINT or SIGTERM; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


def wants_gpu(cls: type, device: str) -> bool:
    """Whether an imputer's work holds a GPU: a torch imputer (``impbench.nn``) on a machine with
    a GPU driver, unless ``--device cpu``."""
    from impbench.bench.settings import _gpu_driver_present

    if device == "cpu" or not _gpu_driver_present():
        return False
    return any(base.__module__.startswith("impbench.nn") for base in cls.__mro__)


class signals_raise_interrupted:
    """While inside: SIGINT and SIGTERM raise ``RunInterrupted`` (main thread only)."""

    def __enter__(self) -> "signals_raise_interrupted":
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, _raise_interrupted)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise RunInterrupted(signum)


def check_output_folder(folder: Path) -> None:
    """``ImpbenchError`` unless ``folder`` is (or can be created as) a writable folder; creates nothing."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ImpbenchError(f"output folder {folder} is not a folder")
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ImpbenchError(f"output folder {folder} is not writable ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ImpbenchError(f"output folder {folder} is not writable (Permission denied)")
