"""Running one Minimac4 process in its own session: console capture, time limit, and the whole
process group killed on timeout or interruption.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

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
                                    start_new_session=True)
        except OSError as err:
            raise ImpbenchError(f"minimac4: could not start {argv[0]}: {err.strerror}") from None
        try:
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
        except BaseException:
            if proc.returncode is None:
                kill_group(proc)
            raise
    if proc.returncode != 0:
        raise ImpbenchError(f"minimac4 {what} failed (exit {proc.returncode}); log {console}: {console_tail(console)}")
    peak_rss_mb = usage.ru_maxrss / 1024.0 if usage is not None else float("nan")
    return ToolRun(tuple(argv), console, time.monotonic() - start, peak_rss_mb)
