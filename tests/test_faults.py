"""Faults: plugins that misbehave in every way we know, and ``impbench run`` killed at seeded
points. Each misbehaviour must end only its own unit (recorded with the right kind, the others'
results kept); each kill must leave no process behind, and a rerun must finish the run with
results identical to an uninterrupted run's.

The kill tests start the harness as a separate process (``python -c`` calling ``drive`` below,
with a pickled in-memory store), wait for a seeded point, kill it, look for processes still
tagged with the run folder (``IMPBENCH_RUN`` in their environment, which every worker and its
children carry) or whose command line names the run's marker, then rerun.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from impbench import hookimpl
from impbench.bench.exec import procs
from impbench.bench.exec.signals import RunInterrupted
from impbench.bench.runner import Runner
from impbench.bench.settings import RunSettings
from impbench.genotypes import MISSING
from impbench.imputers import registry
from impbench.imputers.base import Imputation, Imputer

REPO = Path(__file__).resolve().parents[1]
#: Command-line marker of the processes the misbehaving plugins start themselves.
CHILD_MARKER = "impbench-fault-child"


# ---------------------------------------------------------------------------- misbehaving plugins
@dataclass
class FaultOptions:
    stage: str = "impute"  # where the fault happens: fit or impute
    seconds: float = 0.0  # slow: how long fit sleeps


class Faulty(Imputer):
    """Fills missing cells with 0|0 (a valid answer) unless its ``how`` says otherwise."""

    name = "faulty"
    how = ""
    Options = FaultOptions

    def fit(self, panel, val, ctx):
        if self.how == "slow":
            (Path(os.environ["IMPBENCH_FAULT_FLAG"]) if "IMPBENCH_FAULT_FLAG" in os.environ else ctx.work_dir / "x").touch()
            time.sleep(self.options.seconds)
        if self.options.stage == "fit":
            self.misbehave(ctx)
        self.n_variants = panel.n_variants

    def impute(self, target, ctx):
        if self.options.stage == "impute":
            answer = self.misbehave(ctx, target)
            if answer is not None:
                return answer
        return self.answer(target)

    @staticmethod
    def answer(target, fill=1):
        calls = np.where(target.codes == MISSING, fill, target.codes).astype(np.uint8)
        probs = np.eye(4, dtype=np.float32)[calls.astype(np.int64) - 1]
        return Imputation(calls=calls, dosage=probs @ np.array([0, 1, 1, 2], dtype=np.float32), probs=probs)

    def misbehave(self, ctx, target=None):
        how = self.how
        if how == "raise":
            raise RuntimeError("plugin bug")
        if how == "exit":
            sys.exit(3)
        if how == "hang":
            time.sleep(600)
        if how == "child-hang":  # a subprocess in its own session, like Beagle's JVM, then a hang
            subprocess.Popen(["sh", "-c", f"exec -a {CHILD_MARKER} sleep 600"], start_new_session=True)
            time.sleep(600)
        if how == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        if how == "os-exit":
            os._exit(3)
        if how == "oom":  # what the kernel's OOM killer does
            os.kill(os.getpid(), signal.SIGKILL)
        if target is None:
            return None
        answer = self.answer(target)
        if how == "nan":
            answer.probs[0, 0] = np.nan
        elif how == "inf-dosage":
            answer.dosage[0, 0] = np.inf
        elif how == "observed":
            observed = np.argwhere(target.codes != MISSING)[0]
            answer.calls[tuple(observed)] = 4 if target.codes[tuple(observed)] != 4 else 1
        elif how == "shape":
            answer = Imputation(calls=answer.calls[:, :-1], dosage=answer.dosage[:, :-1])
        return answer


#: name -> (how, stage, expected status, expected error or signal text)
MISBEHAVIOURS = {
    "f-raise": ("raise", "impute", "failed", "impute raised RuntimeError: plugin bug"),
    "f-exit": ("exit", "impute", "failed", "impute raised SystemExit: 3"),
    "f-fit-exit": ("exit", "fit", "failed", "fit raised SystemExit: 3"),
    "f-hang": ("hang", "impute", "timed_out", "timed out after"),
    "f-child-hang": ("child-hang", "impute", "timed_out", "timed out after"),
    "f-nan": ("nan", "impute", "failed", "probs hold NaN or infinite values"),
    "f-inf": ("inf-dosage", "impute", "failed", "non-finite"),
    "f-observed": ("observed", "impute", "failed", "changed 1 observed cells"),
    "f-shape": ("shape", "impute", "failed", "calls have shape"),
    "f-segv": ("segv", "impute", "crashed", "SIGSEGV"),
    "f-fit-segv": ("segv", "fit", "crashed", "SIGSEGV"),
    "f-os-exit": ("os-exit", "impute", "crashed", "exited with status 3"),
    "f-oom": ("oom", "impute", "crashed", "SIGKILL"),
}


def _make(name: str, how: str, stage: str) -> type:
    import dataclasses

    cls_name = "Faulty_" + name.replace("-", "_")
    options = dataclasses.make_dataclass(f"{cls_name}_Options", [("stage", str, stage), ("seconds", float, 0.0)],
                                         namespace={"__module__": __name__})
    options.__qualname__ = options.__name__
    cls = type(cls_name, (Faulty,), {"name": name, "how": how, "Options": options, "__module__": __name__})
    cls.__qualname__ = cls_name
    globals()[cls_name] = cls
    globals()[options.__name__] = options
    return cls


FAULTY = [_make(name, how, stage) for name, (how, stage, _, _) in MISBEHAVIOURS.items()]
Slow = _make("slow", "slow", "none")
Good = _make("good", "", "none")


class FaultPlugin:
    @hookimpl
    def register_imputers(self, register):
        for cls in [*FAULTY, Slow, Good]:
            register(cls)


def register_faults() -> None:
    registry.register_plugin(FaultPlugin(), "fault-plugin", distribution="fault-dist", version="0")


@pytest.fixture(autouse=True)
def fault_plugin(monkeypatch):
    monkeypatch.setenv(registry.LOAD_PLUGINS_ENV, "")
    registry.reset()
    register_faults()
    yield
    registry.reset()


@pytest.fixture(scope="module")
def store():
    from impbench.data.simulate import simulate_matrix
    from impbench.testing import InMemoryStore

    sim = simulate_matrix(n_samples=60, sequence_length=60_000, seed=11)
    return InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 150))), name="mem")


def settings(out, imputers, **kw) -> RunSettings:
    base = dict(dataset="mem", imputers=imputers, levels=(0.1,), replicates=1, out=Path(out), run_name="t",
                device="cpu", threads=1, n_boot=50)
    base.update(kw)
    return RunSettings(**base)


def tagged(run_dir: Path) -> list[int]:
    """Live processes tagged with the run folder, or named by the plugins' child marker."""
    pids = procs.tagged_processes(procs.RUN_ENV, str(Path(run_dir).resolve()))
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if CHILD_MARKER.encode() in cmdline and procs.pid_alive(int(entry)):
                pids.append(int(entry))
    return [pid for pid in pids if procs.pid_alive(pid)]


def no_orphans(run_dir: Path, wait: float = 10.0) -> list[int]:
    deadline = time.monotonic() + wait
    while (left := tagged(run_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


# ---------------------------------------------------------------------------- misbehaviours
#: The time limit of the hanging plugins: far above a loaded machine's worker start and fit.
HANG_LIMIT_S = 20
#: The default suite's half of the misbehaviours (the others run under -m slow).
FAST_HALF = ["f-raise", "f-exit", "f-child-hang", "f-nan", "f-observed", "f-segv", "f-os-exit"]


@pytest.mark.parametrize("names", [
    FAST_HALF,
    pytest.param([n for n in MISBEHAVIOURS if n not in FAST_HALF], marks=pytest.mark.slow),
], ids=["fast-half", "slow-half"])
def test_every_misbehaviour_is_contained(store, tmp_path, names):
    """Thirteen ways a plugin can misbehave, with a well-behaved imputer among them: each ends
    only its own unit, recorded with its kind; the good imputer's results are complete."""
    # generous: under load a worker's start alone can take seconds, and a limit hit during the
    # fit would skip the unit whose hang this checks (the test waits this long for each hang)
    limits = {name: HANG_LIMIT_S for name in ("f-hang", "f-child-hang") if name in names}
    outcome = Runner(settings(tmp_path, ["good", *names], jobs=2, time_limits=limits), store).run()
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    imputers = manifest["imputers"]
    assert imputers["good"]["status"] == "ok" and outcome.units_done == 1
    contained = 0
    for name in names:
        how, stage, status, text = MISBEHAVIOURS[name]
        entry = imputers[name]
        record = entry["fit"] if stage == "fit" else entry["units"][0]
        assert entry["status"] == "failed", (name, entry)
        assert record["status"] == status, (name, record)
        assert text in (record["error"] or "") + str(record.get("signal")), (name, record)
        assert outcome.failures[name] == entry["error"]
        if status == "crashed" and "SIG" in text:
            assert record["signal"] == text
        if stage == "fit":
            assert entry["units"][0]["status"] == "skipped"
        contained += 1
    if "f-os-exit" in names:
        assert imputers["f-os-exit"]["units"][0]["exit_code"] == 3
    if "f-raise" in names:
        assert "Traceback" in (outcome.run_dir / "models" / "f-raise" / "error.txt").read_text()
    metrics = (outcome.run_dir / "metrics.csv").read_text()
    assert "good" in metrics and not any(f"\n{name}," in metrics for name in names)
    assert not no_orphans(outcome.run_dir, wait=5.0)  # the hung plugin's child died with it
    print(f"\nmisbehaviours contained: {contained} / {len(names)}")


def test_a_failed_fit_as_the_last_item_ends_the_run_with_its_error(store, tmp_path):
    """The fit fails while nothing else runs: its units are recorded ``skipped`` with the fit's
    own error, the imputer ``failed`` (never left ``running``), the run ends normally."""
    outcome = Runner(settings(tmp_path, ["f-fit-exit"], jobs=1, replicates=2), store).run()
    entry = json.loads((outcome.run_dir / "manifest.json").read_text())["imputers"]["f-fit-exit"]
    assert entry["status"] == "failed" and entry["fit"]["status"] == "failed"
    assert [u["status"] for u in entry["units"]] == ["skipped", "skipped"]
    for unit in entry["units"]:
        assert "skipped: its fit failed: imputer 'f-fit-exit': fit raised SystemExit: 3" in unit["error"], unit
    assert "fit raised SystemExit: 3" in outcome.failures["f-fit-exit"]


def test_misbehaving_unit_reruns_in_a_fresh_attempt_folder(store, tmp_path):
    """A rerun retries the failed unit in a new attempt folder; the old one is left as it was."""
    Runner(settings(tmp_path, ["f-raise"], executor="local"), store).run()
    Runner(settings(tmp_path, ["f-raise"], executor="local"), store).run()
    attempts = sorted(p.name for p in (tmp_path / "mem" / "t" / "models" / "f-raise" / "attempts").iterdir())
    fits = [a for a in attempts if a.startswith("fit-")]
    assert [a for a in attempts if not a.startswith("fit-")] == ["L0.1.r0-1", "L0.1.r0-2"] and len(fits) == 1


# ---------------------------------------------------------------------------- killing the harness
def drive(store_path: str, out: str, imputers: str, extra: str = "{}") -> None:
    """The harness of the kill tests (run as ``python -c``): registers the fault plugin, runs.
    ``IMPBENCH_FAULT_LOAD`` names entry points to load besides (``beagle``)."""
    os.environ[registry.LOAD_PLUGINS_ENV] = os.environ.get("IMPBENCH_FAULT_LOAD", "")
    register_faults()
    with open(store_path, "rb") as handle:
        mem = pickle.load(handle)
    kw = json.loads(extra)
    try:
        Runner(settings(out, imputers.split(","), **kw), mem).run()
    except RunInterrupted as exc:
        sys.exit(exc.exit_code)


def start_harness(store, tmp_path, out, imputers, flag=None, load="", **kw) -> subprocess.Popen:
    store_path = tmp_path / "store.pkl"
    if not store_path.exists():
        store_path.write_bytes(pickle.dumps(store))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))
    if flag is not None:
        env["IMPBENCH_FAULT_FLAG"] = str(flag)
    env["IMPBENCH_FAULT_LOAD"] = load
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from tests.test_faults import drive; "
            f"drive({str(store_path)!r}, {str(out)!r}, {imputers!r}, {json.dumps(kw)!r})")
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


KILL_IMPUTERS = "good,slow"
KILL_OPTIONS = {"options": {"slow": {"seconds": 1.5}}, "replicates": 2, "levels": [0.1], "jobs": 2}


@pytest.fixture(scope="module")
def reference(store, tmp_path_factory):
    """metrics.csv of the uninterrupted run the killed runs must end equal to."""
    out = tmp_path_factory.mktemp("reference")
    proc = start_harness(store, out, out, KILL_IMPUTERS, **KILL_OPTIONS)
    output = proc.communicate(timeout=300)[0].decode(errors="replace")
    assert proc.returncode == 0, output
    return (out / "mem" / "t" / "metrics.csv").read_text()


def kill_and_rerun(store, tmp_path, reference, sig, point, seed):
    """Kill the harness with ``sig`` at ``point`` (``fit``: during the slow fit; ``units``:
    after a seeded number of finished units), check for orphans, rerun, compare."""
    rng = np.random.default_rng(seed)
    out = tmp_path / "out"
    run_dir = out / "mem" / "t"
    flag = tmp_path / "fit-started"
    proc = start_harness(store, tmp_path, out, KILL_IMPUTERS, flag=flag, **KILL_OPTIONS)
    try:
        if point == "fit":
            wait_for(flag.exists, 120, "the slow fit to start")
            time.sleep(float(rng.uniform(0.0, 0.8)))
        else:
            n = int(rng.integers(1, 3))
            wait_for(lambda: len(list((run_dir / "done").glob("*.json"))) >= n if (run_dir / "done").is_dir() else False,
                     120, f"{n} finished units")
        proc.send_signal(sig)
        output = proc.communicate(timeout=60)[0].decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
    if sig != signal.SIGKILL and proc.returncode != 0:  # it may have finished just before the signal
        assert proc.returncode == 128 + sig, output
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert "interrupted" in {e["status"] for e in manifest["imputers"].values()}, manifest["imputers"]
    left = no_orphans(run_dir)
    assert not left, f"orphans after {signal.Signals(sig).name} at {point}: {left}"
    rerun = start_harness(store, tmp_path, out, KILL_IMPUTERS, **KILL_OPTIONS)  # at once
    output = rerun.communicate(timeout=300)[0].decode(errors="replace")
    assert rerun.returncode == 0, output
    assert (run_dir / "metrics.csv").read_text() == reference
    assert not no_orphans(run_dir, wait=2.0)
    return 1


@pytest.mark.parametrize("sig, point, seed", [
    (signal.SIGKILL, "fit", 1),
    (signal.SIGTERM, "units", 2),
    pytest.param(signal.SIGTERM, "fit", 3, marks=pytest.mark.slow),
    pytest.param(signal.SIGKILL, "units", 4, marks=pytest.mark.slow),
    pytest.param(signal.SIGINT, "fit", 5, marks=pytest.mark.slow),
    pytest.param(signal.SIGKILL, "fit", 6, marks=pytest.mark.slow),
])
def test_kill_and_rerun_matches_an_uninterrupted_run(store, tmp_path, reference, sig, point, seed):
    assert kill_and_rerun(store, tmp_path, reference, sig, point, seed) == 1


# ---------------------------------------------------------------------------- killing during Beagle
def beagle_jvms(run_dir: Path) -> list[int]:
    """Live Java processes tagged with the run folder (Beagle's JVM, started by a unit worker)."""
    out = []
    for pid in procs.tagged_processes(procs.RUN_ENV, str(Path(run_dir).resolve())):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"java" in cmdline and procs.pid_alive(pid):
            out.append(pid)
    return out


@pytest.mark.beagle
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_kill_during_beagle_leaves_no_jvm_and_reruns_equal(store, tmp_path, sig):
    from impbench_beagle.testing import require_beagle

    require_beagle()
    options = {"replicates": 2, "levels": [0.1], "jobs": 2}
    ref_out = tmp_path / "reference"
    reference_run = start_harness(store, tmp_path, ref_out, "beagle,good", load="beagle", **options)
    assert reference_run.wait(600) == 0, reference_run.stdout.read().decode(errors="replace")
    out = tmp_path / "out"
    run_dir = out / "mem" / "t"
    proc = start_harness(store, tmp_path, out, "beagle,good", load="beagle", **options)
    try:
        wait_for(lambda: bool(beagle_jvms(run_dir)), 300, "Beagle's JVM")
        time.sleep(float(np.random.default_rng(int(sig)).uniform(0.0, 1.0)))
        proc.send_signal(sig)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not no_orphans(run_dir, wait=15.0), "a JVM or worker outlived the harness"
    rerun = start_harness(store, tmp_path, out, "beagle,good", load="beagle", **options)
    output = rerun.communicate(timeout=600)[0].decode(errors="replace")
    assert rerun.returncode == 0, output
    assert (run_dir / "metrics.csv").read_text() == (ref_out / "mem" / "t" / "metrics.csv").read_text()
    assert not no_orphans(run_dir, wait=2.0)
