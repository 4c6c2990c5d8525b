"""Bad input across the commands (the probes of the reliability issue): each is one line naming
the file or option, exit 2 (exit 1 for a refused write), before any work, nothing half-written.

Every case here failed on the main branch before this round: a traceback, a silent
acceptance, a failure at run time instead of up front, or a message in numpy's repr.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from impbench.bench.exec.lock import RunLock
from impbench.cli import main
from impbench.imputers import registry

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IMPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("IMPBENCH_DATASETS", raising=False)
    monkeypatch.setenv(registry.LOAD_PLUGINS_ENV, "beagle")  # the baselines and Beagle: no torch
    monkeypatch.setenv("COLUMNS", "250")
    registry.reset()
    yield
    registry.reset()


def cli(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------------------- options
OPTION_CASES = {
    # name: (how it is given, the text the one line must hold)
    "toml list for an int": ({"file": "[knn]\nk = [1, 2]\n"}, "option knn.k: must be an integer, not a list"),
    "toml float for an int": ({"file": "[knn]\nk = 2.5\n"}, "option knn.k: must be an integer, not the number 2.5"),
    "toml bool for an int": ({"file": "[knn]\nk = true\n"}, "option knn.k: must be an integer, not the boolean true"),
    "toml inf for an int": ({"file": "[knn]\nwindow = inf\n"}, "option knn.window: must be an integer, not the number inf"),
    "toml inf for a float": ({"file": "[beagle]\nwindow = inf\n"}, "option beagle.window: must be a finite number"),
    "toml nan for a float": ({"file": "[beagle]\nne = nan\n"}, "option beagle.ne: must be a finite number"),
    "toml int for a bool": ({"file": "[beagle]\nimpute = 1\n"}, "option beagle.impute: must be true or false"),
    "toml table for a str": ({"file": "[beagle]\nref = { a = 1 }\n"}, "option beagle.ref: must be text, not a table"),
    "--opt float for an int": ({"opt": "knn.k=2.5"}, "option knn.k: cannot read '2.5' as an integer"),
    "--opt inf for a float": ({"opt": "beagle.window=inf"}, "option beagle.window: must be a finite number"),
    "--opt bad bool": ({"opt": "beagle.impute=maybe"}, "option beagle.impute: cannot read 'maybe' as a boolean"),
}


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_options_are_typed_and_refused_in_one_line(case, tmp_path, capsys):
    given, text = OPTION_CASES[case]
    args = ["run", "--dataset", "sim-1kgp", "--imputers", "knn,beagle", "--out", tmp_path / "out", "--no-progress"]
    if "file" in given:
        (tmp_path / "o.toml").write_text(given["file"])
        args += ["--options", tmp_path / "o.toml"]
    else:
        args += ["--opt", given["opt"]]
    code, _, err = cli(capsys, *args)
    assert code == 2 and text in one_line(err), err
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()  # before any work


def test_typed_options_still_take_what_is_right():
    from impbench.imputers.base import make_options
    from impbench_beagle.imputer import BeagleOptions

    options = make_options(BeagleOptions, {"window": 20, "ne": "1e5", "impute": "false", "nthreads": "2",
                                           "java_heap": 4096, "seed": "none"}, "beagle")
    assert (options.window, options.ne, options.impute, options.nthreads) == (20.0, 1e5, False, 2)
    assert options.java_heap == "4096" and options.seed is None and isinstance(options.window, float)


@pytest.mark.parametrize("flag", ["--bootstrap-seed", "--seed"])
def test_negative_seeds_are_refused_up_front(flag, tmp_path, capsys):
    code, _, err = cli(capsys, "run", "--dataset", "sim-1kgp", "--imputers", "knn", flag, -1,
                       "--out", tmp_path / "out", "--no-progress")
    assert code == 2 and f"{flag} must be an integer in [0, 2**63 - 1], got -1" in one_line(err)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("args, text", [
    (["--maf-classes", "0.02,0.3"], "does not fall on the bin edges 0, 0.005, 0.01, 0.05"),
    (["--replicates", 10**6], "--replicates 1000000: at most 1,000"),
    (["--bootstrap", 10**8], "--bootstrap 100000000: at most 100,000 resamples"),
])
def test_run_arguments_are_checked_before_any_work(args, text, tmp_path, capsys):
    code, _, err = cli(capsys, "run", "--dataset", "sim-1kgp", "--imputers", "knn", *args,
                       "--out", tmp_path / "out", "--no-progress")
    line = one_line(err)
    assert code == 2 and text in line and "np.float64" not in line, line
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()  # nothing prepared


def test_opt_for_an_imputer_not_in_the_run_is_refused(tmp_path, capsys):
    code, _, err = cli(capsys, "run", "--dataset", "sim-1kgp", "--imputers", "knn", "--opt", "beagle.ref=x",
                       "--out", tmp_path / "out", "--no-progress")
    assert code == 2 and "--opt beagle.ref: 'beagle' is not in this run (--imputers knn)" in one_line(err)
    assert not (tmp_path / "out").exists()


def test_simulate_into_an_unwritable_place_is_one_line(tmp_path, capsys):
    code, _, err = cli(capsys, "simulate", "--dataset", "sim-1kgp", "--out", "/proc/impbench-nowhere")
    assert code == 2 and one_line(err).startswith("impbench: error: --out /proc/impbench-nowhere: cannot write there")
    assert not (tmp_path / "cache").exists()  # nothing simulated


# ---------------------------------------------------------------------------- cards
def simulated_card(extra_simulation: str = "", samples: str = "{ YRI = 20, CEU = 20 }") -> str:
    return (f'description = "probe"\n[simulation]\nmodel = "OutOfAfrica_3G09"\nsamples = {samples}\n'
            f'length = 100_000\nseed = 3\n{extra_simulation}')


BAD_CARDS = {
    "huge-samples": (simulated_card(samples="{ YRI = 1_000_000_000_000_000 }"), "simulation.samples is 1e+15; at most 100,000"),
    "float-samples": (simulated_card(samples="{ YRI = 1e15 }"), "simulation.samples.YRI must be a positive integer, not 1000000000000000.0"),
    "huge-length": (simulated_card().replace("length = 100_000", f"length = {2**63 - 1}"), "simulation.length is 9.22337e+18"),
    "huge-rate": (simulated_card("mutation_rate = 1.0\n"), "simulation.mutation_rate is 1; at most 1e-05"),
    "inf-rate": (simulated_card("recombination_rate = inf\n"), "simulation.recombination_rate is inf"),
    "past-vcf-positions": (simulated_card("start = 2_147_000_000\n"), "simulation.start + length"),
    "huge-segments": (simulated_card().replace('description = "probe"', 'description = "probe"\nsegment_length = 9223372036854775807'),
                      "segment_length is 9,223,372,036,854,775,807; at most"),
    "not-utf8": (None, "not UTF-8 text"),
}


def write_bad_cards(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    for name, (text, _) in BAD_CARDS.items():
        path = folder / f"{name}.toml"
        if text is None:
            path.write_bytes(b'description = "caf\xe9"\n[simulation]\nmodel = "OutOfAfrica_3G09"\n')
        else:
            path.write_text(text)
    (folder / "good-one.toml").write_text(simulated_card())


@pytest.mark.parametrize("name", list(BAD_CARDS))
def test_a_bad_card_is_one_line_naming_it(name, tmp_path, capsys):
    cards = tmp_path / "cards"
    write_bad_cards(cards)
    code, _, err = cli(capsys, "prepare", "--dataset", name, "--cards", cards)
    line = one_line(err)
    assert code == 2 and str(cards / f"{name}.toml") in line and BAD_CARDS[name][1] in line, line
    assert not (tmp_path / "cache").exists()


def test_datasets_lists_the_good_cards_and_one_line_per_bad_one(tmp_path, capsys):
    cards = tmp_path / "cards"
    write_bad_cards(cards)
    code, out, err = cli(capsys, "datasets", "--cards", cards)
    assert code == 2
    assert "good-one" in out and "sim-1kgp" in out  # the good ones are listed
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == len(BAD_CARDS) and "Traceback" not in err
    for name in BAD_CARDS:
        assert sum(f"{name}.toml" in line for line in lines) == 1, (name, lines)


def test_one_bad_card_does_not_stop_another_cards_run(tmp_path, capsys):
    from impbench.data.cards import get_card

    cards = tmp_path / "cards"
    write_bad_cards(cards)
    assert get_card("good-one", [cards]).name == "good-one"


# ---------------------------------------------------------------------------- run-folder files
HOST = socket.gethostname()


@pytest.mark.parametrize("record", [{"pid": "abc", "host": HOST}, {"pid": 12.5, "host": HOST},
                                    {"pid": os.getpid() + 10**7, "host": HOST, "start_ticks": "x"},
                                    {"pid": 1, "host": HOST, "started": ["no"], "command": {"a": 1}},
                                    [1, 2], "\udcff"])
def test_a_corrupt_lock_file_is_taken_without_a_traceback(record, tmp_path):
    """The issue's probe (``"pid": "abc"`` on this host) and other wrong-typed fields; the last
    two (not a table, not UTF-8) were already handled."""
    data = json.dumps(record).encode() if not isinstance(record, str) else b'{"pid": "\xff\xfe"}'
    (tmp_path / ".lock").write_bytes(data)
    warnings = []
    lock = RunLock.acquire(tmp_path, "impbench run", warn=warnings.append)
    try:
        holder = json.loads((tmp_path / ".lock").read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    finally:
        lock.release()


def test_a_done_marker_that_is_not_utf8_is_not_done(tmp_path):
    from impbench.bench.results import RunFolder

    folder = RunFolder(tmp_path)
    path = folder.marker_path("knn", 0.1, 0)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format": 1, "imputer": "knn", "mask_sha256": "0" * 64, "n_masked": 1,
                                "fit_key": "f", "unit_key": "u", "level": 0.1, "replicate": 0}))
    assert folder.read_marker("knn", 0.1, 0) is not None  # a valid marker, before the byte is broken
    path.write_bytes(path.read_bytes().replace(b"knn", b"kn\xff"))
    assert folder.read_marker("knn", 0.1, 0) is None and list(folder.markers()) == []


def test_messages_print_numbers_not_numpy_reprs():
    from impbench.errors import ImpbenchError
    from impbench.scoring.classes import class_bins
    from impbench.scoring.metrics import DEFAULT_BIN_EDGES

    with pytest.raises(ImpbenchError) as info:
        class_bins(np.asarray(DEFAULT_BIN_EDGES), [("odd", 0.0, 0.02)])
    assert "np.float64" not in str(info.value) and "0.005, 0.01" in str(info.value)
    from impbench.imputers.base import make_options
    from impbench.imputers.baselines import KnnOptions

    with pytest.raises(ImpbenchError) as info:
        make_options(KnnOptions, {"k": np.float64(2.5)}, "knn")
    assert "np.float64" not in str(info.value) and "the number 2.5" in str(info.value)


# ---------------------------------------------------------------------------- a full disk
def test_disk_full_writing_a_done_marker_is_not_blamed_on_the_imputer(tmp_path, monkeypatch):
    from impbench.bench.results import RunFolder
    from impbench.bench.runner import Runner
    from impbench.bench.settings import RunSettings
    from impbench.data.simulate import simulate_matrix
    from impbench.testing import InMemoryStore

    monkeypatch.setenv(registry.LOAD_PLUGINS_ENV, "")
    registry.reset()
    sim = simulate_matrix(n_samples=40, sequence_length=40_000, seed=2)
    store = InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 80))), name="mem")

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path / "done" / "x.json"))

    monkeypatch.setattr(RunFolder, "write_marker", full)
    settings = RunSettings(dataset="mem", imputers=["major"], levels=(0.1,), replicates=1, out=tmp_path / "out",
                           run_name="t", device="cpu", threads=1, n_boot=10, executor="inline")
    outcome = Runner(settings, store).run()
    error = outcome.failures["major"]
    assert "impbench could not write to the run folder" in error and "No space left on device" in error
    assert "is not at fault" in error and "impute raised" not in error


def test_disk_full_writing_a_workers_result_is_not_blamed_on_the_imputer(tmp_path, monkeypatch):
    """Not even ``result.json`` can be written (inline executor): the unit fails with the
    disk's line, the run goes on to its end."""
    from impbench.bench.exec import worker
    from impbench.bench.runner import Runner
    from impbench.bench.settings import RunSettings
    from impbench.data.simulate import simulate_matrix
    from impbench.testing import InMemoryStore

    monkeypatch.setenv(registry.LOAD_PLUGINS_ENV, "")
    registry.reset()
    sim = simulate_matrix(n_samples=40, sequence_length=40_000, seed=2)
    store = InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 80))), name="mem")
    real = worker.write_json

    def full(path, data):
        if Path(path).name == "result.json" and data.get("kind") == "unit":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(worker, "write_json", full)
    settings = RunSettings(dataset="mem", imputers=["major"], levels=(0.1,), replicates=1, out=tmp_path / "out",
                           run_name="t", device="cpu", threads=1, n_boot=10, executor="inline")
    outcome = Runner(settings, store).run()
    error = outcome.failures["major"]
    assert "impbench could not write to the run folder" in error and "result.json: No space left on device" in error
    assert "is not at fault" in error
