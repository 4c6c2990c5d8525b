"""Reliability tables, ECE and estimated DR2 against cell-by-cell references."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import impbench.scoring.calibration as calibration
from impbench.scoring.calibration import (
    estimated_variant_dr2,
    expected_calibration_error,
    pool_reliability,
    quality_correlation,
    reliability_table,
)
from impbench.imputers.base import Imputation

CLASS = {1: 0, 2: 1, 3: 1, 4: 2}


def case(seed, n_samples=12, n_variants=8):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(4, 0.5), size=(n_samples, n_variants)).astype(np.float32)
    target = np.zeros((n_samples, n_variants), dtype=np.uint8)
    truth = rng.integers(1, 5, size=target.shape).astype(np.uint8)
    mask = rng.random(target.shape) < 0.6
    target[~mask] = truth[~mask]
    covered = rng.random(n_variants) < 0.8
    imputation = Imputation.from_probs(probs, target, covered=covered)
    return truth, imputation, mask


def slow_reliability(truth, imputation, mask, n_bins):
    rows = [[0, 0.0, 0] for _ in range(n_bins)]
    for i in range(truth.shape[0]):
        for j in range(truth.shape[1]):
            if not (mask[i, j] and imputation.covered[j]):
                continue
            p = [float(v) for v in imputation.probs[i, j]]
            called = CLASS[int(imputation.calls[i, j])]
            confidence = [p[0], p[1] + p[2], p[3]][called]
            b = min(int(confidence * n_bins), n_bins - 1)
            rows[b][0] += 1
            rows[b][1] += confidence
            rows[b][2] += called == CLASS[int(truth[i, j])]
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reliability_table_matches_cell_loop(seed, monkeypatch):
    monkeypatch.setattr(calibration, "BLOCK_CELLS", 7)  # many blocks
    truth, imputation, mask = case(seed)
    table = reliability_table(truth, imputation, mask, n_bins=10)
    expected = slow_reliability(truth, imputation, mask, 10)
    assert table["n_genotypes"].tolist() == [r[0] for r in expected]
    assert table["n_concordant"].tolist() == [r[2] for r in expected]
    np.testing.assert_allclose(table["sum_confidence"], [r[1] for r in expected], rtol=1e-6)
    n, correct, conf = (np.array([r[k] for r in expected], float) for k in (0, 2, 1))
    with np.errstate(invalid="ignore"):
        ece = np.nansum(n * np.abs(correct / n - conf / n)) / n.sum()
    assert expected_calibration_error(table) == pytest.approx(ece, rel=1e-6)
    # two replicates pool by summing counts
    pooled = pool_reliability([table, table])
    assert (pooled["n_genotypes"] == 2 * table["n_genotypes"]).all()
    assert expected_calibration_error(pooled) == pytest.approx(expected_calibration_error(table))


def test_ece_hand_example_and_no_probabilities():
    table = pd.DataFrame({"bin_lo": [0.5, 0.9], "bin_hi": [0.6, 1.0], "n_genotypes": [10, 30],
                          "sum_confidence": [5.5, 28.5], "n_concordant": [8, 27]})  # fmt: skip
    table = calibration._finish_reliability(table)
    # |0.8 - 0.55| * 10/40 + |0.9 - 0.95| * 30/40 = 0.0625 + 0.0375
    assert expected_calibration_error(table) == pytest.approx(0.1)
    truth, imputation, mask = case(3)
    imputation.probs = None
    assert reliability_table(truth, imputation, mask) is None
    assert np.isnan(estimated_variant_dr2(imputation, mask)).all()


def test_calibrated_probabilities_have_small_ece():
    rng = np.random.default_rng(7)
    n = 20_000
    probs = rng.dirichlet(np.ones(4), size=(1, n)).astype(np.float32)
    truth = (1 + (rng.random((1, n, 1)) > np.cumsum(probs, axis=-1)[..., :3]).sum(-1)).astype(np.uint8)
    imputation = Imputation.from_probs(probs, np.zeros((1, n), np.uint8))
    table = reliability_table(truth, imputation, np.ones((1, n), bool))
    assert expected_calibration_error(table) < 0.03
    # overconfident: claim certainty for the same calls
    sure = Imputation(calls=imputation.calls, dosage=imputation.dosage,
                      probs=np.eye(4, dtype=np.float32)[imputation.calls - 1])  # fmt: skip
    assert expected_calibration_error(reliability_table(truth, sure, np.ones((1, n), bool))) > 0.2


def slow_dr2(imputation, mask, j):
    ds, es = [], []
    for i in range(mask.shape[0]):
        if mask[i, j] and imputation.covered[j]:
            p = [float(v) for v in imputation.probs[i, j]]
            ds.append(p[1] + p[2] + 2 * p[3])
            es.append(p[1] + p[2] + 4 * p[3])
    if not ds:
        return math.nan
    n = len(ds)
    num = max(sum(d * d for d in ds) - sum(ds) ** 2 / n, 0.0)
    den = sum(es) - sum(ds) ** 2 / n
    return 0.0 if den <= 1e-12 * n else min(max(num / den, 0.0), 1.0)


@pytest.mark.parametrize("seed", [0, 4])
def test_estimated_dr2_uses_scored_cells_only(seed):
    truth, imputation, mask = case(seed)
    got = estimated_variant_dr2(imputation, mask)
    expected = [slow_dr2(imputation, mask, j) for j in range(mask.shape[1])]
    for a, b in zip(got, expected):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-6, abs=1e-9)


def test_dr2_of_a_constant_answer_is_zero_not_one():
    # one-hot, identical at every masked cell of a variant (the `major` baseline): no information
    n, m = 30, 4
    target = np.full((n, m), 2, dtype=np.uint8)
    mask = np.zeros((n, m), bool)
    mask[::3] = True
    target[mask] = 0
    probs = np.broadcast_to(np.array([1, 0, 0, 0], np.float32), (n, m, 4))
    imputation = Imputation.from_probs(probs, target)
    assert (estimated_variant_dr2(imputation, mask) == 0).all()


def test_quality_correlation():
    rng = np.random.default_rng(1)
    true_r2 = rng.random(200)
    estimated = np.clip(true_r2 + rng.normal(0, 0.05, 200), 0, 1)
    true_r2[:5] = np.nan
    reported = np.full(200, np.nan)
    reported[:100] = true_r2[:100] ** 2
    table = quality_correlation(true_r2, estimated, reported).set_index("source")
    assert table.loc["estimated", "n_variants"] == 195 and table.loc["reported", "n_variants"] == 95
    assert table.loc["estimated", "pearson_r"] > 0.95
    assert table.loc["reported", "spearman_r"] == pytest.approx(1.0)
    assert list(quality_correlation(true_r2, estimated)["source"]) == ["estimated"]
