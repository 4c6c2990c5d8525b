"""Executors: who runs the work items (fits and units) of a run.

``LocalExecutor`` (``--executor local``, the default) runs each item in a worker process
(``python -m impbench.bench.exec.worker SPEC.json``), at most ``jobs`` at a time, each fit before its
units, at most one GPU item per visible GPU. Every worker starts in its own session (its own
process group), tagged with the run and attempt (``impbench.bench.exec.procs``), with
``OMP_NUM_THREADS`` and friends set to its share of the cores. It is stopped (SIGTERM, then
SIGKILL to its group, then every process carrying its attempt's tag) when it runs past its
time limit, and all of them are when the harness is interrupted. A worker that dies without
writing its result is recorded as ``crashed`` with its exit signal or status.

``InlineExecutor`` (``--executor inline``) runs the same work in the harness process, one item
after another: the reference for "identical whichever executor ran it", and a way to debug a
plugin. It isolates nothing: no time limit, and a crash ends the run.

Both report each item's ``units.Outcome`` through ``on_done(item, outcome)``; an item whose
dependency did not succeed is not run and reported ``skipped``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from impbench.bench.exec import procs
from impbench.bench.exec.worker import WRITE_FAILED_EXIT, HarnessWriteError
from impbench.bench.units import LOG_NAME, PROGRESS_NAME, RESULT_NAME, Outcome, WorkItem, log_tail
from impbench.progress import RichProgress, finish_stage

#: Seconds between SIGTERM and SIGKILL when a worker is stopped.
TERM_GRACE_S = 3.0
_POLL_S = 0.05
_PROGRESS_POLL_S = 0.3
#: Thread-count variables set in every worker (numpy's BLAS, OpenMP, torch).
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS")

OnDone = Callable[[WorkItem, Outcome], None]


def _what(item: WorkItem) -> str:
    return "fit" if item.kind == "fit" else f"impute L{item.level:g} r{item.replicate}"


def outcome_from_result(item: WorkItem, attempt: Path) -> Outcome | None:
    """The outcome a worker wrote (``result.json``), or None when it wrote none."""
    try:
        result = json.loads((attempt / RESULT_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or "status" not in result:
        return None
    status = result["status"]
    tail = None if status == "ok" else (log_tail(attempt / "error.txt", 8) or log_tail(attempt / LOG_NAME))
    return Outcome(status, result.get("error"), None, 0, tail, result, attempt)


def skipped(item: WorkItem, dependency: Outcome) -> Outcome:
    """The outcome of an item not run because its fit did not succeed: ``skipped``, with the
    fit's own error (``imputer 'x': impute L0.1 r0 skipped: its fit failed: <the fit's error>``)."""
    if dependency.status == "not_applicable":
        why = "not applicable"
    else:
        why = f"its fit {dependency.status.replace('_', ' ')}"
        if dependency.error:
            why += f": {dependency.error.splitlines()[0]}"
    return Outcome("skipped", f"imputer {item.imputer!r}: {_what(item)} skipped: {why}")


def order_ready(items: Sequence[WorkItem], finished: dict[str, Outcome]) -> tuple[list[WorkItem], list[WorkItem]]:
    """(items whose dependency succeeded or that have none, items whose dependency failed)."""
    ready, dropped = [], []
    for item in items:
        dep = item.depends_on
        if dep is None or (dep in finished and finished[dep].status == "ok"):
            ready.append(item)
        elif dep in finished:
            dropped.append(item)
    return ready, dropped


# ---------------------------------------------------------------------------- inline
class InlineExecutor:
    """Runs every item in this process, in order (see the module docstring)."""

    def __init__(self, progress: RichProgress | None = None) -> None:
        self.progress = progress or RichProgress(enabled=False)

    def run(self, items: Sequence[WorkItem], on_done: OnDone) -> None:
        from impbench.bench.exec.worker import run_spec

        pending = list(items)
        finished: dict[str, Outcome] = {}
        while pending:
            ready, dropped = order_ready(pending, finished)
            for item in dropped:
                pending.remove(item)
                finished[item.label] = out = skipped(item, finished[item.depends_on])  # type: ignore[index]
                finish_stage(self.progress, item.label, out.status)
                on_done(item, out)
            if not ready:
                if dropped:
                    continue
                break
            item = ready[0]
            pending.remove(item)
            spec_path = item.claim_attempt()
            spec = json.loads(spec_path.read_text())
            self.progress.update(f"{item.label} · starting", 0, None)
            try:
                run_spec(spec, progress=self.progress.callback(item.label))
                out = outcome_from_result(item, item.attempt_dir) or Outcome("crashed", "no result",
                                                                             attempt_dir=item.attempt_dir)
            except HarnessWriteError as exc:  # not even result.json could be written
                out = Outcome("failed", f"{_what(item)} of imputer {item.imputer!r}: impbench could not write to the run "
                              f"folder ({exc}); the imputer is not at fault", attempt_dir=item.attempt_dir)
            finish_stage(self.progress, item.label, out.status)
            finished[item.label] = out
            on_done(item, out)


# ---------------------------------------------------------------------------- local processes
@dataclass
class _Running:
    item: WorkItem
    process: subprocess.Popen
    log: Any
    started: float
    gpu_slot: Any = None
    stopping_since: float | None = None
    timed_out: bool = False
    progress_at: float = 0.0
    progress_seen: dict = field(default_factory=dict)


class LocalExecutor:
    """Runs items in worker processes, ``jobs`` at a time (see the module docstring).

    run_dir : the run folder (its absolute path tags every worker). threads : each worker's
    thread share. gpu_slots : from ``visible_gpus``. sys_path : the harness's import path.
    """

    def __init__(self, run_dir: Path, jobs: int, threads: int, *, gpu_slots: Sequence[Any] = (None,),
                 progress: RichProgress | None = None) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.jobs = max(1, int(jobs))
        self.threads = max(1, int(threads))
        self.gpu_free = list(gpu_slots)
        self.progress = progress or RichProgress(enabled=False)
        self.running: dict[str, _Running] = {}

    # ------------------------------------------------------------------ one worker
    def _env(self, item: WorkItem, gpu_slot: Any) -> dict[str, str]:
        env = dict(os.environ)
        env[procs.RUN_ENV] = str(self.run_dir)
        env[procs.ATTEMPT_ENV] = str(item.attempt_dir)
        env[procs.PARENT_ENV] = str(os.getpid())
        for name in THREAD_ENV:
            env[name] = str(self.threads)
        if item.gpu and gpu_slot is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu_slot)
        return env

    def _start(self, item: WorkItem) -> None:
        spec_path = item.claim_attempt()
        gpu_slot = self.gpu_free.pop(0) if item.gpu else None
        log = open(item.attempt_dir / LOG_NAME, "wb")  # type: ignore[operator]
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "impbench.bench.exec.worker", str(spec_path)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self._env(item, gpu_slot), start_new_session=True,
            )
        except BaseException:
            log.close()
            if item.gpu:
                self.gpu_free.append(gpu_slot)
            raise
        self.running[item.label] = _Running(item, process, log, time.monotonic(), gpu_slot)
        self.progress.update(f"{item.label} · starting", 0, None)

    def _stop(self, run: _Running, now: float) -> None:
        """SIGTERM to the worker's group now; SIGKILL after ``TERM_GRACE_S`` (called again)."""
        pid = run.process.pid
        if run.stopping_since is None:
            run.stopping_since = now
            _killpg(pid, signal.SIGTERM)
        elif now - run.stopping_since > TERM_GRACE_S:
            _killpg(pid, signal.SIGKILL)
            procs.kill_tagged(procs.ATTEMPT_ENV, str(run.item.attempt_dir))

    def _finish(self, run: _Running) -> Outcome:
        item = run.item
        attempt = item.attempt_dir
        run.log.close()
        procs.kill_tagged(procs.ATTEMPT_ENV, str(attempt))  # whatever the worker left behind
        if item.gpu:
            self.gpu_free.append(run.gpu_slot)
        code = run.process.returncode
        seconds = time.monotonic() - run.started
        tail = log_tail(attempt / LOG_NAME)  # type: ignore[operator]
        if run.timed_out:
            return Outcome("timed_out", f"imputer {item.imputer!r}: {_what(item)} timed out after {item.time_limit:g} s "
                           f"(worker stopped)", procs.signal_name(-code) if code and code < 0 else None, code, tail,
                           {}, attempt)
        out = outcome_from_result(item, attempt)  # type: ignore[arg-type]
        if out is not None and code == 0:
            return out
        if code == WRITE_FAILED_EXIT:  # the worker could not write its result: the disk, not the plugin
            last = (tail or "").splitlines()[-1:] or ["a write was refused"]
            return Outcome("failed", f"{_what(item)} of imputer {item.imputer!r}: impbench could not write to the run "
                           f"folder ({last[0].removeprefix('impbench worker: ')}); the imputer is not at fault",
                           None, code, tail, {}, attempt)
        if code is not None and code < 0:
            sig = procs.signal_name(-code)
            why = "the worker was killed (SIGKILL: out of memory?)" if -code == signal.SIGKILL else f"the worker died of {sig}"
            return Outcome("crashed", f"imputer {item.imputer!r}: {_what(item)}: {why} after {seconds:.1f} s", sig, code,
                           tail, {}, attempt)
        return Outcome("crashed", f"imputer {item.imputer!r}: {_what(item)}: the worker exited with status {code} "
                       "without a result", None, code, tail, {}, attempt)

    def _show_progress(self, run: _Running, now: float) -> None:
        if now - run.progress_at < _PROGRESS_POLL_S:
            return
        run.progress_at = now
        try:
            record = json.loads((run.item.attempt_dir / PROGRESS_NAME).read_text())  # type: ignore[operator]
        except (OSError, ValueError):
            return
        if record != run.progress_seen:
            run.progress_seen = record
            self.progress.update(f"{run.item.label} · {record.get('stage')}", record.get("completed") or 0,
                                 record.get("total"))

    # ------------------------------------------------------------------ the loop
    def run(self, items: Sequence[WorkItem], on_done: OnDone) -> None:
        pending = list(items)
        finished: dict[str, Outcome] = {}
        try:
            while pending or self.running:
                ready, dropped = order_ready(pending, finished)
                for item in dropped:
                    pending.remove(item)
                    finished[item.label] = out = skipped(item, finished[item.depends_on])  # type: ignore[index]
                    finish_stage(self.progress, item.label, out.status)
                    on_done(item, out)
                for item in ready:
                    if len(self.running) >= self.jobs:
                        break
                    if item.gpu and not self.gpu_free:
                        continue
                    pending.remove(item)
                    self._start(item)
                now = time.monotonic()
                for label, run in list(self.running.items()):
                    if run.process.poll() is not None:
                        del self.running[label]
                        finished[label] = out = self._finish(run)
                        finish_stage(self.progress, label, out.status)
                        on_done(run.item, out)
                        continue
                    limit = run.item.time_limit
                    if limit is not None and now - run.started > limit:
                        run.timed_out = True
                    if run.timed_out:
                        self._stop(run, now)
                    else:
                        self._show_progress(run, now)
                # decided on what is finished now (a fit that just failed drops its units next pass)
                if pending and not self.running and not any(order_ready(pending, finished)):
                    raise RuntimeError(f"work items wait for items that never ran: {[i.label for i in pending]}")
                time.sleep(_POLL_S)
        except BaseException:
            self.stop_all()
            raise

    def stop_all(self) -> None:
        """Stop every running worker (SIGTERM, then SIGKILL) and everything tagged with the run."""
        runs = list(self.running.values())
        for run in runs:
            _killpg(run.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE_S
        for run in runs:
            try:
                run.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for run in runs:
            _killpg(run.process.pid, signal.SIGKILL)
        procs.wait_gone(procs.kill_tagged(procs.RUN_ENV, str(self.run_dir)), 5.0)
        for run in runs:
            try:
                run.process.wait(5.0)
            except subprocess.TimeoutExpired:
                pass
            run.log.close()
        self.running.clear()


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
