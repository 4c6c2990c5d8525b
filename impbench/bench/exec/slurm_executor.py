"""``--executor slurm``: the work items of a run as Slurm jobs, through submitit.

- **One job per fit** with the resources of the run's ``[slurm]`` options and what the imputer
  asks for: a GPU imputer's fit gets ``--gpus-per-node=<--nproc>`` (one GPU per torchrun
  process; ``impbench.nn`` starts torchrun itself inside the allocation when ``nproc > 1``) and
  one task per node. With ``nodes > 1`` every node runs one task: task 0 runs the worker, whose
  torchrun rendezvouses (c10d, on the first node) with one torchrun per other node started by
  the other tasks (``IMPBENCH_TORCHRUN_ARGS``, see ``torchrun_args``).
- **One job array per imputer** for its units (one task per level x replicate), submitted with
  ``--dependency=afterok:<fit job>`` and ``--kill-on-invalid-dep=yes``; a unit of a GPU imputer
  asks for one GPU. A fit that fails cancels its array; its units are reported ``skipped``.
- Every job runs ``run_in_job``: the same worker as the local executor (``python -m
  impbench.bench.exec.worker SPEC.json``) with its log in the attempt folder. The threads of a
  worker are the job's ``cpus_per_task`` (default ``--threads``, else 1). A job's time limit is
  ``--slurm time`` or else the item's ``--time-limit`` rounded up to whole minutes (or the
  partition's default); submitit's early USR2 signal is ignored, so Slurm itself ends a job at
  its limit and records ``TIMEOUT``.
- **The head waits**, polling ``impbench.bench.exec.slurm.job_states`` (``sacct`` or ``squeue``; never
  requires accounting) every ``poll_s`` seconds, showing each job's state (pending, running with
  the worker's progress) and a line of counts. A finished job's outcome is the worker's
  ``result.json``; a job that ended without one is recorded ``timed_out`` (Slurm's TIMEOUT) or
  ``crashed`` with ``impbench.bench.exec.slurm.job_failure``'s line (Slurm's state and reason, the
  tail of the job's log).
- **Killing the head and rerunning** resubmits only what is missing: the runner plans only
  units without a done marker and a fit only without its artifact. Every submitted job is
  recorded in ``<run>/work/slurm/jobs.json`` (item label -> job id, attempt folder, key); a
  rerun **adopts** a recorded job that Slurm still lists as pending or running under this run's
  job name for the same key (it waits for it instead of submitting the item again), takes the
  result of one that completed in between, and cancels a pending unit whose fit is submitted
  anew. An interrupted head (SIGINT/SIGTERM) leaves its jobs running for the rerun to adopt and
  prints the ``scancel`` line that stops them.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from hashlib import sha256
from pathlib import Path
from typing import Any, Iterator, Sequence

from impbench.bench.exec import procs, slurm
from impbench.bench.exec.executor import THREAD_ENV, OnDone, outcome_from_result, skipped
from impbench.bench.exec.signals import RunInterrupted
from impbench.bench.units import LOG_NAME, PROGRESS_NAME, RESULT_NAME, Outcome, WorkItem, log_tail
from impbench.files import atomic_write
from impbench.progress import RichProgress, finish_stage

#: Where the executor keeps submitit's job folders and its record of submitted jobs.
SLURM_DIR = Path("work") / "slurm"
JOBS_RECORD = "jobs.json"
#: Slurm states of a job that is still queued or running (adoptable by a rerun).
ACTIVE_STATES = frozenset({"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
                           "REQUEUE_FED", "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"})
#: Seconds a finished job may lack its result file before it counts as crashed (NFS caches).
RESULT_GRACE_S = 15.0
#: Seconds a just-submitted job may be missing from squeue.
MISSING_GRACE_S = 60.0
TORCHRUN_PORT = 29400


# ---------------------------------------------------------------------------- inside the job
def torchrun_args(nodes: int, first_host: str, job_id: str) -> str:
    """``IMPBENCH_TORCHRUN_ARGS`` of a multi-node fit: a c10d rendezvous on the first node."""
    return f"--nnodes {nodes} --rdzv-backend c10d --rdzv-endpoint {first_host}:{TORCHRUN_PORT} --rdzv-id impbench-{job_id}"


def _first_host() -> str:
    nodelist = os.environ.get("SLURM_JOB_NODELIST", "")
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, timeout=30)
        hosts = out.stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        hosts = []
    return hosts[0] if hosts else nodelist.split(",")[0]


def _follow_torchrun(spec: dict, started: float, env: dict) -> int:
    """Tasks 1.. of a multi-node fit: wait for the fit's torchrun spec (written by task 0's
    imputer) and start this node's torchrun with the same rendezvous."""
    ddp_spec = Path(spec["fit_dir"]) / "ddp" / "spec.json"
    while not (ddp_spec.is_file() and ddp_spec.stat().st_mtime >= started - 5):
        time.sleep(1.0)
    nproc = int(os.environ.get("SLURM_GPUS_ON_NODE") or spec.get("nproc") or 1)
    command = [sys.executable, "-m", "torch.distributed.run", *shlex.split(env["IMPBENCH_TORCHRUN_ARGS"]),
               "--nproc_per_node", str(nproc), "-m", "impbench.nn.launch", str(ddp_spec)]
    return subprocess.call(command, env=env, stdin=subprocess.DEVNULL)


def run_in_job(spec_path: str, threads: int) -> int:
    """What every Slurm job runs (through submitit): the worker on ``spec_path`` with
    ``threads`` threads, its output appended to the attempt's ``worker.log``. Raises when the
    worker exited without success (or a fit did not succeed), so Slurm records the job FAILED
    with the reason as the last line of its log."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # submitit's early timeout signal: Slurm decides
    spec = json.loads(Path(spec_path).read_text())
    attempt = Path(spec["attempt_dir"])
    env = dict(os.environ)
    env.pop(procs.PARENT_ENV, None)
    env.pop(procs.RUN_ENV, None)  # a rerun's lock takeover must not kill the jobs it adopts
    env[procs.ATTEMPT_ENV] = str(attempt)
    for name in THREAD_ENV:
        env[name] = str(threads)
    nodes = int(os.environ.get("SLURM_NNODES") or 1)
    if spec["kind"] == "fit" and nodes > 1 and "IMPBENCH_TORCHRUN_ARGS" not in os.environ:
        env["IMPBENCH_TORCHRUN_ARGS"] = torchrun_args(nodes, _first_host(), os.environ.get("SLURM_JOB_ID", "0"))
        if int(os.environ.get("SLURM_PROCID") or 0) != 0:
            return _follow_torchrun(spec, time.time(), env)
    elif int(os.environ.get("SLURM_PROCID") or 0) != 0:
        return 0  # one worker per job; further tasks (tasks_per_node > 1) have nothing to do
    with open(attempt / LOG_NAME, "ab") as log:
        code = subprocess.call([sys.executable, "-m", "impbench.bench.exec.worker", spec_path], stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    if code != 0:
        why = f"signal {procs.signal_name(-code)}" if code < 0 else f"status {code}"
        _fail_job(f"the impbench worker exited with {why}; see {attempt / LOG_NAME}")
    if spec["kind"] == "fit":  # a fit without success fails its job, so afterok cancels its units
        try:
            status = json.loads((attempt / RESULT_NAME).read_text()).get("status")
        except (OSError, ValueError, AttributeError):
            status = None
        if status != "ok":
            _fail_job(f"the fit did not succeed ({status}); see {attempt}")
    return code


def _fail_job(message: str) -> None:
    """End the job with exit status 1 (Slurm: FAILED) and one line in its log, no traceback."""
    sys.stderr.write(f"impbench: {message}\n")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(1)


# ---------------------------------------------------------------------------- the head
@dataclass
class _Job:
    item: WorkItem
    job_id: str
    submitted: float
    adopted: bool = False
    state: str = "PENDING"
    seen: bool = False
    finished_at: float | None = None
    progress_seen: Any = None


def job_name(run_dir: Path) -> str:
    """The Slurm job name of every job of a run: ``impbench-<8 hex of the run folder's path>``."""
    return "impbench-" + sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:8]


def _item_key(item: WorkItem) -> str:
    return str(item.spec.get("fit_key") if item.kind == "fit" else item.spec.get("unit_key"))


class SlurmExecutor:
    """Runs work items as Slurm jobs (see the module docstring).

    run_dir : the run folder (on a file system the nodes share). options : the run's
    ``SlurmOptions``. threads : ``--threads`` or None. nproc : ``--nproc``. poll_s : seconds
    between state polls.
    """

    def __init__(self, run_dir: Path, options: slurm.SlurmOptions, *, threads: int | None = None, nproc: int = 1,
                 progress: RichProgress | None = None, poll_s: float = 2.0) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.options = options
        self.threads = threads
        self.nproc = max(1, int(nproc))
        self.progress = progress or RichProgress(enabled=False)
        self.poll_s = poll_s
        self.folder = self.run_dir / SLURM_DIR
        self.name = job_name(self.run_dir)
        self.jobs: dict[str, _Job] = {}  # label -> job
        self.record: dict[str, dict] = {}
        self._counts_shown: Any = None

    # ------------------------------------------------------------------ resources
    def cpus(self) -> int:
        return int(self.options.cpus_per_task or self.threads or 1)

    def item_options(self, item: WorkItem) -> slurm.SlurmOptions:
        """The Slurm options of one item's job (see the module docstring)."""
        o = self.options
        changes: dict[str, Any] = {"cpus_per_task": self.cpus()}
        if o.time_min is None and item.time_limit is not None:
            changes["time_min"] = max(1, math.ceil(item.time_limit / 60))
        if item.kind == "fit":
            changes["tasks_per_node"] = 1
            if item.gpu and o.gpus is None:
                changes["gpus"] = self.nproc
        else:
            changes.update(nodes=1, tasks_per_node=1)
            if item.gpu or o.gpus:
                changes["gpus"] = 1
        return replace(o, **changes)

    def _submitter(self, options: slurm.SlurmOptions, dependency: str | None = None) -> Any:
        params: dict[str, Any] = {"job_name": self.name, "signal_delay_s": 30, "time": options.time_min,
                                  "setup": [f"cd {shlex.quote(str(self.run_dir))}"]}
        if dependency:
            extra = dict(options.sbatch)
            extra.update({"dependency": dependency, "kill-on-invalid-dep": "yes"})
            options = replace(options, sbatch=tuple(extra.items()))
        return slurm.slurm_executor(self.folder / "%j", options, **params)

    # ------------------------------------------------------------------ the record of jobs
    def _load_record(self) -> dict[str, dict]:
        try:
            record = json.loads((self.folder / JOBS_RECORD).read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def _save_record(self) -> None:
        atomic_write(self.folder / JOBS_RECORD, json.dumps(self.record, indent=1, sort_keys=True))

    def _remember(self, job: _Job) -> None:
        item = job.item
        self.record[item.label] = {"job_id": job.job_id, "attempt_dir": str(item.attempt_dir), "key": _item_key(item),
                                   "kind": item.kind}
        self.jobs[item.label] = job

    def _listed(self, job_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """{job id: (state, job name)} for the jobs Slurm still lists (squeue)."""
        bases = sorted({str(j).split("_")[0] for j in job_ids})
        if not bases:
            return {}
        text = slurm._output(["squeue", "--states=all", "-r", "-h", "-o", "%i|%T|%j", "-j", ",".join(bases)])
        listed = {}
        for line in (text or "").splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3:
                listed[parts[0]] = (parts[1].split()[0].rstrip("+"), parts[2])
        return listed

    # ------------------------------------------------------------------ submitting
    def _adopt(self, items: Sequence[WorkItem], on_done: OnDone, finished: dict[str, Outcome]) -> list[WorkItem]:
        """Adopt the jobs of a previous head still queued or running; returns the items left to submit."""
        previous = self._load_record()
        self.record = dict(previous)
        wanted = {item.label: item for item in items}
        candidates = {label: rec for label, rec in previous.items()
                      if label in wanted and rec.get("key") == _item_key(wanted[label])}
        listed = self._listed([rec["job_id"] for rec in candidates.values()])
        adopted_fits = set()
        left = []
        for item in items:
            rec = candidates.get(item.label)
            state, name = listed.get(rec["job_id"], (None, None)) if rec else (None, None)
            if rec and name == self.name and state in ACTIVE_STATES:
                if item.depends_on is not None and item.depends_on not in adopted_fits and state != "RUNNING":
                    _scancel([rec["job_id"]])  # its fit is submitted anew: its dependency is stale
                    left.append(item)
                    continue
                item.attempt_dir = Path(rec["attempt_dir"])
                self.jobs[item.label] = _Job(item, rec["job_id"], time.monotonic(), adopted=True, state=state, seen=True)
                if item.kind == "fit":
                    adopted_fits.add(item.label)
                continue
            if rec and name == self.name and state == "COMPLETED":
                out = outcome_from_result(item, Path(rec["attempt_dir"]))
                if out is not None and out.status == "ok":  # it finished while no head watched
                    finished[item.label] = out
                    on_done(item, out)
                    continue
            left.append(item)
        if self.jobs:
            say(self.progress, f"slurm: adopted {len(self.jobs)} job(s) of a previous head still queued or running "
                                f"({', '.join(sorted(j.job_id for j in self.jobs.values()))})")
        return left

    def _submit_fit(self, item: WorkItem) -> None:
        spec_path = self._claim(item)
        with _sbatch_errors(item.label):
            job = self._submitter(self.item_options(item)).submit(run_in_job, str(spec_path), self.cpus())
        self._remember(_Job(item, str(job.job_id), time.monotonic()))
        self._save_record()

    def _submit_units(self, units: list[WorkItem], fit_job: str | None) -> None:
        spec_paths = [str(self._claim(item)) for item in units]
        submitter = self._submitter(self.item_options(units[0]), f"afterok:{fit_job}" if fit_job else None)
        with _sbatch_errors(f"{units[0].imputer} units"):
            jobs = submitter.map_array(run_in_job, spec_paths, [self.cpus()] * len(units))
        for item, job in zip(units, jobs):
            self._remember(_Job(item, str(job.job_id), time.monotonic()))
        self._save_record()

    def _claim(self, item: WorkItem) -> Path:
        item.spec = dict(item.spec, threads=self.cpus())
        return item.claim_attempt()

    # ------------------------------------------------------------------ outcomes
    def _outcome(self, job: _Job) -> Outcome | None:
        """The finished job's outcome; None while its result may still be on its way."""
        item = job.item
        attempt = item.attempt_dir
        out = outcome_from_result(item, attempt)  # type: ignore[arg-type]
        if out is not None:  # the worker finished its work: its own outcome, whatever Slurm's state
            return out
        if job.state == "COMPLETED" and time.monotonic() - (job.finished_at or 0) < RESULT_GRACE_S:
            return None
        logs = [self.folder / job.job_id / f"{job.job_id}_0_log.err", self.folder / job.job_id / f"{job.job_id}_0_log.out"]
        failure = slurm.job_failure(job.job_id, logs)
        what = "fit" if item.kind == "fit" else f"impute L{item.level:g} r{item.replicate}"
        status = "timed_out" if failure.state == "TIMEOUT" else "crashed"
        tail = log_tail(attempt / LOG_NAME) if attempt is not None else None  # type: ignore[operator]
        return Outcome(status, f"imputer {item.imputer!r}: {what}: {failure}",
                       procs.signal_name(failure.signal) if failure.signal else None, failure.exit_code,
                       tail or failure.log_tail or None, {"slurm": {"job_id": job.job_id, "state": failure.state,
                                                                    "reason": failure.reason}}, attempt)

    def _show(self, job: _Job) -> None:
        label = job.item.label
        if job.state != "RUNNING":
            self.progress.update(f"{label} · {job.state.lower()} (Slurm job {job.job_id})", 0, None)
            return
        try:
            record = json.loads((job.item.attempt_dir / PROGRESS_NAME).read_text())  # type: ignore[operator]
        except (OSError, ValueError):
            record = {"stage": "running", "completed": 0, "total": None}
        if record != job.progress_seen:
            job.progress_seen = record
            self.progress.update(f"{label} · {record.get('stage')} (Slurm job {job.job_id})",
                                 record.get("completed") or 0, record.get("total"))

    def _show_counts(self, n_done: int, n_failed: int) -> None:
        states = [job.state for job in self.jobs.values()]
        counts = (states.count("PENDING"), sum(s not in ("PENDING",) for s in states), n_done, n_failed)
        if counts != self._counts_shown:
            self._counts_shown = counts
            total = len(states) + n_done + n_failed
            self.progress.update(f"slurm jobs · {counts[0]} pending, {counts[1]} running, {n_done} done, "
                                 f"{n_failed} failed", n_done + n_failed, total)

    # ------------------------------------------------------------------ the loop
    def run(self, items: Sequence[WorkItem], on_done: OnDone) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        finished: dict[str, Outcome] = {}
        labels = {item.label for item in items}
        try:
            left = self._adopt(items, on_done, finished)
            fits = {item.label: item for item in left if item.kind == "fit"}
            for item in fits.values():
                self._submit_fit(item)
            by_imputer: dict[str, list[WorkItem]] = {}
            for item in left:
                if item.kind != "fit":
                    by_imputer.setdefault(item.imputer, []).append(item)
            for units in by_imputer.values():
                dep = units[0].depends_on
                if dep is not None and dep in finished and finished[dep].status != "ok":
                    for item in units:
                        finished[item.label] = out = skipped(item, finished[dep])
                        on_done(item, out)
                    continue
                fit_job = self.jobs[dep].job_id if dep is not None and dep in self.jobs else None
                self._submit_units(units, fit_job)
            if self.jobs:
                say(self.progress, f"slurm: {len(self.jobs)} job(s) of this run named {self.name} "
                                    f"(squeue --name={self.name}; logs in {self.folder})")
            self._wait(on_done, finished)
        except RunInterrupted:
            if self.jobs:
                say(self.progress, f"slurm: {len(self.jobs)} job(s) left queued or running; rerun with the same --run "
                                    f"to adopt them, or stop them with: scancel --name={self.name}")
            raise
        missing = labels - set(finished)
        if missing:
            raise RuntimeError(f"work items without an outcome: {sorted(missing)}")

    def _wait(self, on_done: OnDone, finished: dict[str, Outcome]) -> None:
        n_failed = 0
        while self.jobs:
            states = slurm.job_states([job.job_id for job in self.jobs.values()])
            now = time.monotonic()
            for label, job in list(self.jobs.items()):
                if label not in self.jobs:  # skipped with its failed fit in this pass
                    continue
                state = states.get(job.job_id)
                if state is None:
                    if job.seen or now - job.submitted > MISSING_GRACE_S:
                        state = "COMPLETED" if outcome_from_result(job.item, job.item.attempt_dir) else "UNKNOWN"  # type: ignore[arg-type]
                    else:
                        continue
                job.seen = True
                job.state = state
                if state not in slurm.FINISHED_STATES and state != "UNKNOWN":
                    self._show(job)
                    continue
                job.finished_at = job.finished_at or now
                out = self._outcome(job)
                if out is None:
                    continue
                del self.jobs[label]
                finish_stage(self.progress, label, out.status)
                finished[label] = out
                n_failed += out.status != "ok"
                on_done(job.item, out)
                if job.item.kind == "fit" and out.status != "ok":
                    self._skip_units_of(label, out, on_done, finished)
            self._show_counts(len(finished) - n_failed, n_failed)
            if self.jobs:
                time.sleep(self.poll_s)
        self.progress.remove("slurm jobs")

    def _skip_units_of(self, fit_label: str, fit_out: Outcome, on_done: OnDone, finished: dict[str, Outcome]) -> None:
        """A failed fit: cancel its units' array (pending on ``afterok``) and report them skipped."""
        units = [job for job in self.jobs.values() if job.item.depends_on == fit_label]
        _scancel(sorted({job.job_id.split("_")[0] for job in units}))
        for job in units:
            del self.jobs[job.item.label]
            self.progress.remove(job.item.label)
            finished[job.item.label] = out = skipped(job.item, fit_out)
            on_done(job.item, out)


@contextlib.contextmanager
def _sbatch_errors(what: str) -> Iterator[None]:
    """sbatch refusing a job (a bad partition, account or flag) -> one-line ``ImpbenchError``."""
    from submitit.core import utils as submitit_utils

    from impbench.errors import ImpbenchError

    quiet = io.StringIO()  # submitit prints sbatch's stderr itself; the error below says it once
    try:
        with contextlib.redirect_stderr(quiet):
            yield
    except (submitit_utils.FailedJobError, submitit_utils.FailedSubmissionError, OSError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise ImpbenchError(f"--executor slurm: sbatch refused the job of {what}: "
                            f"{lines[-1] if lines else type(exc).__name__}") from None


def _scancel(job_ids: Sequence[str]) -> None:
    if job_ids:
        slurm._output(["scancel", *job_ids])


def make_slurm_executor(run_dir: Path, options: slurm.SlurmOptions | None, *, threads: int | None, nproc: int,
                        progress: RichProgress) -> SlurmExecutor:
    """The executor of ``--executor slurm`` after the checks: Slurm answers (else
    ``ImpbenchError``), and the run folder's file system, printed."""
    from impbench.errors import ImpbenchError

    reason = slurm.slurm_available()
    if reason is not None:
        raise ImpbenchError(f"--executor slurm: {reason}")
    say(progress, f"slurm: run folder {Path(run_dir).resolve()}: {slurm.check_shared_filesystem(run_dir)}")
    return SlurmExecutor(run_dir, options or slurm.SlurmOptions(), threads=threads, nproc=nproc, progress=progress)


def say(progress: RichProgress, message: str) -> None:
    """A line for the user: above the progress bars, or on stderr when they are off."""
    if progress.enabled:
        progress.print(message)
    else:
        print(message, file=sys.stderr, flush=True)
