"""Metrics: the vectorised ``score`` against a slow, plainly written reference, and known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import impbench.scoring.metrics as metrics_module
from impbench.errors import ImpbenchError
from impbench.imputers.base import Imputation
from impbench.scoring.metrics import (
    DEFAULT_BIN_EDGES,
    PAPER_METRICS,
    PROTOCOLS,
    STANDARD_METRICS,
    bin_labels,
    maf_bins,
    score,
)

from impbench.testing.reference_metrics import ref_score, same


def check_against_reference(truth, calls, dosage, covered, mask, alt_freq, protocol, edges=DEFAULT_BIN_EDGES, min_cells=5):
    imputation = Imputation(calls=calls, dosage=dosage, covered=covered)
    scores = score(truth, imputation, mask, train_alt_freq=alt_freq, protocol=protocol, bin_edges=edges,
                   min_variant_cells=min_cells)  # fmt: skip
    expected, per_sample, confusion, variant_r2 = ref_score(truth, calls, dosage, covered, mask, alt_freq, protocol, edges, min_cells)
    names = STANDARD_METRICS if protocol == "standard" else PAPER_METRICS
    table = scores.metrics
    assert len(table) == (len(edges)) * len(names)  # bins + overall
    assert (table["protocol"] == protocol).all()
    for row in table.itertuples(index=False):
        value, n_var, n_gen = expected[(row.bin, row.metric)]
        assert same(row.value, value), (row.bin, row.metric, row.value, value)
        assert row.n_variants == n_var and row.n_genotypes == n_gen, (row.bin, row.metric)
    if protocol == "standard":
        assert len(scores.per_sample) == truth.shape[0]
        for row, (r2, n) in zip(scores.per_sample.itertuples(index=False), per_sample):
            assert same(row.r2, r2), (row.sample_index, row.r2, r2)
            assert row.n_genotypes == n
        assert all(same(a, b) for a, b in zip(scores.variant_r2, variant_r2))
    else:
        assert len(scores.per_sample) == 0
    got_confusion = {(r.kind, r.truth, r.pred): r.count for r in scores.confusion.itertuples(index=False)}
    assert got_confusion == confusion
    return scores


# --------------------------------------------------------------------------- hypothesis


@st.composite
def scoring_cases(draw):
    n_samples = draw(st.integers(1, 10))
    n_variants = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # per-variant ALT frequency, with some monomorphic variants
    freq = rng.choice([0.0, 0.02, 0.2, 0.5, 0.9, 1.0], size=n_variants)
    a0 = rng.random((n_samples, n_variants)) < freq
    a1 = rng.random((n_samples, n_variants)) < freq
    truth = (1 + a1 + 2 * a0).astype(np.uint8)
    error_rate = draw(st.sampled_from([0.0, 0.1, 0.5]))
    calls = truth.copy()
    wrong = rng.random(truth.shape) < error_rate
    calls[wrong] = rng.integers(1, 5, size=int(wrong.sum()), dtype=np.uint8)
    dosage_kind = draw(st.sampled_from(["calls", "continuous", "few values", "constant"]))
    if dosage_kind == "calls":
        dosage = np.array([np.nan, 0, 1, 1, 2], dtype=np.float32)[calls]
    elif dosage_kind == "continuous":
        dosage = (rng.random(truth.shape) * 2).astype(np.float32)
    elif dosage_kind == "few values":
        dosage = rng.choice(np.array([0.0, 0.1, 1.0, 1.9000001], dtype=np.float32), size=truth.shape)
    else:
        dosage = np.full(truth.shape, 0.1, dtype=np.float32)
    mask_rate = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    mask = rng.random(truth.shape) < mask_rate
    covered = rng.random(n_variants) < draw(st.sampled_from([1.0, 0.7]))
    # training ALT frequencies on both sides of 0.5 (flipped above it), bin edges, NaN
    alt_freq = rng.choice(
        np.array([0.0, 0.003, 0.005, 0.02, 0.1, 0.25, 0.49, 0.5, 0.51, 0.75, 0.98, 0.997, 1.0, np.nan]), size=n_variants
    )
    edges = draw(st.sampled_from([DEFAULT_BIN_EDGES, (0, 0.05, 0.5), (0.01, 0.2, 0.4)]))
    block_cells = draw(st.sampled_from([1 << 22, 7, 1]))  # 1 and 7 force many row blocks
    min_cells = draw(st.sampled_from([2, 3, 5]))
    return truth, calls, dosage, covered, mask, alt_freq, edges, block_cells, min_cells


@settings(max_examples=150, deadline=None)
@given(scoring_cases(), st.sampled_from(PROTOCOLS))
def test_score_matches_slow_reference(case, protocol):
    truth, calls, dosage, covered, mask, alt_freq, edges, block_cells, min_cells = case
    saved = metrics_module.BLOCK_CELLS
    metrics_module.BLOCK_CELLS = block_cells
    try:
        check_against_reference(truth, calls, dosage, covered, mask, alt_freq, protocol, edges, min_cells)
    finally:
        metrics_module.BLOCK_CELLS = saved


# --------------------------------------------------------------------------- labels and bins


def test_bin_labels_default():
    assert bin_labels(DEFAULT_BIN_EDGES) == ["<0.5%", "0.5–1%", "1–5%", "5–10%", "10–20%", "20–30%", "30–40%", "40–50%"]
    assert bin_labels((0.001, 0.01, 0.5)) == ["0.1–1%", "1–50%"]


def test_maf_bins_edges_closed_last_nan():
    maf = np.array([0.0, 0.0049, 0.005, 0.0099, 0.01, 0.3, 0.4999, 0.5, np.nan, 0.6, -0.1])
    assert maf_bins(maf, DEFAULT_BIN_EDGES).tolist() == [0, 0, 1, 1, 2, 6, 7, 7, -1, -1, -1]
    assert maf_bins(np.array([0.0, 0.01, 0.5]), (0.01, 0.5)).tolist() == [-1, 0, 0]


@pytest.mark.parametrize("edges", [(0.1,), (0.2, 0.1), (0, 0.6), (-0.1, 0.5), (0, float("nan")), ("a", "b")])
def test_bad_bin_edges(edges):
    with pytest.raises(ImpbenchError):
        bin_labels(edges)


# --------------------------------------------------------------------------- known values


def polymorphic_case(seed=0, n_samples=40, n_variants=30):
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.1, 0.5, size=n_variants)
    a0 = rng.random((n_samples, n_variants)) < freq
    a1 = rng.random((n_samples, n_variants)) < freq
    truth = (1 + a1 + 2 * a0).astype(np.uint8)
    maf = np.minimum(freq, 1 - freq)
    return truth, maf, rng


def test_perfect_imputation_scores_one():
    truth, maf, rng = polymorphic_case()
    mask = rng.random(truth.shape) < 0.5
    dosage = np.array([np.nan, 0, 1, 1, 2], dtype=np.float32)[truth]
    scores = score(truth, Imputation(calls=truth.copy(), dosage=dosage), mask, train_alt_freq=maf)
    overall = scores.metrics[scores.metrics["bin"] == "overall"].set_index("metric")["value"]
    for name in ("r2", "concordance", "precision", "recall", "f1", "iqs", "phased_accuracy", "coverage"):
        assert overall[name] == pytest.approx(1.0), name
    assert overall["nrd"] == 0.0
    assert overall["mean_variant_r2"] == pytest.approx(1.0)
    populated = scores.metrics[scores.metrics["n_genotypes"] > 0]
    for name in ("concordance", "f1", "phased_accuracy"):
        assert (populated.loc[populated["metric"] == name, "value"] == 1.0).all()
    assert np.allclose(scores.per_sample["r2"], 1.0)
    paper = score(truth, Imputation(calls=truth.copy(), dosage=dosage), mask, train_alt_freq=maf, protocol="paper")
    overall = paper.metrics[paper.metrics["bin"] == "overall"].set_index("metric")["value"]
    for name in PAPER_METRICS:
        assert overall[name] == pytest.approx(1.0), name


def cells_from_table(table, truth_codes, call_codes):
    """Lists of (truth code, call code) with ``table[t][c]`` copies of each pair."""
    pairs = []
    for t, row in enumerate(table):
        for c, count in enumerate(row):
            pairs += [(truth_codes[t], call_codes[c])] * count
    return pairs


def test_hand_worked_3x3_example():
    # Dosage-class table (rows truth 0/1/2, columns call 0/1/2), N = 15:
    #     [[5, 2, 0],
    #      [1, 3, 1],
    #      [0, 1, 2]]
    # truth totals t = (7, 5, 3), call totals p = (6, 6, 3), trace = 10.
    # concordance = 10/15
    # precision per class = 5/6, 3/6, 2/3 -> macro (5/6 + 1/2 + 2/3)/3 = 2/3
    # recall per class    = 5/7, 3/5, 2/3 -> macro (5/7 + 3/5 + 2/3)/3
    # F1 per class = 2TP/(t+p) = 10/13, 6/11, 4/6 -> macro (10/13 + 6/11 + 2/3)/3
    # IQS: Po = 10/15, Pc = (7*6 + 5*6 + 3*3)/15^2 = 81/225 -> (150 - 81)/(225 - 81) = 69/144
    # NRD = discordant / (N - both hom-ref) = 5 / (15 - 5) = 1/2
    # dosage R² with dosage = call class: n=15, Sx=11, Sy=12, Sxx=17, Syy=18, Sxy=15
    #   n*Sxy - Sx*Sy = 225 - 132 = 93; n*Sxx - Sx^2 = 255 - 121 = 134; n*Syy - Sy^2 = 270 - 144 = 126
    #   r2 = 93^2 / (134 * 126) = 8649 / 16884
    # Hets: truth het is code 2; one of the three correct het calls is the phase swap 3,
    # so phased accuracy = (10 - 1)/15 = 9/15 while concordance stays 10/15.
    pairs = cells_from_table([[5, 2, 0], [1, 3, 1], [0, 1, 2]], truth_codes=(1, 2, 4), call_codes=(1, 2, 4))
    swap = pairs.index((2, 2))
    pairs[swap] = (2, 3)
    truth = np.array([[t for t, _ in pairs]], dtype=np.uint8)
    calls = np.array([[c for _, c in pairs]], dtype=np.uint8)
    dosage = np.array([np.nan, 0, 1, 1, 2], dtype=np.float32)[calls]
    mask = np.ones_like(truth, dtype=bool)
    maf = np.full(truth.shape[1], 0.3)  # one bin, 30–40%
    scores = score(truth, Imputation(calls=calls, dosage=dosage), mask, train_alt_freq=maf)
    overall = scores.metrics[scores.metrics["bin"] == "overall"].set_index("metric")["value"]
    assert overall["concordance"] == pytest.approx(10 / 15)
    assert overall["precision"] == pytest.approx(2 / 3)
    assert overall["recall"] == pytest.approx((5 / 7 + 3 / 5 + 2 / 3) / 3)
    assert overall["f1"] == pytest.approx((10 / 13 + 6 / 11 + 2 / 3) / 3)
    assert overall["iqs"] == pytest.approx(69 / 144)
    assert overall["nrd"] == pytest.approx(1 / 2)
    assert overall["r2"] == pytest.approx(8649 / 16884)
    assert overall["phased_accuracy"] == pytest.approx(9 / 15)
    in_bin = scores.metrics[scores.metrics["bin"] == "30–40%"].set_index("metric")
    assert in_bin.loc["iqs", "value"] == pytest.approx(69 / 144)
    assert (in_bin["n_genotypes"] == 15).all() and (in_bin["n_variants"] == 15).all()
    dosage_table = scores.confusion[scores.confusion["kind"] == "dosage"]
    assert dosage_table["count"].tolist() == [5, 2, 0, 1, 3, 1, 0, 1, 2]
    phased = scores.confusion[scores.confusion["kind"] == "phased"].set_index(["truth", "pred"])["count"]
    assert phased[(2, 3)] == 1 and phased[(2, 2)] == 2


def test_paper_protocol_hand_example():
    # 2 samples x 3 variants, every cell scored whatever the mask:
    # truth codes [1, 2, 3 / 4, 1, 2], calls [1, 3, 3 / 4, 1, 1]
    # accuracy: cells 0, 2, 3, 4 agree -> 4/6
    # truth totals per code 1..4 = (2, 2, 1, 1); call totals = (3, 0, 2, 1); TP = (2, 0, 1, 1)
    # precision = 2/3, 0 (never called), 1/2, 1 -> macro 13/24
    # recall    = 1, 0, 1, 1 -> 3/4
    # F1 = 2TP/(t+p) = 4/5, 0, 2/3, 1 -> macro (4/5 + 2/3 + 1)/4 = 37/60
    # r2 on codes - 1: x = (0,1,2,3,0,1), y = (0,2,2,3,0,0): Sx = Sy = 7, Sxx = 15, Syy = 17, Sxy = 15
    #   n*Sxy - Sx*Sy = 90 - 49 = 41, n*Sxx - Sx^2 = 41, n*Syy - Sy^2 = 102 - 49 = 53 -> 41/53
    truth = np.array([[1, 2, 3], [4, 1, 2]], dtype=np.uint8)
    calls = np.array([[1, 3, 3], [4, 1, 1]], dtype=np.uint8)
    dosage = np.array([np.nan, 0, 1, 1, 2], dtype=np.float32)[calls]
    mask = np.array([[False, True, False], [False, False, True]])
    maf = np.array([0.2, 0.2, 0.2])
    scores = score(truth, Imputation(calls=calls, dosage=dosage), mask, train_alt_freq=maf, protocol="paper")
    overall = scores.metrics[scores.metrics["bin"] == "overall"].set_index("metric")
    assert overall["value"].to_dict() == pytest.approx(
        {"accuracy": 4 / 6, "precision": 13 / 24, "recall": 3 / 4, "f1": 37 / 60, "r2": 41 / 53}
    )
    assert (overall["n_genotypes"] == 6).all()
    # the standard protocol scores only the two masked cells (truth 2 -> 3 swap, truth 2 -> 1)
    standard = score(truth, Imputation(calls=calls, dosage=dosage), mask, train_alt_freq=maf)
    assert standard.metrics.loc[standard.metrics["bin"] == "overall", "n_genotypes"].iloc[0] == 2


# --------------------------------------------------------------------------- edge cases


def test_empty_bin_and_bin_without_scored_cells():
    truth, _, rng = polymorphic_case(n_variants=4)
    maf = np.array([0.3, 0.3, 0.02, 0.02])  # bins 30–40% and 1–5%; the others are empty
    mask = np.zeros(truth.shape, dtype=bool)
    mask[:, :2] = True  # no scored cell in the 1–5% bin
    dosage = np.array([np.nan, 0, 1, 1, 2], dtype=np.float32)[truth]
    scores = score(truth, Imputation(calls=truth.copy(), dosage=dosage), mask, train_alt_freq=maf)
    table = scores.metrics.set_index(["bin", "metric"])
    empty = table.loc["10–20%"]
    assert (empty["n_variants"] == 0).all() and (empty["n_genotypes"] == 0).all()
    assert empty.loc["n_variant_r2", "value"] == 0  # a count: no variant behind the r² summaries
    assert empty.drop(index="n_variant_r2")["value"].isna().all()  # coverage too: no variants
    unscored = table.loc["1–5%"]
    # n_variants counts scored variants: none here (coverage still counts all the bin's variants)
    assert (unscored["n_variants"] == 0).all() and (unscored["n_genotypes"] == 0).all()
    assert unscored.loc["coverage", "value"] == 1.0
    assert unscored.loc["n_variant_r2", "value"] == 0
    assert unscored.drop(index=["coverage", "n_variant_r2"])["value"].isna().all()


def test_no_scored_cells_at_all():
    truth, maf, _ = polymorphic_case(n_variants=5, n_samples=3)
    dosage = np.zeros(truth.shape, dtype=np.float32)
    mask = np.zeros(truth.shape, dtype=bool)
    scores = score(truth, Imputation(calls=truth.copy(), dosage=dosage), mask, train_alt_freq=maf)
    values = scores.metrics.set_index(["bin", "metric"])["value"]
    assert values.drop(index=["coverage", "n_variant_r2"], level="metric").isna().all()
    assert (values.xs("n_variant_r2", level="metric") == 0).all()
    assert (scores.metrics["n_genotypes"] == 0).all()
    assert scores.per_sample["r2"].isna().all() and (scores.per_sample["n_genotypes"] == 0).all()
    assert scores.confusion["count"].sum() == 0


def test_monomorphic_truth_and_prediction():
    # every scored cell hom-ref in truth and call: R² and IQS undefined, NRD undefined,
    # concordance and F1 perfect
    truth = np.ones((6, 3), dtype=np.uint8)
    dosage = np.zeros(truth.shape, dtype=np.float32)
    scores = score(truth, Imputation(calls=truth.copy(), dosage=dosage), np.ones(truth.shape, bool), train_alt_freq=np.zeros(3))
    overall = scores.metrics[scores.metrics["bin"] == "overall"].set_index("metric")["value"]
    assert math.isnan(overall["r2"]) and math.isnan(overall["iqs"]) and math.isnan(overall["nrd"])
    assert math.isnan(overall["mean_variant_r2"])
    assert overall["concordance"] == 1.0 and overall["f1"] == 1.0 and overall["precision"] == 1.0
    paper = score(truth, Imputation(calls=truth.copy(), dosage=dosage), np.ones(truth.shape, bool), train_alt_freq=np.zeros(3), protocol="paper")
    assert math.isnan(paper.metrics.set_index(["bin", "metric"]).loc[("overall", "r2"), "value"])


def test_constant_dosage_gives_zero_r2_across_blocks(monkeypatch):
    # a constant float32 dosage that is not exactly representable in binary (0.1) must give an
    # exactly zero variance, hence R² exactly 0 (it explains none of the truth's variance), not
    # a rounding residue, however the cells are split into blocks
    monkeypatch.setattr(metrics_module, "BLOCK_CELLS", 3)
    truth, maf, rng = polymorphic_case(n_samples=20, n_variants=6)
    mask = rng.random(truth.shape) < 0.6
    for dtype in (np.float32, np.float64):  # float64 input is read as float32, the contract's dtype
        dosage = np.full(truth.shape, 0.1, dtype=dtype)
        scores = score(truth, Imputation(calls=truth.copy(), dosage=dosage), mask, train_alt_freq=maf)
        rows = scores.metrics[scores.metrics["metric"].isin(["r2", "mean_variant_r2"])]
        populated = rows["n_genotypes"] > 0
        assert (rows.loc[populated, "value"] == 0).all(), dtype
        assert rows.loc[~populated, "value"].isna().all(), dtype
        per_sample = scores.per_sample["r2"]
        assert (per_sample == 0).sum() > 10 and ((per_sample == 0) | per_sample.isna()).all(), dtype  # NaN: truth constant


def test_uncovered_variants_are_not_scored():
    truth, maf, rng = polymorphic_case(n_samples=10, n_variants=8)
    mask = np.ones(truth.shape, dtype=bool)
    covered = np.array([True, True, True, True, False, False, True, True])
    calls = truth.copy()
    calls[:, ~covered] = 4  # placeholders: must not count
    dosage = np.array([np.nan, 0, 1, 1, 2], dtype=np.float32)[calls]
    for protocol in PROTOCOLS:
        scores = score(truth, Imputation(calls=calls, dosage=dosage, covered=covered), mask, train_alt_freq=maf, protocol=protocol)
        overall = scores.metrics[scores.metrics["bin"] == "overall"].set_index("metric")
        assert (overall["n_genotypes"] == 60).all()
        assert (overall["n_variants"] == 6).all()  # the scored (covered) ones
        main = "concordance" if protocol == "standard" else "accuracy"
        assert overall.loc[main, "value"] == 1.0
        if protocol == "standard":
            assert overall.loc["coverage", "value"] == pytest.approx(6 / 8)


def test_variant_outside_bins_counts_in_overall_only():
    truth, _, rng = polymorphic_case(n_samples=10, n_variants=3)
    maf = np.array([0.3, np.nan, 0.3])
    mask = np.ones(truth.shape, dtype=bool)
    dosage = np.array([np.nan, 0, 1, 1, 2], dtype=np.float32)[truth]
    scores = score(truth, Imputation(calls=truth.copy(), dosage=dosage), mask, train_alt_freq=maf)
    table = scores.metrics.set_index(["bin", "metric"])
    assert table.loc[("30–40%", "r2"), "n_variants"] == 2
    assert table.loc[("30–40%", "r2"), "n_genotypes"] == 20
    assert table.loc[("overall", "r2"), "n_variants"] == 3
    assert table.loc[("overall", "r2"), "n_genotypes"] == 30


def test_bad_inputs():
    truth = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    dosage = np.zeros(truth.shape, dtype=np.float32)
    mask = np.ones(truth.shape, dtype=bool)
    maf = np.array([0.1, 0.1])
    good = Imputation(calls=truth.copy(), dosage=dosage)
    with pytest.raises(ImpbenchError, match="protocol"):
        score(truth, good, mask, train_alt_freq=maf, protocol="both")
    with pytest.raises(ImpbenchError, match="truth"):
        score(np.array([[0, 2], [3, 4]], dtype=np.uint8), good, mask, train_alt_freq=maf)
    with pytest.raises(ImpbenchError, match="calls"):
        score(truth, Imputation(calls=np.zeros_like(truth), dosage=dosage), mask, train_alt_freq=maf)
    with pytest.raises(ImpbenchError, match="dosage"):
        score(truth, Imputation(calls=truth.copy(), dosage=np.full(truth.shape, np.nan, np.float32)), mask, train_alt_freq=maf)
    with pytest.raises(ValueError):
        score(truth, good, mask[:1], train_alt_freq=maf)
    with pytest.raises(ValueError):
        score(truth, good, mask, train_alt_freq=maf[:1])
    with pytest.raises(ImpbenchError):
        score(truth, good, mask, train_alt_freq=maf, bin_edges=(0.3, 0.2))
    # a missing truth cell that is not scored is fine
    partial = mask.copy()
    partial[0, 0] = False
    score(np.array([[0, 2], [3, 4]], dtype=np.uint8), good, partial, train_alt_freq=maf)
