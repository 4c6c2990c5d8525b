"""Soft dosages under sporadic masking (``sporadic=soft``; the default is hard): each test sample is
imputed by a Beagle run whose target VCF leaves out its masked markers, so every masked cell
gets Beagle's DS and GP; ``sporadic=hard`` keeps the one-run behaviour (hard calls)."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest

from impbench.bench.masking import apply_mask, make_mask
from impbench.data.simulate import simulate_matrix
from impbench.errors import ImpbenchError
from impbench.genotypes import CALL_DOSAGE, MISSING, code_dosage
from impbench.imputers.base import RunContext, check_imputation
from impbench_beagle import BeagleImputer, BeagleOptions
from impbench_beagle.groups import SampleGroup, merge_group_outputs, plan_sample_groups
from impbench_beagle.output import BeagleOutput, assemble_imputation
from impbench_beagle.parallel import share_threads

N_TARGET = 8
RATE = 0.25


@dataclasses.dataclass
class Data:
    panel: object
    truth: object
    target: object
    mask: np.ndarray


@pytest.fixture(scope="module")
def data() -> Data:
    """128 simulated samples over 300 kb (~1,000 variants): 120 panel, 8 target, 25% of the
    target's cells masked uniformly (the harness's ``uniform`` scheme)."""
    full = simulate_matrix(n_samples=120 + N_TARGET, sequence_length=300_000, seed=7)
    panel, truth = full.take_samples(np.arange(120)), full.take_samples(np.arange(120, 120 + N_TARGET))
    mask = make_mask(truth.codes, RATE, 5, "uniform")
    return Data(panel, truth, truth.with_codes(apply_mask(truth.codes, mask)), mask)


def impute(data: Data, work_dir: Path, **options):
    imputer = BeagleImputer(BeagleOptions(timeout=300, **options))
    ctx = RunContext(work_dir=work_dir, threads=2, seed=3)
    imputer.fit(data.panel, None, ctx)
    return imputer, check_imputation("beagle", imputer.impute(data.target, ctx), data.target)


@pytest.fixture(scope="module")
def soft(data, tmp_path_factory):
    return impute(data, tmp_path_factory.mktemp("soft"), keep_vcfs=True, sporadic="soft")


def r2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.asarray(a, np.float64), np.asarray(b, np.float64))[0, 1] ** 2)


@pytest.mark.beagle
def test_soft_masked_dosage_is_fractional_where_beagle_is_unsure(data, soft):
    imputer, result = soft
    mask = data.mask
    assert result.probs is not None
    probs = result.probs[mask]
    ds = result.dosage[mask]
    class_probs = np.stack([probs[:, 0], probs[:, 1] + probs[:, 2], probs[:, 3]], axis=1)
    unsure = class_probs.max(axis=1) < 0.9
    assert unsure.sum() >= 10, unsure.sum()  # Beagle is unsure somewhere, so the check says something
    assert np.all(np.abs(ds[unsure] - np.round(ds[unsure])) > 0.01)
    np.testing.assert_allclose(ds, probs @ CALL_DOSAGE, atol=0.03)  # DS and AP1/AP2 agree (2 decimals)
    true = code_dosage(data.truth.codes)[mask]
    dosage_r2, gt_r2 = r2(true, ds), r2(true, code_dosage(result.calls)[mask])
    print(f"masked cells: dosage R2 {dosage_r2:.4f}, GT r2 {gt_r2:.4f}, {unsure.mean():.3%} unsure")
    assert dosage_r2 >= gt_r2 and dosage_r2 > 0.85
    observed = ~mask
    np.testing.assert_array_equal(result.calls[observed], data.target.codes[observed])
    np.testing.assert_array_equal(result.dosage[observed], code_dosage(data.target.codes)[observed])
    run = imputer.manifest_info()["runs"][-1]
    assert run["sporadic"] == "soft" and run["beagle_runs"] == N_TARGET and run["run_jobs"] == 2
    assert run["masked_cells_soft"] == int(mask.sum()) and run["masked_cells_hard"] == 0
    assert imputer.manifest_info()["dosages"].startswith("soft") and imputer.manifest_info()["soft_dosages"] is True
    hidden = mask.any(axis=0)
    assert np.isfinite(result.quality[hidden]).all() and (result.quality[hidden] <= 1).all()


@pytest.mark.beagle
def test_each_sample_is_imputed_without_its_masked_markers(data, soft):
    imputer, _ = soft
    run_dir = Path(imputer.manifest_info()["runs"][-1]["run_dir"])
    for i in range(N_TARGET):
        with gzip.open(run_dir / f"target-g{i:04d}.vcf.gz", "rt") as f:
            lines = [line.rstrip("\n").split("\t") for line in f if not line.startswith("##")]
        assert lines[0][9:] == [data.target.sample_ids[i]]
        positions = np.array([int(fields[1]) for fields in lines[1:]])
        np.testing.assert_array_equal(positions, data.target.positions[~data.mask[i]])
        assert (run_dir / f"g{i:04d}.log").is_file()


@pytest.mark.beagle
def test_hard_mode_is_one_run_with_hard_calls(data, soft, tmp_path):
    imputer, result = impute(data, tmp_path, sporadic="hard")
    mask = data.mask
    ds = result.dosage[mask]
    np.testing.assert_array_equal(ds, np.round(ds))  # Beagle filled them while phasing
    run = imputer.manifest_info()["runs"][-1]
    assert run["beagle_runs"] == 1 and run["masked_cells_hard"] == int(mask.sum()) and run["masked_cells_soft"] == 0
    assert imputer.manifest_info()["dosages"].startswith("hard") and imputer.manifest_info()["soft_dosages"] is False
    true = code_dosage(data.truth.codes)[mask]
    print(f"hard: dosage R2 {r2(true, ds):.4f}; soft: {r2(true, soft[1].dosage[mask]):.4f}")


def test_groups_are_samples_with_the_same_masked_markers():
    codes = np.full((5, 6), 1, dtype=np.uint8)
    for row in (0, 1, 4):
        codes[row, [1, 3]] = MISSING
    codes[2, 2] = MISSING  # sample 3 is fully observed
    groups = plan_sample_groups(codes)
    assert [g.samples.tolist() for g in groups] == [[0, 1, 4], [2], [3]]
    assert [g.index for g in groups] == [0, 1, 2]
    np.testing.assert_array_equal(groups[0].written, [True, False, True, False, True, True])
    np.testing.assert_array_equal(groups[1].written, [True, True, False, True, True, True])
    assert groups[2].written.all()
    codes[:, 4] = MISSING  # masked in every sample: left out of every group's target
    assert all(not g.written[4] for g in plan_sample_groups(codes))
    array_like = np.ones((4, 6), dtype=np.uint8)
    array_like[:, [0, 5]] = MISSING
    (group,) = plan_sample_groups(array_like)  # the array scheme: one group, one Beagle run
    assert group.samples.tolist() == [0, 1, 2, 3]


def test_merged_groups_keep_each_samples_probabilities():
    target = simulate_matrix(n_samples=3, sequence_length=50_000, seed=2).take_variants(np.arange(4))
    codes = target.codes.copy()
    codes[0, 1] = codes[1, 2] = codes[2, 1] = MISSING
    codes[1, 1] = MISSING  # kept in sample 1's target (as in hard mode): filled while phasing, no AP
    target = target.with_codes(codes)
    groups = [SampleGroup(0, np.array([0, 2]), np.array([True, False, True, True])),
              SampleGroup(1, np.array([1]), np.array([True, True, False, True]))]
    covered = np.ones(4, dtype=bool)
    out0 = BeagleOutput(covered=covered, calls=np.full((2, 4), 2, np.uint8), ds=np.full((2, 4), 1.0, np.float32),
                        allele_probs={1: np.array([[0.1, 0.2], [0.7, 0.9]], np.float32)},
                        dr2=np.ones(4, np.float32), imputed=np.array([False, True, False, False]))
    out1 = BeagleOutput(covered=covered, calls=np.full((1, 4), 4, np.uint8), ds=np.full((1, 4), 1.5, np.float32),
                        allele_probs={2: np.array([[0.6, 0.9]], np.float32)},
                        dr2=np.ones(4, np.float32), imputed=np.array([False, False, True, False]))
    merged = merge_group_outputs(target, list(zip(groups, [out0, out1])))
    assert np.isnan(merged.allele_probs[1][1]).all() and np.isnan(merged.allele_probs[2][[0, 2]]).all()
    assert np.isnan(merged.dr2).all()  # several groups: each group's DR2 is not the variant's
    np.testing.assert_array_equal(merged.imputed, [False, True, True, False])
    result = assemble_imputation(target, merged)
    np.testing.assert_allclose(result.probs[0, 1], [0.72, 0.18, 0.08, 0.02], atol=1e-6)
    np.testing.assert_allclose(result.probs[2, 1], [0.03, 0.27, 0.07, 0.63], atol=1e-6)
    np.testing.assert_allclose(result.probs[1, 2], [0.04, 0.36, 0.06, 0.54], atol=1e-6)
    np.testing.assert_array_equal(result.probs[1, 1], [0, 0, 0, 1])  # no AP for it: one-hot of its call (1|1)
    np.testing.assert_allclose(result.probs.sum(axis=-1), 1.0, atol=1e-6)
    observed = codes != MISSING
    np.testing.assert_array_equal(result.calls[observed], codes[observed])
    np.testing.assert_allclose(result.dosage[[0, 2, 1], [1, 1, 2]], [1.0, 1.0, 1.5])


def test_sporadic_options_checked(tmp_path):
    target = simulate_matrix(n_samples=4, sequence_length=10_000, seed=1)
    ctx = RunContext(work_dir=tmp_path, threads=1, seed=1)
    for options, words in [(BeagleOptions(sporadic="fuzzy"), "sporadic='fuzzy': must be one of soft, hard"),
                           (BeagleOptions(sample_jobs=0), "sample_jobs=0: must be >= 1")]:
        with pytest.raises(ImpbenchError, match=words):
            BeagleImputer(options).fit(target, None, ctx)


def test_threads_are_shared_among_runs():
    assert share_threads(8, 30, None) == (8, 1)
    assert share_threads(8, 2, None) == (2, 4)
    assert share_threads(8, 30, 3) == (3, 2)
    assert share_threads(1, 30, None) == (1, 1)


@pytest.mark.beagle
def test_fully_masked_sample_is_one_line(data, tmp_path):
    codes = data.target.codes.copy()
    codes[1] = MISSING
    imputer = BeagleImputer(BeagleOptions(sporadic="soft"))
    ctx = RunContext(work_dir=tmp_path, threads=1)
    imputer.fit(data.panel, None, ctx)
    with pytest.raises(ImpbenchError) as info:
        imputer.impute(data.target.with_codes(codes), ctx)
    assert "has no observed genotype" in str(info.value) and "sporadic=hard" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.beagle
@pytest.mark.slow
def test_soft_by_region_agrees_with_soft_whole(data, soft, tmp_path):
    """Soft mode with regions (3 samples x 2 windows): the same DS within Beagle's noise."""
    few = Data(data.panel, data.truth.take_samples(np.arange(3)), data.target.take_samples(np.arange(3)),
               data.mask[:3])
    imputer, result = impute(few, tmp_path, chunk_mb=0.15, overlap_mb=0.075)
    run = imputer.manifest_info()["runs"][-1]
    assert run["beagle_runs"] == 3 and run["regions"] == 6
    mask = few.mask
    whole = soft[1].dosage[:3][mask]
    assert np.mean(np.abs(result.dosage[mask] - whole) < 0.1) > 0.97
    assert run["masked_cells_soft"] == int(mask.sum())
