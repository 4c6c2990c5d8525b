"""Running one Minimac4 process in its own session: console capture, time limit, and the whole
process group killed on timeout or interruption.

The tool dies with the harness: its own session (``os.setsid``) with a parent-death signal
(Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so a SIGKILLed harness takes it along; on
SIGTERM or SIGHUP (when nothing else handles them), Ctrl-C, a time limit or any exception
while waiting, its whole process group is killed before the harness goes on. Each call works
in a folder of its own (``new_call_dir``). (The same mechanism as the Beagle plugin's
``process`` module; plugins share no code but the core's.)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from impbench.errors import ImpbenchError

#: How many console lines a failure message quotes.
TAIL_LINES = 4
_POLL_S = 0.02


@dataclass(frozen=True)
class ToolRun:
    """A finished run. console : captured stdout+stderr; wall_s : seconds; peak_rss_mb : MiB."""

    argv: tuple[str, ...]
    console: Path
    wall_s: float
    peak_rss_mb: float


def console_tail(path: Path, n_lines: int = TAIL_LINES) -> str:
    """The last ``n_lines`` non-blank lines of ``path`` joined by " | " ("(no output)" if none)."""
    try:
        lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return " | ".join(lines[-n_lines:]) if lines else "(no output)"


_PR_SET_PDEATHSIG = 1


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return None


_PRCTL = _load_prctl()  # loaded here: the child, between fork and exec, only calls it


def _child_setup(parent_pid: int) -> Callable[[], None]:
    """``preexec_fn``: its own session, and SIGKILL when the starting thread ends."""

    def setup() -> None:
        os.setsid()
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != parent_pid:  # the parent died before prctl took effect
                os._exit(137)

    return setup


def new_call_dir(parent: Path, prefix: str) -> Path:
    """A new, empty folder ``<parent>/<prefix>-<random>`` for one call."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=parent))


@contextlib.contextmanager
def group_dies_with_caller(proc: subprocess.Popen) -> Iterator[None]:
    """While waiting for ``proc``: any exception kills its group before it propagates, and so
    does SIGTERM or SIGHUP left at their default (the signal then ends the caller as it would
    have). Signal handlers are set only in the main thread."""
    previous: dict[int, object] = {}

    def on_signal(signum, frame) -> None:
        if proc.returncode is None:
            kill_group(proc)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) == signal.SIG_DFL:
                previous[sig] = signal.signal(sig, on_signal)
    try:
        yield
    except BaseException:
        if proc.returncode is None:
            kill_group(proc)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, the process group of ``proc`` (started with its own session)."""
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            pid, _status, _usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = -sig
                return
            time.sleep(_POLL_S)


def run_tool(argv: list[str], run_dir: Path, console: Path, what: str, timeout: float | None = None) -> ToolRun:
    """Run ``argv`` in ``run_dir`` (stdout+stderr to ``console``) in a new session.

    Raises ``ImpbenchError`` quoting the console's last lines when it cannot start, exits
    non-zero, or runs past ``timeout`` seconds (its process group is then killed, as it is
    when the caller is interrupted).
    """
    start = time.monotonic()
    usage = None
    with open(console, "wb") as console_file:
        try:
            proc = subprocess.Popen(argv, stdout=console_file, stderr=subprocess.STDOUT, cwd=run_dir,
                                    preexec_fn=_child_setup(os.getpid()))
        except OSError as err:
            raise ImpbenchError(f"minimac4: could not start {argv[0]}: {err.strerror}") from None
        with group_dies_with_caller(proc):
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    break
                if timeout is not None and time.monotonic() - start > timeout:
                    kill_group(proc)
                    raise ImpbenchError(
                        f"minimac4 {what}: stopped after {timeout:g} s (minimac4.timeout); log {console}: "
                        f"{console_tail(console)}"
                    )
                time.sleep(_POLL_S)
    if proc.returncode != 0:
        raise ImpbenchError(f"minimac4 {what} failed (exit {proc.returncode}); log {console}: {console_tail(console)}")
    peak_rss_mb = usage.ru_maxrss / 1024.0 if usage is not None else float("nan")
    return ToolRun(tuple(argv), console, time.monotonic() - start, peak_rss_mb)
