"""Slurm helpers for the Slurm executor: is Slurm there, is the run folder shared, the
``--slurm key=value`` / ``[slurm]`` options, their submitit parameters, job states, and why a job
failed.

Nothing here submits work on its own; the executor does, through ``slurm_executor`` (a
``submitit.SlurmExecutor`` whose jobs read their state from ``sacct`` when Slurm keeps
accounting and from ``squeue`` otherwise, e.g. on the single-node Slurm of
``scripts/slurm-local.sh``, which has no accounting database).

Every call to a Slurm command goes through ``_slurm_command`` (the tests replace it).
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from impbench.errors import ImpbenchError

#: The keys of ``--slurm key=value`` and of the options file's ``[slurm]`` table.
SLURM_OPTION_KEYS: dict[str, str] = {
    "partition": "partition to submit to (sbatch --partition)",
    "account": "account to charge (sbatch --account)",
    "time": "time limit per job: minutes, or [D-]HH:MM[:SS] (sbatch --time)",
    "mem": "memory per node, e.g. 16G or 500M (sbatch --mem)",
    "gpus": "GPUs per node (sbatch --gpus-per-node)",
    "cpus_per_task": "CPUs per task (sbatch --cpus-per-task)",
    "nodes": "nodes per job (sbatch --nodes)",
    "tasks_per_node": "tasks per node (sbatch --ntasks-per-node)",
    "sbatch": "more sbatch flags, long form, e.g. \"--qos=high --constraint=a100\"",
}

#: Network and cluster file systems every node of a cluster can mount.
SHARED_FS_TYPES = frozenset({
    "nfs", "nfs4", "lustre", "gpfs", "beegfs", "cephfs", "ceph", "glusterfs", "fuse.glusterfs",
    "fuse.cephfs", "fuse.beegfs", "cifs", "smb3", "smbfs", "panfs", "orangefs", "pvfs2", "wekafs",
    "fuse.sshfs", "afs", "9p", "virtiofs", "fuse.juicefs", "quobyte", "fuse.quobyte",
})
#: File systems of one machine.
LOCAL_FS_TYPES = frozenset({
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "tmpfs", "overlay", "overlayfs", "f2fs",
    "reiserfs", "jfs", "ramfs", "vfat", "exfat", "ntfs", "ntfs3", "fuseblk", "squashfs",
    "devtmpfs", "aufs", "bcachefs",
})

#: Slurm states of a job that ended without success.
FAILED_STATES = frozenset({"TIMEOUT", "OUT_OF_MEMORY", "CANCELLED", "FAILED", "NODE_FAIL", "PREEMPTED",
                           "BOOT_FAIL", "DEADLINE", "REVOKED"})
#: Slurm states of a job that has ended.
FINISHED_STATES = FAILED_STATES | {"COMPLETED"}
#: What a log says when Slurm killed the job.
_OOM_IN_LOG = re.compile(r"exceeded (job )?memory limit|oom[-_ ]kill|out of memory|out_of_memory", re.IGNORECASE)
_TIME_IN_LOG = re.compile(r"due to time limit", re.IGNORECASE)
LOG_TAIL_LINES = 8


# ---------------------------------------------------------------- running Slurm's commands
def _slurm_command(argv: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Run one Slurm client command, capturing text output (the one place that does)."""
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)


def _output(argv: Sequence[str]) -> str | None:
    """stdout of ``argv`` when it exits 0; None when it fails or cannot start."""
    try:
        done = _slurm_command(argv)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def slurm_available() -> str | None:
    """None when Slurm can take jobs here; otherwise why not, in one line."""
    if shutil.which("sbatch") is None:
        return "no sbatch on PATH: Slurm's client commands are not installed (Debian: slurm-client)"
    try:
        done = _slurm_command(["sinfo", "-h", "-o", "%P %a %D"])
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"sinfo failed: {err}"
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        return "sinfo failed" + (f": {detail[-1]}" if detail else f" (exit {done.returncode})") + \
            " (is slurmctld running? scripts/slurm-local.sh start, then export SLURM_CONF)"
    if not done.stdout.strip():
        return "sinfo lists no partition"
    return None


# ---------------------------------------------------------------- the run folder's file system
def _unescape_mount(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_of(path: str | os.PathLike, mounts: str | None = None) -> tuple[str, str] | None:
    """(mount point, file-system type) of the mount that holds ``path``: the longest mount point
    that is a prefix of it. ``mounts`` is the text of /proc/mounts (read when None); None when
    it cannot be read or nothing matches.
    """
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    target = os.path.realpath(os.path.abspath(os.fspath(path)))
    best: tuple[str, str] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point, fstype = _unescape_mount(fields[1]), fields[2]
        inside = target == point or point == "/" or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, fstype)  # later lines win a tie: they are mounted on top
    return best


def check_shared_filesystem(path: str | os.PathLike, mounts: str | None = None) -> str:
    """One line saying whether ``path`` (the run folder) is on a file system every node can
    mount. Starts with "shared", "local" or "cannot be checked"."""
    found = mount_of(path, mounts)
    if found is None:
        return f"cannot be checked: no mount of {path} found in /proc/mounts"
    point, fstype = found
    base = fstype.lower()
    if base in SHARED_FS_TYPES or base.split(".")[-1] in SHARED_FS_TYPES:
        return f"shared ({fstype} at {point})"
    if base in LOCAL_FS_TYPES:
        return (f"local file system ({fstype} at {point}) (fine for a single-node Slurm); on a cluster the run "
                "folder must be on a file system every node mounts")
    return f"cannot be checked: {path} is on {fstype} at {point}, a file-system type impbench does not know"


# ---------------------------------------------------------------- options
@dataclass(frozen=True)
class SlurmOptions:
    """Resources of the jobs the executor submits; None leaves Slurm's (or the site's) default.

    time_min : time limit in minutes. mem : Slurm's ``--mem`` (e.g. "16G"). gpus : GPUs per node.
    sbatch : more sbatch flags as {long name without dashes: value, or True for a bare flag}.
    """

    partition: str | None = None
    account: str | None = None
    time_min: int | None = None
    mem: str | None = None
    gpus: int | None = None
    cpus_per_task: int | None = None
    nodes: int | None = None
    tasks_per_node: int | None = None
    sbatch: tuple[tuple[str, Any], ...] = ()


def parse_time_minutes(value: Any) -> int:
    """Slurm's time formats (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) -> whole
    minutes, rounded up as Slurm does; ValueError when unreadable or not positive."""
    text = str(value).strip()
    days = 0
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = int(day_text)
        parts = [int(p) for p in text.split(":")]  # D-HH, D-HH:MM, D-HH:MM:SS
        parts += [0] * (3 - len(parts))
        hours, minutes, seconds = parts
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
        elif len(parts) == 2:
            hours, minutes, seconds = 0, parts[0], parts[1]
        elif len(parts) == 3:
            hours, minutes, seconds = parts
        else:
            raise ValueError(text)
    if min(days, hours, minutes, seconds) < 0 or len(parts) > 3:
        raise ValueError(text)
    total_s = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total_s <= 0:
        raise ValueError(text)
    return -(-total_s // 60)


def parse_mem(value: Any) -> str:
    """Slurm's ``--mem``: a number with an optional K/M/G/T unit (B after it allowed); a bare
    number is MiB. Returns the canonical form, e.g. "16G"; ValueError when unreadable."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)B?\s*", str(value), re.IGNORECASE)
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(str(value))
    return f"{int(match.group(1))}{(match.group(2) or 'M').upper()}"


def parse_sbatch_flags(value: Any) -> tuple[tuple[str, Any], ...]:
    """``"--qos=high --exclusive"`` (or a list of such flags) -> (("qos", "high"), ("exclusive", True))."""
    words = shlex.split(value) if isinstance(value, str) else [str(v) for v in value]
    flags: list[tuple[str, Any]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--") or len(word) < 3:
            raise ValueError(f"{word!r} is not a long sbatch flag (write --name=value)")
        name, eq, flag_value = word[2:].partition("=")
        flags.append((name, flag_value if eq else True))
        i += 1
    return tuple(flags)


def _positive_int(value: Any, allow_zero: bool = False) -> int:
    number = int(str(value).strip())
    if number < 0 or (number == 0 and not allow_zero):
        raise ValueError(str(value))
    return number


_PARSERS = {
    "partition": lambda v: str(v).strip() or None,
    "account": lambda v: str(v).strip() or None,
    "time": parse_time_minutes,
    "mem": parse_mem,
    "gpus": lambda v: _positive_int(v, allow_zero=True),
    "cpus_per_task": _positive_int,
    "nodes": _positive_int,
    "tasks_per_node": _positive_int,
    "sbatch": parse_sbatch_flags,
}
_FIELD = {"time": "time_min"}


def parse_slurm_options(pairs: Sequence[str], table: Mapping[str, Any] | None = None) -> SlurmOptions:
    """The Slurm options of a run: the options file's ``[slurm]`` table, then each ``--slurm
    key=value`` (which wins). An unknown key or an unreadable value is an ``ImpbenchError``."""
    raw: dict[str, tuple[Any, str]] = {}
    for key, value in (table or {}).items():
        raw[str(key).replace("-", "_")] = (value, f"[slurm] {key}")
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ImpbenchError(f"--slurm {pair!r}: expected key=value (keys: {', '.join(SLURM_OPTION_KEYS)})")
        raw[key.strip().replace("-", "_")] = (value.strip(), f"--slurm {key.strip()}")
    values: dict[str, Any] = {}
    for key, (value, origin) in raw.items():
        if key not in SLURM_OPTION_KEYS:
            raise ImpbenchError(f"{origin}: unknown Slurm option {key!r}; valid keys: {', '.join(SLURM_OPTION_KEYS)}")
        try:
            values[_FIELD.get(key, key)] = _PARSERS[key](value)
        except (ValueError, TypeError) as err:
            detail = f" ({err})" if key == "sbatch" else ""
            raise ImpbenchError(f"{origin}={value!r}: expected {SLURM_OPTION_KEYS[key]}{detail}") from None
    return SlurmOptions(**values)


def submitit_params(options: SlurmOptions) -> dict[str, Any]:
    """``options`` as parameters of ``submitit.AutoExecutor.update_parameters`` (``slurm_*``
    names); options left at None are left out, so submitit's and the site's defaults apply."""
    params: dict[str, Any] = {
        "slurm_partition": options.partition,
        "slurm_account": options.account,
        "slurm_time": options.time_min,
        "slurm_mem": options.mem,
        "slurm_gpus_per_node": options.gpus,
        "slurm_cpus_per_task": options.cpus_per_task,
        "slurm_nodes": options.nodes,
        "slurm_ntasks_per_node": options.tasks_per_node,
        "slurm_additional_parameters": dict(options.sbatch) or None,
    }
    return {key: value for key, value in params.items() if value is not None}


# ---------------------------------------------------------------- job states
_accounting: bool | None = None


def accounting_enabled() -> bool:
    """True when ``sacct`` answers (Slurm keeps accounting); cached for the process."""
    global _accounting
    if _accounting is None:
        _accounting = _output(["sacct", "-n", "-X", "-o", "JobID", "-S", "now"]) is not None
    return _accounting


def job_states(job_ids: Sequence[str]) -> dict[str, str]:
    """{job id ("123" or "123_4" for an array task): Slurm state} for the jobs Slurm still
    knows, from ``sacct`` when it keeps accounting, else from ``squeue --states=all`` (finished
    jobs stay there for ``MinJobAge``). Array tasks are listed one by one."""
    ids = sorted({str(j).split("_")[0] for j in job_ids})
    if not ids:
        return {}
    if accounting_enabled():
        text = _output(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(ids)])
    else:
        text = _output(["squeue", "--states=all", "-r", "-h", "-o", "%i|%T", "-j", ",".join(ids)])
    states: dict[str, str] = {}
    for line in (text or "").splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id and state:
            states[job_id] = state.split()[0].rstrip("+")  # "CANCELLED by 0" -> CANCELLED
    return states


# ---------------------------------------------------------------- why a job failed
@dataclass(frozen=True)
class JobFailure:
    """What Slurm says about a job that ended; ``str()`` is the line recorded for its unit.

    state : Slurm's state (TIMEOUT, OUT_OF_MEMORY, CANCELLED, FAILED, ...; "UNKNOWN" when Slurm
    no longer knows the job and the log says nothing). exit_code, signal : from ExitCode
    ("3:0" -> 3, 0). reason : Slurm's Reason. max_rss : sacct's MaxRSS ("" when unknown).
    log_tail : the last meaningful lines of the job's log, joined by " | ".
    """

    job_id: str
    state: str
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""
    max_rss: str = ""
    log_tail: str = ""

    def __str__(self) -> str:
        words = {
            "TIMEOUT": "Slurm stopped it at its time limit",
            "OUT_OF_MEMORY": "Slurm killed it past its memory limit",
            "CANCELLED": "cancelled",
            "NODE_FAIL": "its node failed",
            "PREEMPTED": "preempted",
        }
        text = f"Slurm job {self.job_id}: {self.state}"
        detail = [words[self.state]] if self.state in words else []
        if self.state == "FAILED" and self.exit_code:
            detail.append(f"exit code {self.exit_code}")
        if self.signal:
            detail.append(f"signal {self.signal}")
        if self.reason and self.reason not in ("None", "NonZeroExitCode", "TimeLimit"):
            detail.append(f"reason {self.reason}")
        if self.max_rss:
            detail.append(f"MaxRSS {self.max_rss}")
        if detail:
            text += f" ({', '.join(detail)})"
        if self.log_tail:
            text += f"; log: {self.log_tail}"
        return text


def _exit_code(text: str) -> tuple[int | None, int | None]:
    code, _, sig = text.strip().partition(":")
    try:
        return int(code), (int(sig) if sig else None)
    except ValueError:
        return None, None


_STATE_RANK = ("OUT_OF_MEMORY", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "CANCELLED", "FAILED")


def _from_sacct(job_id: str) -> dict | None:
    """State, exit code, reason and MaxRSS from sacct's lines of the job and its steps."""
    text = _output(["sacct", "-j", job_id, "--format=State,ExitCode,Reason,MaxRSS", "-P", "-n"])
    rows = [line.split("|") for line in (text or "").splitlines() if line.strip()]
    rows = [row + [""] * (4 - len(row)) for row in rows]
    if not rows:
        return None
    states = [row[0].split()[0].rstrip("+") for row in rows if row[0].strip()]
    # the allocation's line comes first; a step's worse state (a batch step OUT_OF_MEMORY) wins
    state = next((s for s in _STATE_RANK if s in states), states[0] if states else "UNKNOWN")
    exit_code, sig = _exit_code(rows[0][1])
    rss = [row[3].strip() for row in rows if row[3].strip()]
    return {"state": state, "exit_code": exit_code, "signal": sig, "reason": rows[0][2].strip(),
            "max_rss": max(rss, key=_rss_bytes) if rss else ""}


def _rss_bytes(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)([KMGT]?)", text.strip())
    if match is None:
        return 0.0
    return float(match.group(1)) * 1024 ** " KMGT".index(match.group(2) or " ")


def _from_scontrol(job_id: str) -> dict | None:
    text = _output(["scontrol", "show", "job", "-o", job_id])
    if not text:
        return None
    fields = dict(re.findall(r"(\w+)=(\S*)", text.splitlines()[0]))
    if "JobState" not in fields:
        return None
    exit_code, sig = _exit_code(fields.get("ExitCode", ""))
    return {"state": fields["JobState"], "exit_code": exit_code, "signal": sig,
            "reason": fields.get("Reason", ""), "max_rss": ""}


def log_tail(paths: Sequence[str | os.PathLike], n_lines: int = LOG_TAIL_LINES) -> str:
    """The last ``n_lines`` non-blank lines of the first of ``paths`` that has any, joined by " | "."""
    for path in paths:
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        kept = [line.strip() for line in lines if line.strip()]
        if kept:
            return " | ".join(kept[-n_lines:])
    return ""


def _job_logs(job: Any) -> list[Path]:
    paths = getattr(job, "paths", None)
    if paths is None:
        return []
    logs = []
    for name in ("stderr", "stdout"):
        try:
            logs.append(Path(getattr(paths, name)))
        except Exception:  # noqa: BLE001 - a submitit job without a resolved path
            continue
    return logs


def job_failure(job: Any, logs: Sequence[str | os.PathLike] = ()) -> JobFailure:
    """Why ``job`` (a submitit job, or a job id such as "123" or "123_4") ended, from ``sacct``
    when Slurm keeps accounting, else ``scontrol show job``, else its log alone; ``logs`` (by
    default a submitit job's stderr then stdout) give the tail. A log in which Slurm says it
    killed the job for memory or time decides the state when Slurm's own record is not that
    precise (without cgroups a memory kill is recorded as FAILED, signal 9)."""
    job_id = str(getattr(job, "job_id", job))
    log_paths = [Path(p) for p in logs] or _job_logs(job)
    info = _from_sacct(job_id) if accounting_enabled() else None
    info = info or _from_scontrol(job_id) or {"state": "UNKNOWN", "exit_code": None, "signal": None,
                                               "reason": "", "max_rss": ""}
    full_log = ""
    for path in log_paths:
        try:
            full_log += Path(path).read_text(errors="replace")
        except OSError:
            continue
    if info["state"] in ("FAILED", "CANCELLED", "UNKNOWN") and _OOM_IN_LOG.search(full_log):
        info["state"] = "OUT_OF_MEMORY"
    elif info["state"] in ("CANCELLED", "UNKNOWN") and _TIME_IN_LOG.search(full_log):
        info["state"] = "TIMEOUT"
    return JobFailure(job_id=job_id, log_tail=log_tail(log_paths), **info)


def job_failure_reason(job: Any, logs: Sequence[str | os.PathLike] = ()) -> str:
    """``str(job_failure(job, logs))``: the one line recorded as a failed unit's error."""
    return str(job_failure(job, logs))


# ---------------------------------------------------------------- submitit
def slurm_executor(folder: str | os.PathLike, options: SlurmOptions | None = None, **params: Any):
    """A ``submitit.SlurmExecutor`` writing its job files and logs in ``folder``, with
    ``options`` applied (and any further SlurmExecutor parameters, e.g. ``job_name``,
    ``array_parallelism``, ``setup``). Its jobs read their states through ``job_states`` (sacct,
    or squeue when Slurm keeps no accounting), so ``job.done()`` and ``job.result()`` work on
    the single-node Slurm of ``scripts/slurm-local.sh`` too."""
    executor = _executor_class()(folder=folder)
    converted = {key.removeprefix("slurm_"): value for key, value in submitit_params(options or SlurmOptions()).items()}
    converted.update(params)
    executor.update_parameters(**converted)
    return executor


@functools.cache
def _executor_class():
    """submitit's SlurmExecutor whose jobs ask ``job_states`` (made on first use: submitit is
    imported only when a Slurm run starts)."""
    from submitit.slurm import slurm as submitit_slurm

    class StateWatcher(submitit_slurm.SlurmInfoWatcher):
        def update(self) -> None:
            to_check = self._registered - self._finished
            if not to_check:
                return
            self._num_calls += 1
            states = job_states(sorted(to_check))
            self._info_dict.update({job_id: {"JobID": job_id, "State": state} for job_id, state in states.items()})
            self._last_status_check = time.time()
            for job_id in to_check:
                if self.is_done(job_id, mode="cache"):
                    self._finished.add(job_id)

    class ImpbenchSlurmJob(submitit_slurm.SlurmJob):
        watcher = StateWatcher(delay_s=60)

    class ImpbenchSlurmExecutor(submitit_slurm.SlurmExecutor):
        job_class = ImpbenchSlurmJob

    return ImpbenchSlurmExecutor
