"""Stopping a run on SIGINT/SIGTERM: ``RunInterrupted`` and the context that raises it."""

from __future__ import annotations

import signal
import threading
from typing import Any


class RunInterrupted(BaseException):
    """The run was stopped by SIGINT or SIGTERM; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


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
