"""Running one Beagle process: console capture, time limit, wall time and peak memory.

The console output (stdout and stderr together) goes to ``<out>.console.txt`` beside Beagle's
own ``<out>.log``; both stay in the run folder. Java's exceptions reach only the console, so a
failure message quotes the console's last meaningful lines.

The JVM dies with the harness: it runs in a session of its own (``os.setsid``) with a
parent-death signal (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so a SIGKILLed harness takes
it along; on SIGTERM or SIGHUP (when nothing else handles them), Ctrl-C, a time limit or any
exception while waiting, its whole process group is killed before the harness goes on. Each
call works in a folder of its own (``new_call_dir``), so two calls never write the same file.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from impbench.errors import ImpbenchError
from impbench.imputers.tools import child_setup, group_dies_with_caller, kill_group

from .locate import BeagleTool

#: How many console lines a failure message quotes.
TAIL_LINES = 6
_POLL_S = 0.05
#: Beagle 5.4 can print an exception from its main thread and then never exit (its worker
#: threads keep the JVM alive), e.g. for ``chrom=`` naming a contig the panel lacks. Seeing
#: this in the console, the run is stopped after ``_HUNG_GRACE_S`` seconds.
_MAIN_EXCEPTION = b'Exception in thread "main"'
_HUNG_GRACE_S = 3.0


@dataclass(frozen=True)
class BeagleRun:
    """What one finished Beagle run produced.

    output_vcf : ``<out>.vcf.gz``; log : Beagle's ``<out>.log``; console : captured stdout+stderr.
    wall_s : seconds from start to exit; peak_rss_mb : the Java process's peak resident memory
    (``ru_maxrss`` of the child, MiB).
    """

    argv: tuple[str, ...]
    output_vcf: Path
    log: Path
    console: Path
    wall_s: float
    peak_rss_mb: float


def log_tail(*paths: Path, n_lines: int = TAIL_LINES) -> str:
    """The last ``n_lines`` meaningful lines of the first of ``paths`` that has any, joined by " | ".

    Java stack frames (``at pkg.Class(File.java:1)``) and blank lines are skipped, so what is
    left is Beagle's own message.
    """
    for path in paths:
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        kept = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("at ")]
        if kept:
            return " | ".join(kept[-n_lines:])
    return "(no output)"


class _ConsoleWatch:
    """Notices a main-thread Java exception in the console file (read incrementally)."""

    def __init__(self, path: Path):
        self._path = path
        self._offset = 0
        self._tail = b""
        self._seen_at: float | None = None
        self._next_read = 0.0

    def main_exception_since(self, now: float) -> float:
        """Seconds since the exception was first seen (0 when not seen)."""
        if self._seen_at is None and now >= self._next_read:
            self._next_read = now + 0.5
            with open(self._path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
            self._offset += len(chunk)
            window = self._tail + chunk
            if _MAIN_EXCEPTION in window:
                self._seen_at = now
            self._tail = window[-len(_MAIN_EXCEPTION) :]
        return 0.0 if self._seen_at is None else now - self._seen_at


def _kill_group(proc: subprocess.Popen) -> None:
    kill_group(proc, grace_s=5.0)  # the JVM may take a few seconds to stop


def run_beagle(
    tool: BeagleTool,
    beagle_args: list[str],
    run_dir: Path,
    out_name: str = "out",
    java_heap: str | None = None,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> BeagleRun:
    """Run Beagle in ``run_dir`` with ``beagle_args`` (``key=value``; ``out=out_name`` is added).

    Beagle runs with ``run_dir`` as its working folder, so the arguments should name files
    relative to it: Debian's ``beagle`` wrapper passes its arguments unquoted (``${@}``), and a
    path with a space would be split in two.

    Raises ``ImpbenchError`` with the log's last lines when Beagle exits non-zero, writes no
    output, or runs past ``timeout`` seconds (the whole process group is then killed).
    """
    run_dir = Path(run_dir)
    output_vcf = run_dir / f"{out_name}.vcf.gz"
    log = run_dir / f"{out_name}.log"
    console = run_dir / f"{out_name}.console.txt"
    for stale in (output_vcf, log):
        stale.unlink(missing_ok=True)
    argv, env = tool.command(list(beagle_args) + [f"out={out_name}"], java_heap)
    start = time.monotonic()
    with open(console, "wb") as console_file:
        try:
            proc = subprocess.Popen(
                argv, stdout=console_file, stderr=subprocess.STDOUT, env=env, cwd=run_dir,
                preexec_fn=child_setup(os.getpid()),
            )  # fmt: skip
        except OSError as err:
            raise ImpbenchError(f"beagle: could not start {argv[0]}: {err.strerror}") from None
        usage = None
        watch = _ConsoleWatch(console)
        with group_dies_with_caller(proc, _kill_group):
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    break
                now = time.monotonic()
                if timeout is not None and now - start > timeout:
                    _kill_group(proc)
                    raise ImpbenchError(
                        f"beagle: stopped after {timeout:g} s (beagle.timeout); log {console}: {log_tail(console)}"
                    )
                if cancel is not None and cancel.is_set():
                    _kill_group(proc)
                    raise ImpbenchError(f"beagle: stopped (another region failed); log {console}")
                if watch.main_exception_since(now) > _HUNG_GRACE_S:
                    _kill_group(proc)
                    raise ImpbenchError(
                        f"beagle failed (Java exception, process stopped); log {console}: {log_tail(console, log)}"
                    )
                time.sleep(_POLL_S)
    wall_s = time.monotonic() - start
    if proc.returncode != 0:
        raise ImpbenchError(f"beagle failed (exit {proc.returncode}); log {console}: {log_tail(console, log)}")
    if not output_vcf.is_file():
        raise ImpbenchError(f"beagle wrote no {output_vcf.name}; log {console}: {log_tail(console, log)}")
    peak_rss_mb = usage.ru_maxrss / 1024.0 if usage is not None else float("nan")
    return BeagleRun(tuple(argv), output_vcf, log, console, wall_s, peak_rss_mb)
