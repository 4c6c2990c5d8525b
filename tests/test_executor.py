"""The execution engine: executors give identical results, jobs run in parallel with their
share of the cores, GPU items one per device, the run lock, attempt folders, progress."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from impbench import hookimpl
from impbench.bench.exec import gpus as gpus_module
from impbench.bench import runner as runner_module
from impbench.bench.exec.lock import LOCK_NAME, RunLock
from impbench.bench.runner import Runner
from impbench.bench.settings import RunSettings, worker_threads
from impbench.bench.units import fit_key, new_attempt_dir, unit_key
from impbench.errors import ImpbenchError
from impbench.genotypes import MISSING
from impbench.imputers import registry
from impbench.imputers.base import Imputation, Imputer


@dataclass
class SleepOptions:
    seconds: float = 0.6
    meet: int = 0  # > 0: wait (at most MEET_WAIT_S) until this many units are in impute together
    meet_dir: str = ""


#: How long a unit waits for the others to meet it: far past any start-up delay under load; a
#: run that does not run them in parallel waits this long once and then fails the test.
MEET_WAIT_S = 120.0


class Sleeper(Imputer):
    """Fills 0|0 after sleeping; writes when it ran, its threads and GPU into its work folder."""

    name = "sleeper"
    Options = SleepOptions

    def fit(self, panel, val, ctx):
        pass

    def impute(self, target, ctx):
        start = time.time()
        if self.options.meet:  # an event, not a race against the clock: both are running at once
            folder = Path(self.options.meet_dir)
            (folder / f"{os.getpid()}").touch()
            deadline = time.monotonic() + MEET_WAIT_S
            while len(list(folder.iterdir())) < self.options.meet and time.monotonic() < deadline:
                time.sleep(0.02)
        time.sleep(self.options.seconds)
        record = {"start": start, "end": time.time(), "threads": ctx.threads,
                  "omp": os.environ.get("OMP_NUM_THREADS"), "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
                  "pid": os.getpid()}
        (Path(ctx.work_dir) / "ran.json").write_text(json.dumps(record))
        calls = np.where(target.codes == MISSING, 1, target.codes).astype(np.uint8)
        return Imputation(calls=calls, dosage=np.zeros(calls.shape, dtype=np.float32))


class SleeperPlugin:
    @hookimpl
    def register_imputers(self, register):
        register(Sleeper)


@pytest.fixture(autouse=True)
def plugin(monkeypatch):
    monkeypatch.setenv(registry.LOAD_PLUGINS_ENV, "")
    registry.reset()
    registry.register_plugin(SleeperPlugin(), "sleeper-plugin")
    yield
    registry.reset()


@pytest.fixture(scope="module")
def store():
    from impbench.data.simulate import simulate_matrix
    from impbench.testing import InMemoryStore

    sim = simulate_matrix(n_samples=60, sequence_length=60_000, seed=5)
    return InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 200))), name="mem")


def settings(out, **kw) -> RunSettings:
    base = dict(dataset="mem", imputers=["major", "knn"], levels=(0.1,), replicates=2, out=Path(out),
                run_name="t", device="cpu", n_boot=100)
    base.update(kw)
    return RunSettings(**base)


def ran(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(run_dir.glob("models/sleeper/attempts/*/work/ran.json"))]


def overlaps(records: list[dict]) -> bool:
    spans = sorted((r["start"], r["end"]) for r in records)
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:]))


# ---------------------------------------------------------------------------- identical results
def test_results_identical_inline_local_and_parallel(store, tmp_path):
    tables = {}
    for name, kw in {"inline": dict(executor="inline"), "jobs1": dict(jobs=1), "jobs2": dict(jobs=2)}.items():
        outcome = Runner(settings(tmp_path / name), store).run()
        assert outcome.failures == {} and outcome.units_done == 4
        tables[name] = {t: (outcome.run_dir / f"{t}.csv").read_text() for t in ("metrics", "pairs", "replicates")}
    assert tables["inline"] == tables["jobs1"] == tables["jobs2"]


# ---------------------------------------------------------------------------- parallel jobs
def test_jobs_run_in_parallel_with_their_share_of_threads(store, tmp_path):
    one = Runner(settings(tmp_path / "one", imputers=["sleeper"], jobs=1, threads=2), store).run()
    (tmp_path / "meet").mkdir()
    two = Runner(settings(tmp_path / "two", imputers=["sleeper"], jobs=2, threads=2,
                          options={"sleeper": {"meet": 2, "meet_dir": str(tmp_path / "meet")}}), store).run()
    serial, parallel = ran(one.run_dir), ran(two.run_dir)
    assert len(serial) == len(parallel) == 2
    assert not overlaps(serial) and overlaps(parallel)
    share = worker_threads(2, 2)
    assert {r["threads"] for r in parallel} == {share} and {r["omp"] for r in parallel} == {str(share)}
    assert len({r["pid"] for r in parallel}) == 2 and os.getpid() not in {r["pid"] for r in parallel}


def test_thread_division():
    assert worker_threads(None, 1, cores=8) == 8
    assert worker_threads(None, 3, cores=8) == 2
    assert worker_threads(6, 2, cores=8) == 4  # capped: jobs x threads <= cores
    assert worker_threads(2, 2, cores=8) == 2
    assert worker_threads(None, 16, cores=2) == 1


def test_one_gpu_item_per_device(store, tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module, "wants_gpu", lambda cls, device: True)
    monkeypatch.setattr(runner_module, "visible_gpus", lambda device: [None])
    single = Runner(settings(tmp_path / "one", imputers=["sleeper"], jobs=2), store).run()
    assert not overlaps(ran(single.run_dir))  # one GPU: one at a time, whatever --jobs says
    monkeypatch.setattr(runner_module, "visible_gpus", lambda device: ["0", "1"])
    (tmp_path / "meet").mkdir()
    double = Runner(settings(tmp_path / "two", imputers=["sleeper"], jobs=2,
                             options={"sleeper": {"meet": 2, "meet_dir": str(tmp_path / "meet")}}), store).run()
    records = ran(double.run_dir)
    assert overlaps(records) and {r["gpu"] for r in records} <= {"0", "1"}


def test_gpu_need_is_the_class_attribute(monkeypatch):
    from impbench.imputers.baselines import KnnImputer

    class GpuImputer(KnnImputer):
        uses_gpu = True

    monkeypatch.setattr(gpus_module, "gpu_driver_present", lambda: True)
    assert gpus_module.wants_gpu(GpuImputer, "auto") and not gpus_module.wants_gpu(GpuImputer, "cpu")
    assert not gpus_module.wants_gpu(KnnImputer, "auto")


def test_visible_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert gpus_module.visible_gpus("auto") == ["2", "3"]
    assert gpus_module.visible_gpus("cuda:1") == [None]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpus_module.visible_gpus("cuda") == [None]


# ---------------------------------------------------------------------------- time limits
def test_time_limit_per_imputer_overrides_the_run_default(store, tmp_path):
    outcome = Runner(settings(tmp_path, imputers=["sleeper", "major"], levels=(0.1,), replicates=1, jobs=2,
                              time_limit=600, time_limits={"sleeper": 20}, options={"sleeper": {"seconds": 600}}),
                     store).run()  # 20 s: far past a loaded machine's worker start, so the fit is never what times out
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    unit = manifest["imputers"]["sleeper"]["units"][0]
    assert unit["status"] == "timed_out" and "timed out after 20 s" in unit["error"]
    assert manifest["imputers"]["major"]["status"] == "ok"
    assert manifest["settings"]["time_limits"] == {"sleeper": 20} and manifest["settings"]["time_limit"] == 600


# ---------------------------------------------------------------------------- keys and attempts
def test_keys_change_with_what_they_are_keyed_by():
    base = fit_key("knn", {"k": 5}, "h", None, seed=0)
    assert base == fit_key("knn", {"k": 5}, "h", None, seed=0)
    assert len({base, fit_key("knn", {"k": 6}, "h", None, seed=0), fit_key("knn", {"k": 5}, "g", None, seed=0),
                fit_key("knn", {"k": 5}, "h", "CEU", seed=0), fit_key("major", {"k": 5}, "h", None, seed=0)}) == 5
    unit = unit_key("knn", 0.1, 0, "uniform", "abc")
    assert len({unit, unit_key("knn", 0.1, 1, "uniform", "abc"), unit_key("knn", 0.1, 0, "uniform", "abd"),
                unit_key("knn", 0.1, 0, "array", "abc"), unit_key("knn", 0.2, 0, "uniform", "abc")}) == 5


def test_attempt_folders_are_never_shared(tmp_path):
    folders = [new_attempt_dir(tmp_path, "L0.1.r0") for _ in range(3)]
    assert [f.name for f in folders] == ["L0.1.r0-1", "L0.1.r0-2", "L0.1.r0-3"]
    (tmp_path / "L0.1.r0-7").mkdir()
    assert new_attempt_dir(tmp_path, "L0.1.r0").name == "L0.1.r0-8"


def test_changed_mask_invalidates_a_done_marker(store, tmp_path):
    first = Runner(settings(tmp_path, imputers=["major"], levels=(0.1,), replicates=1), store).run()
    marker = first.run_dir / "done" / "major.L0.1.r0.json"
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps(dict(data, mask_sha256="0" * 64)))
    again = Runner(settings(tmp_path, imputers=["major"], levels=(0.1,), replicates=1), store).run()
    assert again.units_done == 1 and json.loads(marker.read_text())["mask_sha256"] == data["mask_sha256"]


# ---------------------------------------------------------------------------- the run lock
def test_lock_refuses_a_second_holder_and_names_it(tmp_path):
    with RunLock.acquire(tmp_path, command="impbench run --run x"):
        with pytest.raises(ImpbenchError) as info:
            RunLock.acquire(tmp_path)
    message = str(info.value)
    assert f"process {os.getpid()} on host {socket.gethostname()}" in message and "impbench run --run x" in message
    RunLock.acquire(tmp_path).release()  # free again


def test_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = {"pid": dead.pid, "host": socket.gethostname(), "started": "2026-01-01T00:00:00Z", "command": "impbench run"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(record))
    warnings = []
    lock = RunLock.acquire(tmp_path, warn=warnings.append)
    lock.release()
    assert lock.took_over["pid"] == dead.pid
    assert len(warnings) == 1 and f"took over the lock of process {dead.pid}" in warnings[0] and "no longer running" in warnings[0]


def test_takeover_stops_leftover_processes_of_the_run(tmp_path):
    env = dict(os.environ, IMPBENCH_RUN=str(tmp_path.resolve()))
    leftover = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
    environ = Path(f"/proc/{leftover.pid}/environ")
    for _ in range(3000):  # until the child has exec'd with its tag (on a loaded machine this takes a while)
        if b"IMPBENCH_RUN=" in environ.read_bytes():
            break
        time.sleep(0.01)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 999999999, "host": socket.gethostname(), "started": "x"}))
    warnings = []
    RunLock.acquire(tmp_path, warn=warnings.append).release()
    assert leftover.wait(5) != 0 and "stopped 1 of its leftover process(es)" in warnings[0]


# ---------------------------------------------------------------------------- progress
class RecordingProgress:
    def __init__(self):
        self.updates, self.removed = [], []

    def update(self, stage, completed, total):
        self.updates.append(stage)

    def remove(self, stage):
        self.removed.append(stage)

    def print(self, message):
        pass

    def callback(self, prefix=""):
        return lambda stage, completed, total: self.update(f"{prefix} {stage}", completed, total)


def test_progress_shows_every_running_unit(store, tmp_path):
    progress = RecordingProgress()
    Runner(settings(tmp_path, imputers=["sleeper"], jobs=2), store, progress=progress).run()
    labels = {u.split(" · ")[0] for u in progress.updates}
    assert {"sleeper fit", "sleeper L0.1 r0", "sleeper L0.1 r1", "units"} <= labels
    assert any(u.startswith("sleeper L0.1 r0 · impute") for u in progress.updates)
    assert sorted(progress.removed) == sorted(labels - {"units"})
