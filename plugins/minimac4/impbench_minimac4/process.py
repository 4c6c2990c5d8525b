"""Running one Minimac4 process in its own session: console capture, time limit, and the whole
process group killed on timeout or interruption.

The tool dies with the harness: its own session (``os.setsid``) with a parent-death signal
(Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so a SIGKILLed harness takes it along; on
SIGTERM or SIGHUP (when nothing else handles them), Ctrl-C, a time limit or any exception
while waiting, its whole process group is killed before the harness goes on. Each call works
in a folder of its own (``new_call_dir``). The mechanism is the core's
(``impbench.imputers.tools``), shared with the Beagle plugin and the harness's workers.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from impbench.errors import ImpbenchError
from impbench.imputers.tools import child_setup, group_dies_with_caller, kill_group

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
                                    preexec_fn=child_setup(os.getpid()))
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
