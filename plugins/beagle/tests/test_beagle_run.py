"""Real Beagle runs on small simulated data: accuracy, coverage, panels, leakage, bad input.

These run ``sporadic=hard`` (one Beagle run on the 20 target samples) to keep the suite cheap;
the default soft mode (one run per sample) is tested in ``test_beagle_soft``."""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from impbench.imputers.baselines import MajorImputer
from impbench.errors import ImpbenchError
from impbench.genotypes import ALLELES_CODE, MISSING, code_dosage
from impbench.imputers.base import RunContext, check_imputation
from impbench.data.simulate import simulate_matrix
from impbench.io.vcf_write import write_vcf
from impbench_beagle import BeagleImputer, BeagleOptions

pytestmark = pytest.mark.beagle

MASK_RATE = 0.10


@dataclasses.dataclass
class Split:
    panel: object
    val: object
    truth: object
    masked: object
    mask: np.ndarray


@pytest.fixture(scope="module")
def split() -> Split:
    """150 simulated samples (~1,000 variants over 300 kb): 120 panel, 10 validation, 20 target,
    10% of the target's cells masked."""
    full = simulate_matrix(n_samples=150, sequence_length=300_000, seed=7)
    panel = full.take_samples(np.arange(120))
    val = full.take_samples(np.arange(120, 130))
    truth = full.take_samples(np.arange(130, 150))
    mask = np.random.default_rng(7).random(truth.codes.shape) < MASK_RATE
    codes = truth.codes.copy()
    codes[mask] = MISSING
    return Split(panel, val, truth, truth.with_codes(codes), mask)


def masked_dosage_r2(truth_codes, dosage, mask) -> float:
    true_dosage = code_dosage(truth_codes)[mask].astype(np.float64)
    return float(np.corrcoef(true_dosage, np.asarray(dosage, dtype=np.float64)[mask])[0, 1] ** 2)


def fit_impute(imputer, split, work_dir, **ctx_kwargs):
    ctx = RunContext(work_dir=work_dir, threads=1, seed=3, **ctx_kwargs)
    imputer.fit(split.panel, split.val, ctx)
    return check_imputation(imputer.name, imputer.impute(split.masked, ctx), split.masked), ctx


def text_parse_calls(path: Path, target) -> dict:
    """Slow, obviously correct reader of Beagle's output: {(pos, ref, alt): codes by target sample}."""
    calls = {}
    with gzip.open(path, "rt") as f:
        for line in f:
            if line.startswith("##"):
                continue
            fields = line.rstrip("\n").split("\t")
            if line.startswith("#"):
                column = {sample: 9 + i for i, sample in enumerate(fields[9:])}
                continue
            key = (int(fields[1]), fields[3], fields[4])
            codes = []
            for sample in target.sample_ids:
                gt = fields[column[sample]].split(":")[0]
                codes.append(int(ALLELES_CODE[int(gt[0]), int(gt[2])]))
            calls[key] = codes
    return calls


@pytest.fixture(scope="module")
def beagle_run(split, tmp_path_factory):
    imputer = BeagleImputer(BeagleOptions(keep_vcfs=True, timeout=300, sporadic="hard"))
    result, ctx = fit_impute(imputer, split, tmp_path_factory.mktemp("beagle"))
    return imputer, result, ctx


def test_beagle_scores_far_above_major(split, beagle_run, tmp_path):
    _, result, _ = beagle_run
    major = MajorImputer()
    ctx = RunContext(work_dir=tmp_path, threads=1, seed=3)
    major.fit(split.panel, split.val, ctx)
    major_result = major.impute(split.masked, ctx)
    r2_beagle = masked_dosage_r2(split.truth.codes, result.dosage, split.mask)
    r2_major = masked_dosage_r2(split.truth.codes, major_result.dosage, split.mask)
    print(f"masked-cell dosage R2: beagle {r2_beagle:.4f}, major {r2_major:.4f}")
    assert r2_beagle > 0.9
    assert r2_beagle > r2_major + 0.3
    assert result.covered.all()
    observed = ~split.mask
    np.testing.assert_array_equal(result.calls[observed], split.truth.codes[observed])


def test_parsed_calls_equal_a_plain_text_reading(split, beagle_run):
    imputer, result, _ = beagle_run
    run_dir = Path(imputer.manifest_info()["runs"][-1]["run_dir"])
    by_key = text_parse_calls(run_dir / "out.vcf.gz", split.masked)
    target = split.masked
    for j in np.flatnonzero(split.mask.any(axis=0)):
        expected = np.array(by_key[(int(target.positions[j]), target.ref[j], target.alt[j])])
        rows = split.mask[:, j]
        np.testing.assert_array_equal(result.calls[rows, j], expected[rows])


def test_run_folder_keeps_log_and_manifest_states_version_and_map(beagle_run):
    imputer, _, ctx = beagle_run
    info = imputer.manifest_info()
    assert info["beagle_version"].startswith("5.")
    assert info["beagle_build"].endswith(".jar")
    assert info["map"] == "no map: Beagle assumes 1 cM = 1 Mb"
    assert info["uncovered_markers"] == 0
    assert info["panel"]["kind"] == "internal" and info["panel"]["n_samples"] == 120
    run = info["runs"][-1]
    assert run["wall_s"] > 0 and run["peak_rss_mb"] > 10
    run_dir = Path(run["run_dir"])
    assert run_dir.parent == Path(ctx.work_dir)
    assert (run_dir / "out.log").is_file() and "Total time" in (run_dir / "out.log").read_text()
    assert (run_dir / "out.console.txt").is_file()
    assert (Path(ctx.work_dir) / "panel.vcf.gz").is_file()
    assert (Path(ctx.work_dir) / "panel.vcf.gz.tbi").is_file()


def test_fully_masked_variant_is_imputed_from_the_panel_with_probs(split, tmp_path):
    codes = split.masked.codes.copy()
    carriers = (split.truth.codes > 1).sum(axis=0)
    column = int(np.flatnonzero(carriers >= 5)[0])  # a common variant, so the check says something
    codes[:, column] = MISSING
    masked = split.masked.with_codes(codes)
    imputer = BeagleImputer(BeagleOptions(include_val=True, sporadic="hard"))
    ctx = RunContext(work_dir=tmp_path, threads=1, seed=3)
    imputer.fit(split.panel, split.val, ctx)
    result = check_imputation("beagle", imputer.impute(masked, ctx), masked)
    assert result.covered[column] and result.probs is not None
    np.testing.assert_allclose(result.probs.sum(axis=-1), 1.0, atol=1e-5)
    # The imputed column's dosage is Beagle's DS: close to the truth for most samples.
    error = np.abs(result.dosage[:, column] - code_dosage(split.truth.codes[:, column]))
    assert np.mean(error < 0.5) >= 0.8
    info = imputer.manifest_info()
    assert info["runs"][-1]["imputed_from_panel"] == 1 and info["panel"]["n_samples"] == 130


def test_external_panel_partial_overlap_marks_uncovered(split, tmp_path):
    keep = np.arange(split.panel.n_variants) % 3 != 0
    panel_path = write_vcf(split.panel.take_variants(keep), tmp_path / "ext.vcf.gz")
    imputer = BeagleImputer(BeagleOptions(ref=str(panel_path), sporadic="hard"))
    result, _ = fit_impute(imputer, split, tmp_path / "work")
    np.testing.assert_array_equal(result.covered, keep)
    info = imputer.manifest_info()
    assert info["uncovered_markers"] == int((~keep).sum())
    assert info["panel"] == {"kind": "external", "path": str(panel_path), "n_samples": 120}
    observed = ~split.mask
    np.testing.assert_array_equal(result.calls[observed], split.truth.codes[observed])
    r2 = masked_dosage_r2(split.truth.codes, result.dosage, split.mask & keep[None, :])
    assert r2 > 0.85


def test_card_ref_is_used_when_no_option(split, tmp_path):
    panel_path = write_vcf(split.panel, tmp_path / "card.vcf.gz")
    imputer = BeagleImputer(BeagleOptions(sporadic="hard"))
    result, _ = fit_impute(imputer, split, tmp_path / "work", card_options={"ref": str(panel_path)})
    assert imputer.manifest_info()["panel"]["path"] == str(panel_path)
    assert result.covered.all()


def test_leakage_internal_panel_refused(split, tmp_path):
    leaky = split.panel.take_samples(np.arange(100))
    leaky = dataclasses.replace(
        leaky,
        codes=np.concatenate([leaky.codes, split.truth.codes[:2]]),
        sample_ids=np.concatenate([leaky.sample_ids, split.truth.sample_ids[:2]]),
        cohort=np.concatenate([leaky.cohort, split.truth.cohort[:2]]),
        sex=np.concatenate([leaky.sex, split.truth.sex[:2]]),
    )
    imputer = BeagleImputer()
    ctx = RunContext(work_dir=tmp_path, threads=1)
    imputer.fit(leaky, None, ctx)
    with pytest.raises(ImpbenchError, match=r"contains 2 of the target's samples \(s0130, s0131\).*leakage"):
        imputer.impute(split.masked, ctx)


def test_leakage_external_panel_refused(split, tmp_path):
    with_test_sample = split.panel.take_samples(np.arange(10))
    with_test_sample.sample_ids[3] = split.truth.sample_ids[5]
    panel_path = write_vcf(with_test_sample, tmp_path / "leaky.vcf.gz")
    imputer = BeagleImputer(BeagleOptions(ref=str(panel_path)))
    ctx = RunContext(work_dir=tmp_path / "w", threads=1)
    imputer.fit(split.panel, None, ctx)
    with pytest.raises(ImpbenchError) as info:
        imputer.impute(split.masked, ctx)
    assert "leakage" in str(info.value) and "s0135" in str(info.value) and "\n" not in str(info.value)


def test_external_panel_on_another_contig_refused(split, tmp_path):
    other = dataclasses.replace(split.panel, contig="21")
    panel_path = write_vcf(other, tmp_path / "chr21.vcf.gz")
    imputer = BeagleImputer(BeagleOptions(ref=str(panel_path)))
    with pytest.raises(ImpbenchError, match=r"has no contig '22' \(it has 21\)"):
        imputer.fit(split.panel, None, RunContext(work_dir=tmp_path / "w"))


def test_external_panel_without_overlapping_markers_refused(split, tmp_path):
    other_build = dataclasses.replace(split.panel, positions=split.panel.positions + 5_000_000)
    panel_path = write_vcf(other_build, tmp_path / "build.vcf.gz")
    imputer = BeagleImputer(BeagleOptions(ref=str(panel_path)))
    ctx = RunContext(work_dir=tmp_path / "w", threads=1)
    with pytest.raises(ImpbenchError, match=r"shares no marker with the dataset.*genome build"):
        imputer.fit(split.panel, None, ctx)
    # Same positions, other alleles: no marker matches either.
    other_alleles = dataclasses.replace(split.panel, alt=np.full(split.panel.n_variants, "T", dtype=object))
    panel_path = write_vcf(other_alleles, tmp_path / "alleles.vcf.gz", index=False)
    with pytest.raises(ImpbenchError, match=r"shares no marker with the dataset"):
        BeagleImputer(BeagleOptions(ref=str(panel_path))).fit(split.panel, None, ctx)


def test_external_panel_bad_paths(split, tmp_path):
    ctx = RunContext(work_dir=tmp_path / "w")
    with pytest.raises(ImpbenchError, match="no such file"):
        BeagleImputer(BeagleOptions(ref=str(tmp_path / "absent.vcf.gz"))).fit(split.panel, None, ctx)
    bref = tmp_path / "panel.bref3"
    bref.write_bytes(b"x")
    with pytest.raises(ImpbenchError, match="bref3"):
        BeagleImputer(BeagleOptions(ref=str(bref))).fit(split.panel, None, ctx)
    panel_path = write_vcf(split.panel, tmp_path / "p.vcf.gz")
    with pytest.raises(ImpbenchError, match="include_val.*cannot be combined"):
        BeagleImputer(BeagleOptions(ref=str(panel_path), include_val=True)).fit(split.panel, split.val, ctx)
    with pytest.raises(ImpbenchError, match="beagle.map=.*no such file"):
        BeagleImputer(BeagleOptions(map=str(tmp_path / "absent.map"))).fit(split.panel, None, ctx)


def test_unwritable_work_folder(split, tmp_path):
    ctx = RunContext(work_dir=tmp_path / "w")
    (tmp_path / "w").rmdir()
    (tmp_path / "w").write_text("a file where the folder should be")
    with pytest.raises(ImpbenchError, match=r"work folder .*w is not writable"):
        BeagleImputer().fit(split.panel, None, ctx)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_work_folder(split, tmp_path):
    ctx = RunContext(work_dir=tmp_path / "ro")
    (tmp_path / "ro").chmod(0o500)
    try:
        with pytest.raises(ImpbenchError, match=r"work folder .*ro is not writable"):
            BeagleImputer().fit(split.panel, None, ctx)
    finally:
        (tmp_path / "ro").chmod(0o700)


def test_map_and_phasing_only(split, tmp_path):
    plink_map = tmp_path / "chr22.map"
    cm = split.panel.positions * 1.3e-6  # 1.3 cM per Mb
    plink_map.write_text("".join(f"22\t.\t{c:.6f}\t{p}\n" for c, p in zip(cm, split.panel.positions)))
    imputer = BeagleImputer(BeagleOptions(map=str(plink_map), impute=False, ne=20000, window=30))
    result, _ = fit_impute(imputer, split, tmp_path / "w")
    info = imputer.manifest_info()
    assert info["map"] == str(plink_map)
    assert info["runs"][-1]["imputed_from_panel"] == 0
    assert masked_dosage_r2(split.truth.codes, result.dosage, split.mask) > 0.9


def test_paths_with_spaces(split, tmp_path):
    # Debian's beagle wrapper passes its arguments unquoted: files are given by plain names.
    folder = tmp_path / "my data"
    folder.mkdir()
    panel_path = write_vcf(split.panel, folder / "panel 1.vcf.gz")
    plink_map = folder / "chr 22.map"
    plink_map.write_text("".join(f"22\t.\t{p * 1e-6:.6f}\t{p}\n" for p in split.panel.positions))
    imputer = BeagleImputer(BeagleOptions(ref=str(panel_path), map=str(plink_map), sporadic="hard"))
    result, _ = fit_impute(imputer, split, tmp_path / "run 1" / "beagle")
    assert result.covered.all()
    assert masked_dosage_r2(split.truth.codes, result.dosage, split.mask) > 0.9


def test_beagle_failure_quotes_its_log(split, tmp_path):
    # window shorter than Beagle's overlap: Beagle itself refuses the arguments.
    imputer = BeagleImputer(BeagleOptions(window=0.5, sporadic="hard"))
    ctx = RunContext(work_dir=tmp_path / "w", threads=1)
    imputer.fit(split.panel, None, ctx)
    with pytest.raises(ImpbenchError) as info:
        imputer.impute(split.masked, ctx)
    message = str(info.value)
    assert message.startswith("beagle failed") and "out.console.txt" in message and "\n" not in message
    print(message)
