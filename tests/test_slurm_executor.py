"""``--executor slurm``: bad input (no sbatch, an unknown ``--slurm`` key, ``[slurm]`` in the
options file), the resources each job asks for, and, against a real Slurm (marker ``slurm``;
``scripts/slurm-local.sh``): a memory kill recorded as the unit's failure with Slurm's reason,
the demo's metrics.csv identical to the local executor's, and a head killed mid-run whose rerun
completes without computing anything twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from impbench import hookimpl
from impbench.bench.runner import Runner
from impbench.bench.settings import RunSettings, read_options_file, read_slurm_table
from impbench.bench.exec.slurm import SlurmOptions
from impbench.bench.exec.slurm_executor import SlurmExecutor, torchrun_args
from impbench.bench.units import WorkItem
from impbench.cli import main
from impbench.genotypes import MISSING
from impbench.imputers import registry
from impbench.imputers.base import Imputation, Imputer

REPO = Path(__file__).resolve().parents[1]
IMPBENCH = [sys.executable, "-c", "import sys; from impbench.cli import main; sys.exit(main(sys.argv[1:]))"]


def impbench(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def error_line(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("impbench: error: "), err
    return lines[0]


# ---------------------------------------------------------------------------- bad input
def test_executor_slurm_without_sbatch_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    line = error_line(*impbench(capsys, "run", "--dataset", "sim-1kgp", "--imputers", "major", "--executor", "slurm",
                                "--out", str(tmp_path / "out"))[::2])
    assert "--executor slurm" in line and "sbatch" in line
    assert not (tmp_path / "out").exists()


def test_unknown_slurm_key_names_the_valid_ones(capsys, tmp_path):
    line = error_line(*impbench(capsys, "run", "--dataset", "sim-1kgp", "--executor", "slurm", "--slurm", "queue=gpu",
                                "--out", str(tmp_path / "out"))[::2])
    assert "'queue'" in line and "partition" in line and "cpus_per_task" in line


def test_slurm_options_need_the_slurm_executor(capsys, tmp_path):
    line = error_line(*impbench(capsys, "run", "--dataset", "sim-1kgp", "--slurm", "time=5",
                                "--out", str(tmp_path / "out"))[::2])
    assert "--executor slurm" in line


def test_slurm_table_of_the_options_file_is_not_an_imputer(capsys, tmp_path):
    path = tmp_path / "opts.toml"
    path.write_text('[knn]\nk = 3\n\n[slurm]\npartition = "gpu"\ntime = "01:00:00"\n')
    assert read_options_file(path) == {"knn": {"k": 3}}
    assert read_slurm_table(path) == {"partition": "gpu", "time": "01:00:00"}
    path.write_text('[slurm]\nqueue = "gpu"\n')
    line = error_line(*impbench(capsys, "run", "--dataset", "sim-1kgp", "--executor", "slurm", "--options", str(path),
                                "--out", str(tmp_path / "out"))[::2])
    assert "[slurm] queue" in line


# ---------------------------------------------------------------------------- resources
def item(kind: str, gpu: bool = False, time_limit: float | None = None) -> WorkItem:
    return WorkItem(kind, "x", f"x {kind}", {}, Path("/nonexistent"), "s", gpu=gpu, time_limit=time_limit,
                    level=None if kind == "fit" else 0.05, replicate=None if kind == "fit" else 0)


def test_each_job_asks_for_what_its_item_needs(tmp_path):
    ex = SlurmExecutor(tmp_path, SlurmOptions(partition="p", mem="8G"), threads=None, nproc=4)
    fit = ex.item_options(item("fit", gpu=True, time_limit=61))
    assert (fit.gpus, fit.tasks_per_node, fit.time_min, fit.partition, fit.mem, fit.cpus_per_task) == (4, 1, 2, "p", "8G", 1)
    unit = ex.item_options(item("unit", gpu=True))
    assert (unit.gpus, unit.nodes, unit.tasks_per_node, unit.time_min) == (1, 1, 1, None)
    cpu = ex.item_options(item("unit"))
    assert cpu.gpus is None
    # the user's options win over what the items imply
    ex = SlurmExecutor(tmp_path, SlurmOptions(time_min=30, gpus=2, cpus_per_task=6, nodes=2), threads=3, nproc=4)
    fit = ex.item_options(item("fit", gpu=True, time_limit=61))
    assert (fit.gpus, fit.time_min, fit.cpus_per_task, fit.nodes) == (2, 30, 6, 2)
    assert SlurmExecutor(tmp_path, SlurmOptions(), threads=3).cpus() == 3


def test_multi_node_torchrun_rendezvous():
    args = torchrun_args(2, "node7", "4242").split()
    assert args[args.index("--nnodes") + 1] == "2"
    assert args[args.index("--rdzv-endpoint") + 1] == "node7:29400"
    assert args[args.index("--rdzv-backend") + 1] == "c10d"


# ---------------------------------------------------------------------------- against a real Slurm
@dataclass
class HogOptions:
    mb: int = 1500
    seconds: float = 20.0


class MemoryHog(Imputer):
    """Touches ``mb`` MiB in impute and holds them for ``seconds``; replicate 1 is spared."""

    name = "memhog"
    Options = HogOptions

    def fit(self, panel, val, ctx):
        pass

    def impute(self, target, ctx):
        calls = np.where(target.codes == MISSING, 1, target.codes).astype(np.uint8)
        if not os.environ.get("SLURM_ARRAY_TASK_ID") == "1":
            block = np.ones(self.options.mb * 2**20, dtype=np.uint8)
            deadline = time.time() + self.options.seconds
            while time.time() < deadline:
                block[::4096] += 1
                time.sleep(0.2)
        return Imputation(calls=calls, dosage=np.zeros(calls.shape, dtype=np.float32))


class HogPlugin:
    @hookimpl
    def register_imputers(self, register):
        register(MemoryHog)


@pytest.fixture
def hog_plugin(monkeypatch):
    monkeypatch.setenv(registry.LOAD_PLUGINS_ENV, "")
    registry.reset()
    registry.register_plugin(HogPlugin(), "hog-plugin")
    yield
    registry.reset()


@pytest.mark.slurm
def test_a_job_killed_for_memory_is_its_units_failure_with_slurms_reason(hog_plugin, tmp_path):
    from impbench.data.simulate import simulate_matrix
    from impbench.testing import InMemoryStore

    sim = simulate_matrix(n_samples=40, sequence_length=40_000, seed=3)
    store = InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 100))), name="mem")
    settings = RunSettings(dataset="mem", imputers=["memhog"], levels=(0.1,), replicates=2, out=tmp_path, run_name="m",
                           device="cpu", n_boot=50, executor="slurm", slurm=SlurmOptions(mem="600M"))
    outcome = Runner(settings, store).run()
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    entry = manifest["imputers"]["memhog"]
    units = {u["replicate"]: u for u in entry["units"]}
    assert units[1]["status"] == "ok"  # the other unit goes on
    assert units[0]["status"] == "crashed", units[0]
    assert "OUT_OF_MEMORY" in units[0]["error"] and "Slurm job" in units[0]["error"], units[0]["error"]
    assert entry["status"] == "partial"
    assert "memhog" in outcome.failures


@pytest.mark.slurm
def test_a_job_sbatch_refuses_is_one_line(capsys, tmp_path):
    from impbench.data.simulate import simulate_matrix
    from impbench.errors import ImpbenchError
    from impbench.testing import InMemoryStore

    sim = simulate_matrix(n_samples=40, sequence_length=40_000, seed=3)
    store = InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 100))), name="mem")
    settings = RunSettings(dataset="mem", imputers=["major"], levels=(0.1,), replicates=1, out=tmp_path, run_name="p",
                           device="cpu", n_boot=20, executor="slurm", slurm=SlurmOptions(partition="no-such-partition"))
    with pytest.raises(ImpbenchError) as info:
        Runner(settings, store).run()
    line = str(info.value)
    assert "sbatch refused the job of major fit" in line and "partition" in line.lower() and "\n" not in line
    assert "no-such-partition" not in capsys.readouterr().err.replace(line, "")  # said once


@dataclass
class NapOptions:
    seconds: float = 150.0


class Napper(Imputer):
    """Sleeps ``seconds`` in impute: past a one-minute Slurm time limit."""

    name = "napper"
    Options = NapOptions

    def fit(self, panel, val, ctx):
        pass

    def impute(self, target, ctx):
        time.sleep(self.options.seconds)
        calls = np.where(target.codes == MISSING, 1, target.codes).astype(np.uint8)
        return Imputation(calls=calls, dosage=np.zeros(calls.shape, dtype=np.float32))


class NapPlugin:
    @hookimpl
    def register_imputers(self, register):
        register(Napper)


@pytest.mark.slurm
@pytest.mark.slow  # Slurm's time limits are whole minutes: about 75 s
def test_a_job_past_its_slurm_time_limit_is_timed_out_with_slurms_reason(monkeypatch, tmp_path):
    from impbench.data.simulate import simulate_matrix
    from impbench.testing import InMemoryStore

    monkeypatch.setenv(registry.LOAD_PLUGINS_ENV, "")
    registry.reset()
    registry.register_plugin(NapPlugin(), "nap-plugin")
    try:
        sim = simulate_matrix(n_samples=40, sequence_length=40_000, seed=3)
        store = InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 100))), name="mem")
        settings = RunSettings(dataset="mem", imputers=["napper"], levels=(0.1,), replicates=1, out=tmp_path,
                               run_name="t", device="cpu", n_boot=20, executor="slurm", slurm=SlurmOptions(time_min=1))
        outcome = Runner(settings, store).run()
    finally:
        registry.reset()
    unit = json.loads((outcome.run_dir / "manifest.json").read_text())["imputers"]["napper"]["units"][0]
    assert unit["status"] == "timed_out", unit
    assert "TIMEOUT" in unit["error"] and "time limit" in unit["error"], unit["error"]


DEMO = ["--dataset", "sim-1kgp", "--imputers", "major,knn,beagle", "--levels", "0.05", "--replicates", "2",
        "--bootstrap", "100", "--no-progress"]


def _impbench_run(out: Path, name: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*IMPBENCH, "run", "--out", str(out), "--run", name, *DEMO, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen, timeout: float = 240) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]
    return output


@pytest.mark.slurm
@pytest.mark.beagle
def test_slurm_run_equals_local_and_a_killed_head_resumes_without_recomputing(tmp_path):
    local = _impbench_run(tmp_path, "local")
    _finish(local)
    local_csv = (tmp_path / "sim-1kgp" / "local" / "metrics.csv").read_text()

    # an uninterrupted run through Slurm: the same metrics.csv, byte for byte
    output = _finish(_impbench_run(tmp_path, "slurm", "--executor", "slurm"))
    assert "slurm: run folder" in output  # the shared-file-system line
    assert (tmp_path / "sim-1kgp" / "slurm" / "metrics.csv").read_text() == local_csv

    # the head killed (SIGKILL) once the first unit is done, then rerun
    run_dir = tmp_path / "sim-1kgp" / "killed"
    head = _impbench_run(tmp_path, "killed", "--executor", "slurm")
    deadline = time.monotonic() + 180
    while not list((run_dir / "done").glob("*.json")) and head.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert head.poll() is None, "the head ended before any unit was done"
    head.send_signal(signal.SIGKILL)
    head.communicate()
    done_at_kill = len(list((run_dir / "done").glob("*.json")))
    assert done_at_kill < 6, "every unit was done before the kill: nothing left to resume"
    output = _finish(_impbench_run(tmp_path, "killed", "--executor", "slurm"))
    assert (run_dir / "metrics.csv").read_text() == local_csv
    # nothing computed twice: one attempt per fit and per unit over both heads
    for imputer in ("major", "knn", "beagle"):
        attempts = sorted(p.name for p in (run_dir / "models" / imputer / "attempts").iterdir())
        assert len(attempts) == 3 and all(name.endswith("-1") for name in attempts), attempts
    assert len(list((run_dir / "done").glob("*.json"))) == 6
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert all(entry["status"] == "ok" for entry in manifest["imputers"].values())
