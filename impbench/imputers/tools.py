"""Running an external tool from an imputer plugin, so that it dies with its caller.

One mechanism for every subprocess impbench or a plugin starts (Beagle's JVM, Minimac4, the
harness's workers): the child runs in a session of its own (``os.setsid``) with a parent-death
signal (Linux ``prctl(PR_SET_PDEATHSIG)``), so a SIGKILLed caller takes it along; on SIGTERM or
SIGHUP (when nothing else handles them), Ctrl-C, a time limit or any exception while waiting,
its whole process group is killed before the caller goes on (``group_dies_with_caller``). Each
call works in a folder of its own (``new_call_dir``), so two calls never write the same file.

The parent-death signal fires when the *thread* that started the child ends, so a caller waits
for its child in the thread that started it.
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
from pathlib import Path
from typing import Callable, Iterator

_PR_SET_PDEATHSIG = 1
_POLL_S = 0.02


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return None


_PRCTL = _load_prctl()  # loaded here: a child, between fork and exec, only calls it


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies. False where that is
    not available."""
    if _PRCTL is None:
        return False
    return _PRCTL(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def child_setup(parent_pid: int | None = None, sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn``: a session of its own, and ``sig`` when the starting thread ends.

    parent_pid : the caller's pid (``os.getpid()`` by default, taken now): a child whose parent
    died before ``prctl`` took effect exits at once (137)."""
    parent_pid = os.getpid() if parent_pid is None else parent_pid

    def setup() -> None:
        os.setsid()
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
            if os.getppid() != parent_pid:
                os._exit(137)

    return setup


def new_call_dir(parent: Path, prefix: str) -> Path:
    """A new, empty folder ``<parent>/<prefix>-<random>`` for one call (no whitespace in its
    name: Debian's ``beagle`` wrapper splits arguments at spaces)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=parent))


def kill_group(proc: subprocess.Popen, grace_s: float = 3.0) -> None:
    """SIGTERM, then SIGKILL, the process group of ``proc`` (started with ``child_setup``),
    waiting up to ``grace_s`` after each for it to end (it is reaped: ``proc.returncode`` set)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                pid, _status, _usage = os.wait4(proc.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                proc.returncode = -sig
                return
            time.sleep(_POLL_S)


@contextlib.contextmanager
def group_dies_with_caller(proc: subprocess.Popen,
                           kill: Callable[[subprocess.Popen], None] = kill_group) -> Iterator[None]:
    """While waiting for ``proc`` (the leader of its own process group): any exception
    (Ctrl-C's KeyboardInterrupt included) kills the group before it propagates, and so does
    SIGTERM or SIGHUP when the caller has left them at their default (the signal then ends
    the caller as it would have). Signal handlers are set only in the main thread."""
    previous: dict[int, object] = {}

    def on_signal(signum, frame) -> None:
        if proc.returncode is None:
            kill(proc)
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
            kill(proc)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
