"""Test helpers for checking that processes end: a plugin that runs an external tool tests that
the tool dies with its caller (``impbench.imputers.tools``) with these."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie or a dead process is not alive)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_for(predicate: Callable[[], object], seconds: float) -> bool:
    """Poll ``predicate`` every 50 ms for up to ``seconds``; its last answer, as a bool."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def read_pid(path: Path, seconds: float = 20) -> int:
    """The pid a process wrote into ``path`` (waiting up to ``seconds`` for it)."""
    path = Path(path)
    assert wait_for(lambda: path.is_file() and path.read_text().strip(), seconds), f"{path} never written"
    return int(path.read_text())


def kill_all(*pids: int) -> None:
    """SIGKILL the processes of ``pids`` that are still alive (test clean-up)."""
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
