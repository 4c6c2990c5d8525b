"""Slurm helpers (impbench/bench/exec/slurm.py): unit tests on mocked Slurm commands, and, marked
``slurm``, the same helpers against a real Slurm (scripts/slurm-local.sh start)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from impbench.bench.exec import slurm
from impbench.errors import ImpbenchError

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw 0 0
server:/export /shared nfs4 rw,vers=4.2 0 0
lustre@tcp:/scratch /scratch lustre rw 0 0
/dev/vdb /shared/local\\040disk xfs rw 0 0
weird /odd fuse.mystery rw 0 0
"""


# ---------------------------------------------------------------- file systems
@pytest.mark.parametrize(
    "path, start, fstype",
    [
        ("/home/me/run", "local", "ext4"),
        ("/tmp/run", "local", "tmpfs"),
        ("/shared/lab/run", "shared", "nfs4"),
        ("/shared", "shared", "nfs4"),
        ("/sharedx/run", "local", "ext4"),  # a prefix of the name is not a parent folder
        ("/scratch/u/run", "shared", "lustre"),
        ("/shared/local disk/run", "local", "xfs"),  # longest mount point, octal escape decoded
        ("/odd/run", "cannot be checked", "fuse.mystery"),
    ],
)
def test_check_shared_filesystem_takes_the_longest_mount(path, start, fstype):
    said = slurm.check_shared_filesystem(path, MOUNTS)
    assert said.startswith(start) and fstype in said
    if start == "local":
        assert "every node mounts" in said


def test_check_shared_filesystem_without_mounts():
    assert slurm.check_shared_filesystem("/x", "").startswith("cannot be checked")
    assert slurm.check_shared_filesystem(Path.cwd())  # the real /proc/mounts reads


# ---------------------------------------------------------------- options
def test_options_table_then_flags_win():
    options = slurm.parse_slurm_options(
        ["time=1-02:03:04", "mem=16GB", "gpus=2", "partition=gpu"],
        {"partition": "cpu", "account": "lab", "cpus_per_task": 8, "nodes": 2, "tasks-per-node": 4,
         "sbatch": ["--qos=high", "--exclusive"]},
    )
    assert options == slurm.SlurmOptions(
        partition="gpu", account="lab", time_min=(26 * 60 + 3) + 1, mem="16G", gpus=2, cpus_per_task=8,
        nodes=2, tasks_per_node=4, sbatch=(("qos", "high"), ("exclusive", True)),
    )


@pytest.mark.parametrize("text", ["45", "10:30", "02:00:00", "3-00", "3-04:05", "0-00:00:59", "2-1:0:1"])
def test_time_in_minutes_matches_a_slow_reference(text):
    # reference: count seconds by Slurm's documented meaning, round up to minutes
    days, _, rest = text.rpartition("-") if "-" in text else ("0", "", text)
    parts = [int(p) for p in rest.split(":")]
    if "-" in text:
        h, m, s = (parts + [0, 0])[:3]
    else:
        h, m, s = {1: (0, parts[0], 0), 2: (0, *parts), 3: tuple(parts)}[len(parts)]
    seconds = int(days) * 86400 + h * 3600 + m * 60 + s
    minutes = seconds // 60 + (1 if seconds % 60 else 0)
    assert slurm.parse_time_minutes(text) == minutes


@pytest.mark.parametrize("pair", ["time=0", "time=soon", "mem=lots", "gpus=-1", "nodes=0", "sbatch=-q high", "cpus_per_task=x"])
def test_bad_option_value_is_one_line(pair):
    with pytest.raises(ImpbenchError) as err:
        slurm.parse_slurm_options([pair])
    assert "\n" not in str(err.value) and pair.split("=")[0] in str(err.value)


def test_unknown_key_names_the_valid_keys():
    with pytest.raises(ImpbenchError, match="unknown Slurm option 'queue'.*partition, account, time, mem") as err:
        slurm.parse_slurm_options(["queue=x"])
    assert "\n" not in str(err.value)
    with pytest.raises(ImpbenchError, match=r"\[slurm\] qos"):
        slurm.parse_slurm_options([], {"qos": "x"})
    with pytest.raises(ImpbenchError, match="expected key=value"):
        slurm.parse_slurm_options(["partition"])


def test_submitit_params_reach_the_sbatch_file(tmp_path):
    options = slurm.parse_slurm_options(
        ["partition=gpu", "account=lab", "time=90", "mem=8G", "gpus=1", "cpus_per_task=4", "nodes=2",
         "tasks_per_node=3", "sbatch=--qos=high --exclusive"])
    params = slurm.submitit_params(options)
    assert all(key.startswith("slurm_") for key in params)
    assert slurm.submitit_params(slurm.SlurmOptions()) == {}
    executor = slurm.slurm_executor(tmp_path, options)
    text = executor._make_submission_file_text("true", "uid")
    for line in ["--partition=gpu", "--account=lab", "--time=90", "--mem=8G", "--gpus-per-node=1",
                 "--cpus-per-task=4", "--nodes=2", "--ntasks-per-node=3", "--qos=high", "#SBATCH --exclusive"]:
        assert line in text, line


# ---------------------------------------------------------------- availability, states, failures
def test_slurm_available_without_sbatch(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert "no sbatch on PATH" in slurm.slurm_available()


def test_slurm_available_when_sinfo_fails(monkeypatch):
    monkeypatch.setattr(slurm.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(slurm, "_slurm_command", lambda argv, timeout=30: subprocess.CompletedProcess(
        argv, 1, "", "sinfo: error: Unable to contact slurm controller (connect failure)\n"))
    said = slurm.slurm_available()
    assert said.startswith("sinfo failed: sinfo: error: Unable to contact") and "slurm-local.sh" in said


def fake_slurm(monkeypatch, answers: dict[str, str | None]):
    """Answer each Slurm command (by its first word) with ``answers[word]`` (None: it fails)."""
    calls = []

    def run(argv, timeout=30):
        calls.append(list(argv))
        out = answers.get(argv[0])
        return subprocess.CompletedProcess(argv, 1 if out is None else 0, out or "", "" if out else "error")

    monkeypatch.setattr(slurm, "_slurm_command", run)
    monkeypatch.setattr(slurm, "_accounting", None)
    return calls


SACCT_FAILURES = [
    ("TIMEOUT|0:0|TimeLimit|\nCANCELLED|0:15||1204K\nCOMPLETED|0:0||0\n", "TIMEOUT", "time limit"),
    ("OUT_OF_MEMORY|0:125|None|\nOUT_OF_MEMORY|0:125||2097152K\nCOMPLETED|0:0||8K\n", "OUT_OF_MEMORY", "MaxRSS 2097152K"),
    ("FAILED|0:0|None|\nOUT_OF_MEMORY|0:125||600M\n", "OUT_OF_MEMORY", "MaxRSS 600M"),  # the step's worse state wins
    ("CANCELLED by 0|0:0|None|\n", "CANCELLED", "cancelled"),
    ("FAILED|3:0|NonZeroExitCode|\nFAILED|3:0||9K\n", "FAILED", "exit code 3"),
]


@pytest.mark.parametrize("sacct, state, words", SACCT_FAILURES)
def test_job_failure_from_sacct(monkeypatch, tmp_path, sacct, state, words):
    log = tmp_path / "job.err"
    log.write_text("start\n\nTraceback (most recent call last):\nMemoryError\n")
    calls = fake_slurm(monkeypatch, {"sacct": sacct})
    failure = slurm.job_failure("77_3", [log])
    assert failure.state == state and failure.job_id == "77_3"
    said = slurm.job_failure_reason("77_3", [log])
    assert said.startswith(f"Slurm job 77_3: {state}") and words in said and said.endswith("Traceback (most recent call last): | MemoryError")
    assert ["sacct", "-j", "77_3", "--format=State,ExitCode,Reason,MaxRSS", "-P", "-n"] in calls


def test_job_failure_without_accounting_asks_scontrol(monkeypatch, tmp_path):
    fake_slurm(monkeypatch, {"scontrol": "JobId=5 JobName=x JobState=TIMEOUT Reason=TimeLimit Dependency=(null) ExitCode=0:15\n"})
    failure = slurm.job_failure("5")
    assert (failure.state, failure.exit_code, failure.signal, failure.reason) == ("TIMEOUT", 0, 15, "TimeLimit")
    # without cgroups a memory kill is FAILED by signal 9; the log says what happened
    log = tmp_path / "job.out"
    log.write_text("slurmstepd-localhost: error: StepId=6.batch exceeded memory limit (406073344 > 52428800), being killed\n")
    fake_slurm(monkeypatch, {"scontrol": "JobId=6 JobState=FAILED Reason=JobLaunchFailure ExitCode=0:9\n"})
    assert slurm.job_failure("6", [log]).state == "OUT_OF_MEMORY"


def test_job_failure_when_slurm_forgot_the_job(monkeypatch, tmp_path):
    fake_slurm(monkeypatch, {})
    log = tmp_path / "job.out"
    log.write_text("slurmstepd: error: *** JOB 9 ON n1 CANCELLED AT 2024-01-01T00:00:00 DUE TO TIME LIMIT ***\n")
    failure = slurm.job_failure("9", [tmp_path / "missing.err", log])
    assert failure.state == "TIMEOUT" and "DUE TO TIME LIMIT" in failure.log_tail
    assert str(slurm.job_failure("10")) == "Slurm job 10: UNKNOWN"


def test_job_states_from_sacct_or_squeue(monkeypatch):
    fake_slurm(monkeypatch, {"sacct": "1|COMPLETED\n2_0|CANCELLED by 0\n2_1|RUNNING\n"})
    assert slurm.job_states(["1", "2_0"]) == {"1": "COMPLETED", "2_0": "CANCELLED", "2_1": "RUNNING"}
    calls = fake_slurm(monkeypatch, {"squeue": "3_0|TIMEOUT\n3_1|PENDING\n"})
    assert slurm.job_states(["3_0", "3_1"]) == {"3_0": "TIMEOUT", "3_1": "PENDING"}
    assert calls[-1][:2] == ["squeue", "--states=all"] and slurm.job_states([]) == {}


# ---------------------------------------------------------------- a real Slurm
def _square(x: int) -> int:
    return x * x


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _hog_memory(megabytes: int) -> int:
    block = bytearray(megabytes * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    time.sleep(30)
    return len(block)


def _wait(jobs, limit_s: float = 240.0) -> None:
    deadline = time.monotonic() + limit_s
    while not all(job.done() for job in jobs):
        assert time.monotonic() < deadline, f"jobs not done after {limit_s} s: {jobs}"
        time.sleep(2)


@pytest.fixture(scope="module")
def slow_jobs(tmp_path_factory):
    """A job past its time limit and one past its memory, submitted first so that the other
    tests run while Slurm gets round to killing them (its time limits are whole minutes)."""
    folder = tmp_path_factory.mktemp("slurm-slow")
    script = folder / "sleep.sh"
    script.write_text("#!/bin/bash\necho started\nsleep 300\n")
    out = folder / "timeout.out"
    sbatch = subprocess.run(["sbatch", "--parsable", "--time=00:00:01", f"--output={out}", str(script)],
                            capture_output=True, text=True, check=True)
    timeout_id = sbatch.stdout.strip().split(";")[0]
    executor = slurm.slurm_executor(folder / "oom", slurm.parse_slurm_options(["mem=200M", "time=5"]))
    oom = executor.submit(_hog_memory, 800)
    yield {"timeout": (timeout_id, out), "oom": oom}
    subprocess.run(["scancel", timeout_id, oom.job_id], capture_output=True)


@pytest.mark.slurm
def test_real_function_job_and_array(tmp_path, slow_jobs):
    executor = slurm.slurm_executor(tmp_path, slurm.parse_slurm_options(["time=5", "cpus_per_task=1"]), job_name="impbench-test")
    job = executor.submit(_square, 7)
    jobs = executor.map_array(_square, [1, 2, 3])
    assert job.result() == 49
    assert [j.result() for j in jobs] == [1, 4, 9]
    assert len({j.job_id.split("_")[0] for j in jobs}) == 1 and all("_" in j.job_id for j in jobs)
    assert slurm.job_states([j.job_id for j in jobs]) == {j.job_id: "COMPLETED" for j in jobs}


@pytest.mark.slurm
def test_real_timeout_is_reported(slow_jobs):
    job_id, out = slow_jobs["timeout"]
    deadline = time.monotonic() + 240
    while slurm.job_states([job_id]).get(job_id) not in slurm.FINISHED_STATES:
        assert time.monotonic() < deadline, "the job outlived its time limit by minutes"
        time.sleep(3)
    said = slurm.job_failure_reason(job_id, [out])
    assert said.startswith(f"Slurm job {job_id}: TIMEOUT"), said
    assert "started" in said  # the log's tail


@pytest.mark.slurm
def test_real_memory_kill_is_reported(slow_jobs):
    job = slow_jobs["oom"]
    _wait([job])
    said = slurm.job_failure_reason(job)
    assert said.startswith(f"Slurm job {job.job_id}: OUT_OF_MEMORY"), said
    with pytest.raises(Exception):
        job.result()
