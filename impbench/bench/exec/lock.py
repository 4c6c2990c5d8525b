"""The run lock: one ``impbench run`` per run folder at a time.

``RunLock.acquire(run_dir)`` takes an exclusive ``flock`` on ``<run>/.lock`` and writes the
holder into it (pid, host, start time, command). A second run on the same folder gets
``ImpbenchError`` naming the holder (exit 2 at the CLI). The kernel drops a ``flock`` when its
process dies, however it dies, so a lock whose holder was killed is simply taken; when the file
still names another process (the holder never released it), the new run warns that it took
the lock over, and first kills every process still tagged with the run folder (a worker or a
Beagle JVM of the killed run, see ``impbench.bench.exec.procs``), so no stale process writes into
the folder while the new run works.

``flock`` is advisory and per host; on a shared file system, runs on two hosts are told apart
by the host name in the file, not by the kernel.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
from pathlib import Path
from typing import Callable

from impbench.bench.exec import procs
from impbench.errors import ImpbenchError

LOCK_NAME = ".lock"


class RunLock:
    """An acquired run lock; ``release()`` (or leaving the ``with`` block) gives it back."""

    def __init__(self, path: Path, handle: int, took_over: dict | None) -> None:
        self.path = path
        self._fd: int | None = handle
        #: the previous holder's record when this lock was taken over from a dead process
        self.took_over = took_over

    @classmethod
    def acquire(cls, run_dir: str | os.PathLike, command: str = "", warn: Callable[[str], None] | None = None) -> "RunLock":
        """Lock ``run_dir`` (which must exist); ``ImpbenchError`` when another live process holds it."""
        import fcntl

        path = Path(run_dir) / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise ImpbenchError(f"{Path(run_dir)}: in use by {describe(holder)}; wait for it to finish or choose another --run") from None
        except OSError as exc:
            os.close(fd)
            raise ImpbenchError(f"{path}: cannot lock the run folder ({exc.strerror or exc})") from None
        previous = _read(fd)
        took_over = None
        if previous and previous.get("pid") and previous.get("host") == socket.gethostname() and previous.get("pid") != os.getpid():
            took_over = previous
            alive = procs.pid_alive(int(previous["pid"])) and procs.process_start_time(int(previous["pid"])) == previous.get("start_ticks")
            killed = procs.kill_tagged(procs.RUN_ENV, str(Path(run_dir).resolve()))
            procs.wait_gone(killed, 5.0)
            if warn is not None:
                state = "still running without its lock" if alive else "no longer running"
                extra = f"; stopped {len(killed)} of its leftover process(es)" if killed else ""
                warn(f"warning: took over the lock of {describe(previous)}, {state}{extra}")
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now(),
                  "start_ticks": procs.process_start_time(os.getpid()), "command": command}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        os.fsync(fd)
        return cls(path, fd, took_over)

    def release(self) -> None:
        """Empty the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        import fcntl

        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def describe(holder: dict | None) -> str:
    """``process 123 on host x (started 2026-...: impbench run ...)``."""
    if not holder:
        return "another process (unknown: the lock file is empty)"
    text = f"process {holder.get('pid')} on host {holder.get('host')} (started {holder.get('started')}"
    command = str(holder.get("command") or "").strip()
    return text + (f": {command[:120]})" if command else ")")


#: The lock record's fields and their types; a field of another type (a corrupt or hand-edited
#: lock file: ``"pid": "abc"``) is dropped, as if absent.
_FIELDS = {"pid": int, "host": str, "started": str, "start_ticks": int, "command": str}


def _read(fd: int) -> dict | None:
    """The holder's record, with only its well-typed fields; None when empty or unreadable."""
    try:
        data = os.pread(fd, 65536, 0)
        record = json.loads(data.decode()) if data.strip() else None
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(record, dict):
        return None
    return {key: value for key, value in record.items()
            if key in _FIELDS and isinstance(value, _FIELDS[key]) and not isinstance(value, bool)
            and not (key == "pid" and value <= 0)}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
