"""Processes of a run: tagging, finding and killing them, the parent-death signal, signal names.

Every worker process of a run is started with two environment variables that its children
(Beagle's JVM, ``torchrun``) inherit: ``IMPBENCH_RUN`` (the run folder, absolute) and
``IMPBENCH_ATTEMPT`` (the attempt's folder). ``tagged_processes`` finds the live processes
carrying a tag by reading ``/proc/<pid>/environ``, so the harness can kill everything a worker
started, even a child that left the worker's process group (``start_new_session``) or outlived
its worker (re-parented to PID 1): after each attempt, on SIGTERM/SIGINT, and when a rerun
takes over the lock of a killed run. Linux only; elsewhere nothing is found.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

#: Environment variables a worker and its children carry.
RUN_ENV = "IMPBENCH_RUN"
ATTEMPT_ENV = "IMPBENCH_ATTEMPT"
#: The harness's pid as its workers saw it at start (a worker whose parent changed exits).
PARENT_ENV = "IMPBENCH_PARENT_PID"


def signal_name(number: int) -> str:
    """``SIGSEGV`` for 11; ``signal 99`` for an unknown number."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def tagged_processes(name: str, value: str) -> list[int]:
    """Pids of live processes (other than this one) whose environment holds ``name=value``."""
    needle = f"{name}={value}".encode()
    me = os.getpid()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:  # gone, or another user's
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


def kill_tagged(name: str, value: str, sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` to every process tagged ``name=value`` (and its process group when it leads
    one); returns the pids signalled. Zombies are reaped by their parents, not here."""
    pids = tagged_processes(name, value)
    for pid in pids:
        try:
            if os.getpgid(pid) == pid and pid != os.getpgrp():
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    return pids


def wait_gone(pids: list[int], timeout: float) -> bool:
    """Wait until none of ``pids`` is alive (a zombie counts as gone); True when so."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive or time.monotonic() >= deadline:
            return not alive
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists and is not a zombie (on this machine)."""
    if Path("/proc").is_dir():
        return _alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start_time(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22), as
    text; tells a process from a later one that reused its pid. None when unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
