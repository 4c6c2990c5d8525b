"""Nothing executes from a shared folder: run folders' pickles are authenticated
(``impbench.bench.exec.trust``), and dataset cards cannot name programs (``program_option``).

Each reproducer plants a payload that would write a flag file if it ever ran, and checks that
the flag never appears.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from impbench import hookimpl
from impbench.bench.exec import trust
from impbench.bench.runner import Runner
from impbench.bench.settings import RunSettings
from impbench.bench.units import FIT_PICKLE
from impbench.cli import main
from impbench.errors import ImpbenchError
from impbench.genotypes import MISSING
from impbench.imputers import registry
from impbench.progress import RichProgress
from impbench.imputers.base import Imputation, Imputer, card_option_values, program_option, program_options

REPO = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickling this writes ``flag`` (what a crafted pickle's author would do, harmlessly)."""

    def __init__(self, flag: Path) -> None:
        self.flag = str(flag)

    def __reduce__(self):
        return (exec, (f"open({self.flag!r}, 'w').write('pwned')",))


@dataclass
class CountOptions:
    tool: str | None = program_option()


class Counting(Imputer):
    """Fills with 0|0; counts its fits in a file (so a refit is visible)."""

    name = "counting"
    Options = CountOptions

    def fit(self, panel, val, ctx):
        counter = Path(os.environ["IMPBENCH_TEST_FITS"])
        counter.write_text(str(int(counter.read_text() or 0) + 1) if counter.exists() else "1")

    def impute(self, target, ctx):
        calls = np.where(target.codes == MISSING, 1, target.codes).astype(np.uint8)
        return Imputation(calls=calls, dosage=np.zeros(calls.shape, np.float32) + (calls > 1))


class Plugin:
    @hookimpl
    def register_imputers(self, register):
        register(Counting)


@pytest.fixture(autouse=True)
def plugin(monkeypatch, tmp_path):
    monkeypatch.setenv(registry.LOAD_PLUGINS_ENV, "")
    monkeypatch.setenv(trust.KEY_ENV, str(tmp_path / "me" / "trust.key"))
    monkeypatch.setenv("IMPBENCH_TEST_FITS", str(tmp_path / "fits"))
    registry.reset()
    registry.register_plugin(Plugin(), "count-plugin", distribution="count-dist", version="0")
    yield
    registry.reset()


@pytest.fixture(scope="module")
def store():
    from impbench.data.simulate import simulate_matrix
    from impbench.testing import InMemoryStore

    sim = simulate_matrix(n_samples=60, sequence_length=60_000, seed=11)
    return InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 120))), name="mem")


def run(store, out, replicates=1, progress=None) -> Path:
    settings = RunSettings(dataset="mem", imputers=["counting"], levels=(0.1,), replicates=replicates, out=Path(out),
                           run_name="t", device="cpu", threads=1, n_boot=20)
    outcome = Runner(settings, store, progress=progress).run()
    assert not outcome.failures, outcome.failures
    return outcome.run_dir


def fit_pickle(run_dir: Path) -> Path:
    [path] = (run_dir / "models" / "counting" / "fit").glob(f"*/{FIT_PICKLE}")
    return path


# ---------------------------------------------------------------------------- trust: the module
def test_key_is_created_private_and_tags_bind_purpose(tmp_path):
    payload = pickle.dumps({"a": 1})
    signed = trust.sign(payload, trust.FIT)
    key = Path(os.environ[trust.KEY_ENV])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    path = tmp_path / "x.pkl"
    path.write_bytes(signed)
    assert trust.verify(path, trust.FIT) is None and trust.load(path, trust.FIT) == {"a": 1}
    assert trust.verified_bytes(path, trust.FIT) == payload
    assert "not a signed inputs file" in trust.verify(path, trust.INPUTS)  # a fit is not the workers' inputs
    path.write_bytes(signed[:-2] + bytes([signed[-2] ^ 1]) + signed[-1:])  # one bit altered
    assert "does not match" in trust.verify(path, trust.FIT)
    with pytest.raises(trust.UntrustedPickle):
        trust.verified_bytes(path, trust.FIT)
    key.chmod(0o644)
    with pytest.raises(ImpbenchError, match="readable or writable by others"):
        trust.secret_key()


def test_a_crafted_pickle_is_never_unpickled(tmp_path):
    flag = tmp_path / "pwned"
    path = tmp_path / "imputer.pkl"
    path.write_bytes(pickle.dumps(Payload(flag)))  # unsigned
    with pytest.raises(trust.UntrustedPickle):
        trust.load(path, trust.FIT)
    forged = trust.MAGIC + b"fit " + b"0" * 64 + b"\n" + pickle.dumps(Payload(flag))  # a guessed tag
    path.write_bytes(forged)
    with pytest.raises(trust.UntrustedPickle):
        trust.load(path, trust.FIT)
    assert not flag.exists()


# ---------------------------------------------------------------------------- trust: a run folder
def test_resume_with_a_crafted_fit_pickle_refits_and_runs_nothing(store, tmp_path, capsys):
    """The issue's reproducer: replace ``imputer.pkl`` of a finished fit with a crafted pickle,
    then resume (more replicates, so the fit would be reused): the payload never runs, the fit
    is recomputed with one warning line, the run succeeds."""
    run_dir = run(store, tmp_path / "out")
    assert (tmp_path / "fits").read_text() == "1"
    flag = tmp_path / "pwned"
    fit_pickle(run_dir).write_bytes(pickle.dumps(Payload(flag)))
    log = io.StringIO()
    run(store, tmp_path / "out", replicates=2, progress=RichProgress(plain=True, out=log))
    assert not flag.exists()
    assert (tmp_path / "fits").read_text() == "2"  # fitted again
    warnings = [line for line in log.getvalue().splitlines() if "not trusted" in line]
    assert len(warnings) == 1 and "not signed by impbench" in warnings[0] and "fitting again" in warnings[0]
    assert trust.verify(fit_pickle(run_dir), trust.FIT) is None  # and signed anew


def test_a_unit_worker_refuses_an_unsigned_fit(store, tmp_path):
    """Even a pickle swapped after the harness checked it is not loaded by the unit's worker."""
    from impbench.bench.exec import worker

    run_dir = run(store, tmp_path / "out")
    flag = tmp_path / "pwned"
    fit_pickle(run_dir).write_bytes(pickle.dumps(Payload(flag)))
    [attempt] = (run_dir / "models" / "counting" / "attempts").glob("L0.1.r0-*")
    spec = json.loads((attempt / "spec.json").read_text())
    again = attempt.parent / "L0.1.r0-again"
    again.mkdir()
    result = worker.run_spec(dict(spec, attempt_dir=str(again)))
    assert result["status"] == "failed" and "not signed by impbench" in result["error"]
    assert not flag.exists()


def test_a_run_folder_from_another_user_refits_instead_of_failing(store, tmp_path, monkeypatch):
    run_dir = run(store, tmp_path / "out")
    monkeypatch.setenv(trust.KEY_ENV, str(tmp_path / "someone-else" / "trust.key"))
    run(store, tmp_path / "out", replicates=2)
    assert (tmp_path / "fits").read_text() == "2"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    entry = manifest["imputers"]["counting"]
    assert entry["status"] == "ok" and [u["status"] for u in entry["units"]] == ["ok"]  # r1, done now
    assert len(list((run_dir / "done").glob("counting.*.json"))) == 2


def test_crafted_workers_inputs_are_never_unpickled(tmp_path):
    """The one pickle of the workers' inputs (the store of a run on an in-memory store) is signed:
    a crafted one beside a valid ``inputs.json`` is refused before anything is unpickled."""
    from impbench.bench.exec import inputs as inputs_module
    from impbench.bench.records import ContextInput, RunInputs, ScoringInput

    record = RunInputs(scoring=ScoringInput(protocols=["standard"], bin_edges=[0.0, 0.5], min_variant_cells=5,
                                            write_vcf=False, command="", scheme="uniform"),
                       context=ContextInput(device="cpu", seed=0, nproc=1, dataset="x", dataset_hash="0",
                                            scheme="uniform"))
    path = inputs_module.write_inputs(tmp_path, record, {"a": "picklable store stand-in"}, np.zeros(3), None)
    flag = tmp_path / "pwned"
    (path.parent / inputs_module.STORE_PICKLE).write_bytes(pickle.dumps(Payload(flag)))
    with pytest.raises(trust.UntrustedPickle):
        inputs_module.load_inputs(path)
    assert not flag.exists()


# ---------------------------------------------------------------------------- cards name no programs
def test_program_options_are_declared_and_refused_from_cards():
    assert program_options(CountOptions) == ("tool",)
    with pytest.raises(ImpbenchError, match=r"^c\.toml: \[imputers\.counting\] tool names a program"):
        card_option_values(CountOptions, {"tool": "/bin/sh"}, "counting", "c.toml")


def _card(folder: Path, table: str) -> None:
    text = (REPO / "datasets" / "sim-1kgp.toml").read_text()
    (folder / "shared.toml").write_text(text + "\n" + table)


@pytest.mark.parametrize("imputer, table", [
    ("beagle", '[imputers.beagle]\njava = "{script}"\n'),
    ("beagle", '[imputers.beagle]\nbeagle_jar = "{script}"\n'),
    ("minimac4", '[imputers.minimac4]\nminimac4 = "{script}"\n'),
])
def test_a_card_naming_a_program_is_refused_and_runs_nothing(tmp_path, capsys, monkeypatch, imputer, table):
    """The issue's reproducer: a shared card whose ``[imputers.beagle]`` names a script as
    ``java`` (or Minimac4's binary). Refused before anything runs, one line naming the card
    and the key; the script never runs; no run folder."""
    monkeypatch.setenv(registry.LOAD_PLUGINS_ENV, imputer)
    registry.reset()
    flag = tmp_path / "pwned"
    script = tmp_path / "script.sh"
    script.write_text(f"#!/bin/sh\ntouch {flag}\n")
    script.chmod(0o755)
    cards = tmp_path / "cards"
    cards.mkdir()
    _card(cards, table.format(script=script))
    with pytest.raises(SystemExit) as info:
        main(["run", "--dataset", "shared", "--cards", str(cards), "--imputers", imputer, "--out",
              str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    key = table.split("\n")[1].split(" =")[0]
    assert len(err.strip().splitlines()) == 1 and "shared.toml" in err and f"] {key} names a program" in err, err
    assert not flag.exists() and not (tmp_path / "out").exists()
