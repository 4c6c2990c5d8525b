"""The runner on in-memory data: shared masks, results folder, resume, failures, options."""

from __future__ import annotations

import json
import time
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impbench import hookimpl
from impbench.imputers import registry as plugins
from impbench.errors import ImpbenchError
from impbench.genotypes import MISSING
from impbench.imputers.base import Imputation, Imputer
from impbench.bench.masking import make_mask, mask_sha256, replicate_seed
from impbench.bench.exec.measure import StageMeter
from impbench.bench.results import COLUMNS
from impbench.bench.runner import Runner
from impbench.bench.settings import RunSettings, check_device, merge_options, parse_levels, parse_opt, read_options_file
from impbench.data.simulate import simulate_matrix
from impbench.testing import InMemoryStore


# ---------------------------------------------------------------------------- test imputers
@dataclass
class RecOptions:
    fill: int = 1
    flaw: str = ""  # "", fit, impute, impute-high (masking rate above 0.2), shape, code, overwrite, mutate
    note: str = ""


class Recording(Imputer):
    """Fills missing cells with ``fill``; records every call; ``flaw`` makes it misbehave."""

    name = "rec-a"
    Options = RecOptions
    calls: list = []  # (name, method, data) across instances

    def fit(self, panel, val, ctx):
        type(self).calls.append((self.name, "fit", {"panel_cohorts": set(panel.cohort), "n_panel": panel.n_samples,
                                                    "n_val": None if val is None else val.n_samples,
                                                    "card_options": dict(ctx.card_options), "device": ctx.device,
                                                    "segment_layout": (ctx.segment_layout.length, ctx.segment_layout.overlap) if ctx.segment_layout else None,
                                                    "seed": ctx.seed, "nproc": ctx.nproc, "work_dir": ctx.work_dir}))
        if self.options.flaw == "fit":
            raise RuntimeError("out of coffee\nsecond line")
        if self.options.flaw == "mutate":
            panel.codes[0, 0] = MISSING
        self._n_impute = 0

    def impute(self, target, ctx):
        type(self).calls.append((self.name, "impute", target.codes.copy()))
        self._n_impute += 1
        ctx.progress("impute", 1, 1)
        flaw = self.options.flaw
        if flaw == "impute" or (flaw == "impute-high" and (target.codes == MISSING).mean() > 0.2):
            raise ValueError("bad day")
        calls = np.where(target.codes == MISSING, self.options.fill, target.codes).astype(np.uint8)
        if flaw == "shape":
            calls = calls[:, :-1]
        if flaw == "code":
            calls[0, 0] = 7
        if flaw == "overwrite":
            calls[target.codes != MISSING] = 1 if calls[target.codes != MISSING][0] != 1 else 4
        dosage = np.array([0, 0, 1, 1, 2, 0, 0, 0], dtype=np.float32)[calls]
        return Imputation(calls=calls, dosage=dosage)

    def manifest_info(self):
        return {"fill": self.options.fill}


class RecordingB(Recording):
    name = "rec-b"


class _Module:
    @hookimpl
    def register_imputers(self, register):
        register(Recording)
        register(RecordingB)


@pytest.fixture(autouse=True)
def recording_plugin(monkeypatch):
    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, "")
    plugins.reset()
    plugins.register_plugin(_Module(), "recording-test", distribution="rec-dist", version="0.0.1")
    Recording.calls = []
    yield
    plugins.reset()


@pytest.fixture(scope="module")
def store():
    sim = simulate_matrix(n_samples=60, sequence_length=80_000, seed=4)
    return InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 250))), name="mem")


def settings(tmp_path, **kw) -> RunSettings:
    base = dict(dataset="mem", imputers=["rec-a", "rec-b"], levels=(0.1, 0.3), replicates=2, out=tmp_path,
                run_name="t", device="cpu", threads=1, executor="inline")
    base.update(kw)
    return RunSettings(**base)


def run(store, tmp_path, card=None, **kw):
    return Runner(settings(tmp_path, **kw), store, card).run()


def manifest(outcome):
    return json.loads((outcome.run_dir / "manifest.json").read_text())


def impute_calls(name):
    return [data for who, what, data in Recording.calls if who == name and what == "impute"]


# ---------------------------------------------------------------------------- shared masks
def test_every_imputer_sees_the_identical_mask(store, tmp_path):
    outcome = run(store, tmp_path)
    assert outcome.failures == {}
    seen_a, seen_b = impute_calls("rec-a"), impute_calls("rec-b")
    assert len(seen_a) == len(seen_b) == 4
    truth = store.read_split("test").codes
    masks = manifest(outcome)["masks"]
    for (level, replicate), a, b, entry in zip([(0.1, 0), (0.1, 1), (0.3, 0), (0.3, 1)], seen_a, seen_b, masks):
        assert np.array_equal(a, b)
        mask = a == MISSING
        expected = make_mask(truth, level, replicate_seed(store.dataset_hash, level, replicate), "uniform")
        assert np.array_equal(mask, expected)
        assert (entry["level"], entry["replicate"]) == (level, replicate)
        assert entry["sha256"] == mask_sha256(mask) and entry["n_masked"] == int(mask.sum())
        assert np.array_equal(a[~mask], truth[~mask])
    assert not np.array_equal(seen_a[0], seen_a[1])  # replicates differ


def test_results_folder_as_specified(store, tmp_path):
    outcome = run(store, tmp_path, protocol="both", seed=5, nproc=3)
    run_dir = tmp_path / "mem" / "t"
    assert outcome.run_dir == run_dir
    data = manifest(outcome)
    for key in ("impbench_version", "created", "command", "versions", "dataset", "maf_source", "settings", "masks",
                "imputers"):
        assert key in data
    assert data["dataset"]["hash"] == store.dataset_hash
    assert data["dataset"]["n_samples"] == {"train": 48, "val": 6, "test": 6}
    assert data["dataset"]["qc"]["source"] == "in-memory"
    assert data["settings"]["protocols"] == ["standard", "paper"] and data["settings"]["seed"] == 5
    assert data["versions"]["numpy"] == np.__version__
    entry = data["imputers"]["rec-a"]
    assert entry["distribution"] == "rec-dist" and entry["version"] == "0.0.1" and entry["status"] == "ok"
    assert entry["options"] == {"fill": 1, "flaw": "", "note": ""} and entry["info"] == {"fill": 1}
    assert entry["fit_seconds"] >= 0 and entry["fit_peak_mb"] >= 0
    assert [(u["level"], u["replicate"]) for u in entry["impute"]] == [(0.1, 0), (0.1, 1), (0.3, 0), (0.3, 1)]
    assert all(u["seconds"] >= 0 and u["peak_mb"] >= 0 and u["n_covered"] == store.n_variants for u in entry["impute"])
    replicates = pd.read_csv(run_dir / "replicates.csv")
    assert tuple(replicates.columns) == COLUMNS["replicates"]
    assert set(replicates.protocol) == {"standard", "paper"} and set(replicates.imputer) == {"rec-a", "rec-b"}
    assert set(replicates.level) == {0.1, 0.3} and set(replicates.replicate) == {0, 1}
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert tuple(metrics.columns) == COLUMNS["metrics"] + ("maf_source",)  # the aggregate's extra column
    assert set(metrics.protocol) == {"standard", "paper"} and set(metrics.imputer) == {"rec-a", "rec-b"}
    assert set(metrics.level) == {0.1, 0.3} and set(metrics.n_replicates) == {2}
    pooled = metrics[(metrics.metric == "r2") & metrics.ci_low.notna()]
    assert len(pooled) and (pooled.ci_low <= pooled.ci_high).all()
    assert set(metrics.cohort) == {"all", *store.read_split("test").cohort}  # all, then each test cohort
    classes = set(metrics.bin) - {"overall"} - set(replicates.bin)
    assert classes == {"rare (<1%)", "low-frequency (1–5%)", "common (≥5%)"}
    pairs = pd.read_csv(run_dir / "pairs.csv")
    assert tuple(pairs.columns) == COLUMNS["pairs"] + ("maf_source",) and set(zip(pairs.imputer_a, pairs.imputer_b)) == {("rec-a", "rec-b")}
    assert data["orientation"].startswith("minor allele") and data["settings"]["bootstrap"] == {
        "n": 1000, "seed": 0, "resamples": "test samples x genomic blocks", "block_length": 50000, "n_blocks": 2}
    per_sample = pd.read_csv(run_dir / "per_sample.csv")
    assert tuple(per_sample.columns) == COLUMNS["per_sample"]
    assert set(per_sample.sample_id) == set(store.read_split("test").sample_ids)
    confusion = pd.read_csv(run_dir / "confusion.csv")
    assert tuple(confusion.columns) == COLUMNS["confusion"]
    assert sorted((run_dir / "done").iterdir())[0].name == "rec-a.L0.1.r0.json"
    assert len(list((run_dir / "done").glob("*.json"))) == 8 and len(list((run_dir / "done").glob("*.stats.npz"))) == 8
    fit = [d for who, what, d in Recording.calls if what == "fit"][0]
    assert fit["seed"] == 5 and fit["nproc"] == 3 and fit["device"] == "cpu" and fit["n_val"] == 6
    # the fit's work folder is its artifact folder, keyed; it holds the pickled fitted imputer
    assert fit["work_dir"].parent == run_dir / "models" / "rec-a" / "fit" and (fit["work_dir"] / "imputer.pkl").is_file()
    assert entry["fit"]["key"] == fit["work_dir"].name and entry["fit"]["status"] == "ok"
    assert [u["status"] for u in entry["units"]] == ["ok"] * 4
    assert not list(run_dir.rglob("*.tmp"))


def test_scores_are_those_of_metrics_score(store, tmp_path):
    """The CSV holds what metrics.score gives for the recorded imputation (fill=1 everywhere)."""
    from impbench.scoring import metrics
    from impbench.genotypes import alt_allele_frequency

    outcome = run(store, tmp_path, imputers=["rec-a"], levels=(0.3,), replicates=1)
    truth = store.read_split("test").codes
    seen = impute_calls("rec-a")[0]
    calls = np.where(seen == MISSING, 1, seen).astype(np.uint8)
    imputation = Imputation(calls=calls, dosage=np.array([0, 0, 1, 1, 2], dtype=np.float32)[calls])
    expected = metrics.score(truth, imputation, seen == MISSING,
                             train_alt_freq=alt_allele_frequency(store.read_split("train").codes)).metrics
    got = pd.read_csv(outcome.run_dir / "replicates.csv")
    np.testing.assert_allclose(got["value"].to_numpy(float), expected["value"].to_numpy(float), equal_nan=True)
    assert list(got["metric"]) == list(expected["metric"])
    # With one replicate, the pooled estimate of every metric is the replicate's own value.
    pooled = pd.read_csv(outcome.run_dir / "metrics.csv", keep_default_na=False, na_values=[""])
    pooled = pooled[pooled.cohort == "all"]
    merged = pooled.merge(got, on=["imputer", "level", "protocol", "bin", "metric"], suffixes=("", "_rep"))
    assert len(merged) == len(got)
    np.testing.assert_allclose(merged["value"], merged["value_rep"], equal_nan=True, atol=1e-12)


# ---------------------------------------------------------------------------- resume
def test_rerun_resumes_without_recomputing(store, tmp_path):
    first = run(store, tmp_path)
    csv_before = (first.run_dir / "metrics.csv").read_text()
    Recording.calls = []
    second = run(store, tmp_path)
    assert Recording.calls == [] and second.units_done == 0 and second.units_skipped == 8
    assert (second.run_dir / "metrics.csv").read_text() == csv_before
    (second.run_dir / "done" / "rec-b.L0.3.r1.json").unlink()
    third = run(store, tmp_path)
    # the missing unit runs on rec-b's finished fit (same key): nothing is fitted again
    assert third.units_done == 1 and [w for w, what, _ in Recording.calls if what == "fit"] == []
    assert len(impute_calls("rec-b")) == 1
    assert (third.run_dir / "metrics.csv").read_text() == csv_before
    assert manifest(third)["imputers"]["rec-a"]["fit_seconds"] is not None  # kept from the first run


def test_resume_adds_levels_and_imputers(store, tmp_path):
    run(store, tmp_path, imputers=["rec-a"], levels=(0.1,))
    Recording.calls = []
    outcome = run(store, tmp_path, imputers=["rec-a", "rec-b"], levels=(0.1, 0.3))
    assert outcome.units_done == 6 and outcome.units_skipped == 2
    assert len(manifest(outcome)["masks"]) == 4


def test_resume_with_other_settings_is_refused(store, tmp_path):
    run(store, tmp_path)
    with pytest.raises(ImpbenchError, match="other settings \\(scheme\\)"):
        run(store, tmp_path, scheme="per-variant")
    with pytest.raises(ImpbenchError, match="'rec-a' ran here with other options"):
        run(store, tmp_path, options={"rec-a": {"fill": "2"}})


# ---------------------------------------------------------------------------- failures
def failing(store, tmp_path, flaw, **kw):
    outcome = run(store, tmp_path, options={"rec-a": {"flaw": flaw}}, **kw)
    data = manifest(outcome)
    assert data["imputers"]["rec-b"]["status"] == "ok"
    assert len(pd.read_csv(outcome.run_dir / "metrics.csv").query("imputer == 'rec-b'")) > 0
    return outcome, data["imputers"]["rec-a"]


def test_fit_failure_recorded_others_kept(store, tmp_path):
    outcome, entry = failing(store, tmp_path, "fit")
    assert entry["status"] == "failed"
    assert entry["error"] == "imputer 'rec-a': fit raised RuntimeError: out of coffee"
    assert outcome.failures == {"rec-a": entry["error"]}
    assert "Traceback" in (outcome.run_dir / "models" / "rec-a" / "error.txt").read_text()


def test_impute_failure_after_a_success_is_partial(store, tmp_path):
    outcome, entry = failing(store, tmp_path, "impute-high")
    assert entry["status"] == "partial" and "impute raised ValueError: bad day" in entry["error"]
    assert [(u["level"], u["replicate"]) for u in entry["impute"]] == [(0.1, 0), (0.1, 1)]
    assert [u["status"] for u in entry["units"]] == ["ok", "ok", "failed", "failed"]
    replicates = pd.read_csv(outcome.run_dir / "replicates.csv")
    assert set(replicates.query("imputer == 'rec-a'").level) == {0.1}


@pytest.mark.parametrize("flaw, message", [
    ("shape", r"imputer 'rec-a': calls have shape \(6, (\d+)\), expected \(6, (\d+)\)"),
    ("code", r"imputer 'rec-a': calls hold codes outside 1-4"),
    ("overwrite", r"imputer 'rec-a': impute\(\) changed \d+ observed cells"),
    ("mutate", r"imputer 'rec-a': fit\(\) modified the panel's codes in place"),
])
def test_malformed_answers_name_the_plugin(store, tmp_path, flaw, message):
    outcome, entry = failing(store, tmp_path, flaw)
    assert entry["status"] == "failed" and outcome.failures["rec-a"] == entry["error"]
    assert re.fullmatch(message + ".*", entry["error"]), entry["error"]
    # the harness restored the shared panel, so rec-b fitted on the true panel
    assert store.read_split("train").codes.min() >= 1


def test_failed_imputer_is_retried_on_resume(store, tmp_path):
    failing(store, tmp_path, "impute")
    Recording.calls = []
    # same options as before: still failing; but the run goes on and rec-b is skipped
    outcome = run(store, tmp_path, options={"rec-a": {"flaw": "impute"}})
    assert outcome.units_skipped == 4 and "rec-a" in outcome.failures


# ---------------------------------------------------------------------------- options and settings
def test_options_merge_card_file_and_cli(store, tmp_path):
    card = type("Card", (), {"imputers": {"rec-a": {"fill": 3, "note": "card", "panel": "/x.vcf.gz"}},
                             "segment_length": 64, "segment_overlap": 8})()
    toml = tmp_path / "opts.toml"
    toml.write_text('[rec-a]\nnote = "file"\n')
    options = merge_options(read_options_file(toml), {"rec-a": {"fill": "2"}})
    outcome = run(store, tmp_path, card=card, imputers=["rec-a"], options=options, levels=(0.1,), replicates=1)
    entry = manifest(outcome)["imputers"]["rec-a"]
    assert entry["options"] == {"fill": 2, "flaw": "", "note": "file"}
    fit = [d for who, what, d in Recording.calls if what == "fit"][0]
    assert fit["card_options"] == {"fill": 3, "note": "card", "panel": "/x.vcf.gz"}
    assert fit["segment_layout"] == (64, 8)  # a typed field, not a neural option name


def test_card_default_applies_without_cli_option(store, tmp_path):
    card = type("Card", (), {"imputers": {"rec-a": {"fill": 4}}})()
    outcome = run(store, tmp_path, card=card, imputers=["rec-a"], levels=(0.1,), replicates=1)
    assert manifest(outcome)["imputers"]["rec-a"]["options"]["fill"] == 4


def test_unknown_option_or_imputer_lists_valid_names(store, tmp_path):
    with pytest.raises(ImpbenchError, match="unknown option\\(s\\) colour for imputer rec-a; valid: fill, flaw, note"):
        run(store, tmp_path, options={"rec-a": {"colour": "red"}})
    with pytest.raises(ImpbenchError, match="unknown imputer 'nope'; available: major, knn, allele-freq, rec-a, rec-b"):
        run(store, tmp_path, imputers=["nope"])
    with pytest.raises(ImpbenchError, match="options given for unknown imputer"):
        run(store, tmp_path, options={"nope": {"k": 1}})
    with pytest.raises(ImpbenchError, match="cannot read 'x' as an integer"):
        run(store, tmp_path, options={"rec-a": {"fill": "x"}})


@pytest.mark.parametrize("kw, message", [
    ({"levels": (0.0, 0.1)}, "outside \\(0, 1\\)"),
    ({"levels": (1.5,)}, "outside \\(0, 1\\)"),
    ({"replicates": 0}, "--replicates must be at least 1"),
    ({"scheme": "zigzag"}, "valid: uniform, per-variant"),
    ({"protocol": "mine"}, "valid: standard, paper, both"),
    ({"device": "tpu"}, "--device 'tpu' is unknown"),
    ({"run_name": "../x"}, "--run '../x'"),
])
def test_bad_settings(store, tmp_path, kw, message):
    with pytest.raises(ImpbenchError, match=message):
        run(store, tmp_path, **kw)


def test_unknown_cohort_lists_cohorts(store, tmp_path):
    with pytest.raises(ImpbenchError, match="--train-cohort 'Z': dataset mem has cohorts A, B"):
        run(store, tmp_path, train_cohort="Z")


def test_cohort_subsets(store, tmp_path):
    outcome = run(store, tmp_path, imputers=["rec-a"], train_cohort="A", test_cohort="B", levels=(0.1,),
                  replicates=1)
    fit = [d for who, what, d in Recording.calls if what == "fit"][0]
    assert fit["panel_cohorts"] == {"A"}
    per_sample = pd.read_csv(outcome.run_dir / "per_sample.csv")
    assert set(per_sample.cohort) == {"B"}
    data = manifest(outcome)
    assert data["dataset"]["train_cohort"] == "A" and data["maf_source"] == "training split truth (cohort A)"


def test_parsers():
    assert parse_levels("0.05, 0.15,0.25") == (0.05, 0.15, 0.25)
    with pytest.raises(ImpbenchError, match="'x' is not a number"):
        parse_levels("0.1,x")
    assert parse_opt("biunet.epochs=5") == ("biunet", "epochs", "5")
    assert parse_opt("beagle.ref=a=b") == ("beagle", "ref", "a=b")
    with pytest.raises(ImpbenchError, match="expected NAME.KEY=VALUE"):
        parse_opt("epochs=5")
    assert merge_options({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}, "b": {"z": 4}}) == {"a": {"x": 1, "y": 3}, "b": {"z": 4}}


def test_options_file_errors(tmp_path):
    with pytest.raises(ImpbenchError, match="options file not found"):
        read_options_file(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = 5\n")
    with pytest.raises(ImpbenchError, match="must be a table"):
        read_options_file(bad)
    bad.write_text("[x\n")
    with pytest.raises(ImpbenchError, match="not valid TOML"):
        read_options_file(bad)


def test_device_check_imports_no_torch():
    import sys

    assert check_device("cpu") == "cpu" and check_device("auto") == "auto"
    with pytest.raises(ImpbenchError, match="--device 'tpu' is unknown"):
        check_device("tpu")
    code = "import sys; from impbench.bench import runner; runner.plan_run; assert 'torch' not in sys.modules"
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)


def test_stage_meter_sees_an_allocation_every_time():
    for _ in range(3):  # memory freed by one stage and reused by the next still counts
        with StageMeter() as meter:
            block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
            deadline = time.monotonic() + 60  # held until the sampler saw it (not a few ms: load)
            while meter._peak_rss - meter._start_rss < 40 * 2**20 and time.monotonic() < deadline:
                time.sleep(0.01)
            del block
        assert meter.peak_mb > 40 and meter.seconds > 0


def test_output_folder_not_writable(store, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ImpbenchError, match="output folder .* is not writable"):
        run(store, blocker / "out")


# ---------------------------------------------------------------------------- VCF output
def cyvcf2_header(path) -> str:
    import cyvcf2

    reader = cyvcf2.VCF(str(path))
    try:
        return reader.raw_header
    finally:
        reader.close()


def test_write_vcf_one_per_unit_readable_by_bcftools(store, tmp_path):
    outcome = run(store, tmp_path, imputers=["knn"], levels=(0.2,), replicates=2, write_vcf=True)
    names = sorted(v.name for v in (outcome.run_dir / "vcf").glob("*.vcf.gz"))
    assert names == ["knn.L0.2.r0.vcf.gz", "knn.L0.2.r1.vcf.gz", "target.L0.2.r0.vcf.gz", "target.L0.2.r1.vcf.gz",
                     "truth.vcf.gz"]
    vcfs = [outcome.run_dir / "vcf" / name for name in names[:2]]
    header = cyvcf2_header(vcfs[0])
    mask_sha = {(m["level"], m["replicate"]): m["sha256"] for m in manifest(outcome)["masks"]}
    for line in ("##impbench_imputer=knn", "##impbench_level=0.2", "##impbench_replicate=0",
                 "##impbench_scheme=uniform", f"##impbench_mask_sha256={mask_sha[(0.2, 0)]}", "##impbench_version="):
        assert line in header
    assert f"##contig=<ID={store.contig},length=" in header
    import cyvcf2

    reader = cyvcf2.VCF(str(vcfs[0]))
    assert list(reader.samples) == list(store.read_split("test").sample_ids)
    record = next(iter(reader))
    assert record.format("DS") is not None and record.format("GP") is not None and record.format("MK") is not None
    if shutil.which("bcftools"):
        result = subprocess.run(["bcftools", "view", "-H", str(vcfs[0])], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) == store.n_variants
    # a resumed run without the VCF on disk recomputes that unit
    vcfs[1].unlink()
    again = run(store, tmp_path, imputers=["knn"], levels=(0.2,), replicates=2, write_vcf=True)
    assert again.units_done == 1 and vcfs[1].exists()
