"""``impbench run`` end to end on a tiny file card, and its answers to bad input."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impbench import hookimpl
from impbench.imputers import registry as plugins
from impbench.cli import main
from impbench.genotypes import MISSING
from impbench.imputers.base import Imputation, Imputer
from impbench.data.simulate import simulate_matrix
from impbench.io.vcf_write import write_vcf

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- a tiny dataset
@pytest.fixture(scope="module")
def tiny_cards(tmp_path_factory):
    """A card folder with the file card ``tiny`` (60 samples, a few hundred variants)."""
    folder = tmp_path_factory.mktemp("cards")
    sim = simulate_matrix(n_samples=60, sequence_length=60_000, seed=8)
    write_vcf(sim, folder / "tiny.vcf.gz")
    sheet = ["sample\tpop\tsex"] + [f"{s}\t{c}\t{x}" for s, c, x in zip(sim.sample_ids, sim.cohort, sim.sex)]
    (folder / "tiny.tsv").write_text("\n".join(sheet) + "\n")
    (folder / "tiny.toml").write_text(
        'description = "tiny test dataset"\nvcf = "tiny.vcf.gz"\nsamples = "tiny.tsv"\n'
        '[sample_columns]\nid = "sample"\ncohort = "pop"\nsex = "sex"\n'
        '[imputers.knn]\nwindow = 10\n'
    )
    return folder


@pytest.fixture(autouse=True)
def environment(monkeypatch, tiny_cards, tmp_path_factory):
    monkeypatch.setenv("IMPBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, "")  # no torch plugins: fast, independent
    monkeypatch.setenv("COLUMNS", "200")
    plugins.reset()
    Flawed.fits = 0
    yield
    plugins.reset()


def impbench(capsys, *args) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(map(str, args)))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def run_args(tiny_cards, out, *extra):
    return ["run", "--dataset", "tiny", "--cards", tiny_cards, "--out", out, "--levels", "0.1",
            "--replicates", "1", "--device", "cpu", "--no-progress", *extra]


# ---------------------------------------------------------------------------- misbehaving plugins
@dataclass
class FlawOptions:
    flaw: str = ""


class Flawed(Imputer):
    """Keeps observed codes and fills 1, unless ``flaw`` says otherwise."""

    name = "flawed"
    Options = FlawOptions
    fits = 0

    def fit(self, panel, val, ctx):
        type(self).fits += 1
        if self.options.flaw == "fit":
            raise RuntimeError("cannot fit today")

    def impute(self, target, ctx):
        if self.options.flaw == "impute":
            raise MemoryError("no memory left")
        calls = np.where(target.codes == MISSING, 1, target.codes).astype(np.uint8)
        if self.options.flaw == "shape":
            calls = calls[:-1]
        if self.options.flaw == "code":
            calls = np.where(target.codes == MISSING, 9, calls).astype(np.uint8)
        dosage = np.zeros(calls.shape, dtype=np.float32)
        return Imputation(calls=calls, dosage=dosage)


class FlawedPlugin:
    @hookimpl
    def register_imputers(self, register):
        register(Flawed)


def register_flawed():
    plugins.register_plugin(FlawedPlugin(), "flawed-plugin", distribution="flawed-dist", version="0")


def example_module():
    """The example plugin's module: installed (make setup does so) or from the source tree."""
    try:
        return importlib.import_module("impbench_example")
    except ImportError:
        sys.path.insert(0, str(REPO / "examples" / "impbench-example"))
        return importlib.import_module("impbench_example")


# ---------------------------------------------------------------------------- end to end
def test_run_end_to_end_with_example_plugin_and_vcf(capsys, tiny_cards, tmp_path):
    plugins.register_plugin(example_module(), "example", distribution="impbench-example", version="0.1.0")
    options = tmp_path / "opts.toml"
    options.write_text("[knn]\nk = 4\n")
    code, out, err = impbench(capsys, *run_args(tiny_cards, tmp_path / "out", "--imputers", "major,knn,tag-snp",
                                                "--levels", "0.1,0.2", "--run", "r1", "--write-vcf",
                                                "--options", options, "--opt", "tag-snp.window=3",
                                                "--seed", "3", "--threads", "1", "--protocol", "both"))
    assert code == 0, err
    run_dir = tmp_path / "out" / "tiny" / "r1"
    assert f"results: {run_dir}" in out
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert {name: e["status"] for name, e in manifest["imputers"].items()} == {
        "major": "ok", "knn": "ok", "tag-snp": "ok"}
    assert manifest["imputers"]["knn"]["options"] == {"k": 4, "window": 10}  # file over card default
    assert manifest["imputers"]["tag-snp"]["options"] == {"window": 3, "pseudocount": 0.5}
    assert manifest["imputers"]["tag-snp"]["distribution"] == "impbench-example"
    assert manifest["command"].startswith("impbench ") and manifest["settings"]["seed"] == 3
    assert manifest["dataset"]["hash"] and manifest["dataset"]["qc"]
    assert len(manifest["masks"]) == 2
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert set(metrics.imputer) == {"major", "knn", "tag-snp"} and set(metrics.protocol) == {"standard", "paper"}
    r2 = metrics.query("protocol == 'standard' and bin == 'overall' and metric == 'r2'").groupby("imputer").value.mean()
    assert r2["knn"] > r2["major"]  # the floor: knn uses linkage, major does not
    vcfs = sorted(p.name for p in (run_dir / "vcf").glob("*.vcf.gz"))
    assert vcfs == sorted([f"{i}.L{lv}.r0.vcf.gz" for i in ("major", "knn", "tag-snp") for lv in ("0.1", "0.2")]
                          + ["target.L0.1.r0.vcf.gz", "target.L0.2.r0.vcf.gz", "truth.vcf.gz"])
    if shutil.which("bcftools"):
        result = subprocess.run(["bcftools", "view", str(run_dir / "vcf" / "knn.L0.1.r0.vcf.gz")],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "##FORMAT=<ID=GP" in result.stdout and "DR2=" in result.stdout
    # the same command again resumes: nothing recomputed
    code, out, err = impbench(capsys, *run_args(tiny_cards, tmp_path / "out", "--imputers", "major,knn,tag-snp",
                                                "--levels", "0.1,0.2", "--run", "r1", "--write-vcf",
                                                "--options", options, "--opt", "tag-snp.window=3",
                                                "--seed", "3", "--threads", "1", "--protocol", "both"))
    assert code == 0 and "(0 units done, 6 already done)" in out


def test_help_explains(capsys):
    code, out, _ = impbench(capsys, "run", "--help")
    assert code == 0
    for text in ("--dataset", "--imputers", "--levels", "--write-vcf", "--train-cohort", "Resumable"):
        assert text in out


# ---------------------------------------------------------------------------- bad input: exit 2, one line
def one_line_error(code, err) -> str:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("impbench: error: ")
    return lines[0]


def test_unknown_imputer_lists_valid_names(capsys, tiny_cards, tmp_path):
    line = one_line_error(*impbench(capsys, *run_args(tiny_cards, tmp_path, "--imputers", "major,nope"))[::2])
    assert "unknown imputer 'nope'; available: major, knn" in line


def test_unknown_dataset_lists_valid_names(capsys, tiny_cards, tmp_path):
    code, _, err = impbench(capsys, "run", "--dataset", "nope", "--cards", tiny_cards, "--out", tmp_path)
    line = one_line_error(code, err)
    assert "unknown dataset 'nope'" in line and "sim-1kgp" in line and "tiny" in line


@pytest.mark.parametrize("levels", ["0,0.1", "0.1,1", "1.5", "-0.2", "0.1,x", ""])
def test_levels_outside_zero_one(capsys, tiny_cards, tmp_path, levels):
    code, _, err = impbench(capsys, *run_args(tiny_cards, tmp_path, "--imputers", "major"), "--levels", levels)
    assert "--levels" in one_line_error(code, err)


def test_zero_replicates(capsys, tiny_cards, tmp_path):
    code, _, err = impbench(capsys, *run_args(tiny_cards, tmp_path, "--imputers", "major"), "--replicates", "0")
    assert "--replicates must be at least 1, got 0" in one_line_error(code, err)


def test_output_folder_under_a_file(capsys, tiny_cards, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = impbench(capsys, *run_args(tiny_cards, blocker / "out", "--imputers", "major"))
    assert "is not writable" in one_line_error(code, err)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_output_folder_without_permission(capsys, tiny_cards, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = impbench(capsys, *run_args(tiny_cards, locked, "--imputers", "major"))
    finally:
        locked.chmod(0o700)
    assert "is not writable" in one_line_error(code, err)


@pytest.mark.parametrize("args, message", [
    (["--opt", "knn.k"], "expected NAME.KEY=VALUE"),
    (["--opt", "knn.colour=red"], "unknown option(s) colour for imputer knn; valid: k, window"),
    (["--opt", "knn.k=many"], "cannot read 'many' as an integer"),
    (["--scheme", "zigzag"], "valid: uniform, per-variant"),
    (["--protocol", "all"], "valid: standard, paper, both"),
    (["--device", "quantum"], "--device 'quantum' is unknown"),
    (["--train-cohort", "Z"], "--train-cohort 'Z': dataset tiny has cohorts A, B"),
    (["--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["--jobs", "-3"], "--jobs must be at least 1, got -3"),
    (["--executor", "cloud"], "--executor 'cloud' is unknown; valid: local, inline"),
    (["--time-limit", "0"], "--time-limit: the time limit must be a positive number of seconds, got 0"),
    (["--time-limit", "nan"], "--time-limit: the time limit must be a positive number of seconds"),
    (["--time-limit-for", "knn"], "--time-limit-for 'knn': expected NAME=SECONDS"),
    (["--time-limit-for", "knn=soon"], "'soon' is not a number of seconds"),
    (["--time-limit-for", "beagle=60"], "--time-limit-for names imputer(s) not in this run: beagle"),
    (["--time-limit-for", "knn=-1"], "--time-limit-for knn: the time limit must be a positive number"),
    (["--levels", "0.000001"], "masking level 1e-06 (uniform) masks no cell"),
])
def test_other_bad_input(capsys, tiny_cards, tmp_path, args, message):
    code, _, err = impbench(capsys, *run_args(tiny_cards, tmp_path / "out", "--imputers", "knn"), *args)
    assert message in one_line_error(code, err)
    assert not (tmp_path / "out").exists()  # an early failure leaves no (empty) run or output folder


def test_run_folder_in_use_is_refused_naming_the_holder(capsys, tiny_cards, tmp_path):
    import socket

    from impbench.bench.exec.lock import RunLock

    run_dir = tmp_path / "tiny" / "busy"
    run_dir.mkdir(parents=True)
    with RunLock.acquire(run_dir, command="impbench run --run busy"):
        code, _, err = impbench(capsys, *run_args(tiny_cards, tmp_path, "--imputers", "major", "--run", "busy"))
        line = one_line_error(code, err)
    assert f"in use by process {os.getpid()} on host {socket.gethostname()} (started " in line
    assert "impbench run --run busy" in line and not (run_dir / "manifest.json").exists()
    code, _, _ = impbench(capsys, *run_args(tiny_cards, tmp_path, "--imputers", "major", "--run", "busy"))
    assert code == 0  # released: the folder is free again


def test_jobs_1_and_2_give_identical_metrics(capsys, tiny_cards, tmp_path):
    plugins.register_plugin(example_module(), "example", distribution="impbench-example", version="0.1.0")
    for jobs in (1, 2):
        code, _, err = impbench(capsys, *run_args(tiny_cards, tmp_path, "--imputers", "major,knn,tag-snp", "--run",
                                                  f"j{jobs}", "--replicates", "2", "--jobs", jobs))
        assert code == 0, err
    one, two = (tmp_path / "tiny" / f"j{jobs}" for jobs in (1, 2))
    for table in ("metrics", "pairs", "replicates", "per_sample"):
        assert (one / f"{table}.csv").read_text() == (two / f"{table}.csv").read_text(), table
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["settings"]["jobs"] == 2 and manifest["settings"]["threads"] == max(1, (os.cpu_count() or 1) // 2)


def test_cuda_without_gpu(capsys, tiny_cards, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    code, _, err = impbench(capsys, *run_args(tiny_cards, tmp_path, "--imputers", "major"), "--device", "cuda")
    assert "no CUDA GPU is available" in one_line_error(code, err)


# ---------------------------------------------------------------------------- plugin failures: exit 1
@pytest.mark.parametrize("flaw, message", [
    ("fit", "imputer 'flawed': fit raised RuntimeError: cannot fit today"),
    ("impute", "imputer 'flawed': impute raised MemoryError: no memory left"),
    ("shape", "imputer 'flawed': calls have shape"),
    ("code", "imputer 'flawed': calls hold codes outside 1-4"),
])
def test_failing_plugin_recorded_others_kept(capsys, tiny_cards, tmp_path, flaw, message):
    register_flawed()
    code, out, err = impbench(capsys, *run_args(tiny_cards, tmp_path, "--imputers", "major,flawed,knn", "--run", "f",
                                                "--opt", f"flawed.flaw={flaw}"))
    assert code == 1
    assert f"impbench: failed: {message}" in err
    run_dir = tmp_path / "tiny" / "f"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["imputers"]["flawed"]["status"] == "failed"
    assert manifest["imputers"]["flawed"]["error"].startswith(message)
    assert manifest["imputers"]["major"]["status"] == manifest["imputers"]["knn"]["status"] == "ok"
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert set(metrics.imputer) == {"major", "knn"}
