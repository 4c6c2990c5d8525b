"""Metrics: the vectorised ``score`` against a slow, plainly written reference, and known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import impbench.bench.metrics as metrics_module
from impbench.errors import ImpbenchError
from impbench.imputers.base import Imputation
from impbench.bench.metrics import (
    DEFAULT_BIN_EDGES,
    PAPER_METRICS,
    PROTOCOLS,
    STANDARD_METRICS,
    bin_labels,
    maf_bins,
    score,
)

DOSAGE_OF_CODE = {1: 0, 2: 1, 3: 1, 4: 2}


# --------------------------------------------------------------------------- slow reference


def ref_pearson_r2(xs, ys):
    """Squared Pearson correlation, two-pass, plain Python; NaN when either list is constant
    (or has fewer than two values)."""
    n = len(xs)
    if n == 0 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return math.nan
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return min(sxy * sxy / (sxx * syy), 1.0)


def ref_macro(pairs, classes):
    """Macro precision, recall, F1 over classes present in truth or prediction."""
    present = [k for k in classes if any(t == k or p == k for t, p in pairs)]
    if not present:
        return math.nan, math.nan, math.nan
    precisions, recalls, f1s = [], [], []
    for k in present:
        tp = sum(1 for t, p in pairs if t == k and p == k)
        predicted = sum(1 for t, p in pairs if p == k)
        actual = sum(1 for t, p in pairs if t == k)
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(f1)
    return sum(precisions) / len(present), sum(recalls) / len(present), sum(f1s) / len(present)


def ref_iqs(pairs, classes):
    n = len(pairs)
    if n == 0:
        return math.nan
    observed = sum(1 for t, p in pairs if t == p) / n
    chance = sum(
        (sum(1 for t, _ in pairs if t == k) / n) * (sum(1 for _, p in pairs if p == k) / n) for k in classes
    )
    if chance == 1:
        return math.nan
    return (observed - chance) / (1 - chance)


def ref_group_metrics(cells, protocol, variant_set, covered):
    """cells: list of (variant, true code, call code, dosage) scored in this group."""
    if protocol == "paper":
        pairs = [(t, c) for _, t, c, _ in cells]
        n = len(pairs)
        precision, recall, f1 = ref_macro(pairs, [1, 2, 3, 4])
        return {
            "accuracy": sum(1 for t, c in pairs if t == c) / n if n else math.nan,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "r2": ref_pearson_r2([t - 1 for t, _ in pairs], [c - 1 for _, c in pairs]),
        }
    pairs = [(DOSAGE_OF_CODE[t], DOSAGE_OF_CODE[c]) for _, t, c, _ in cells]
    n = len(pairs)
    precision, recall, f1 = ref_macro(pairs, [0, 1, 2])
    nonref = [(t, p) for t, p in pairs if t != 0 or p != 0]
    per_variant = []
    for j in sorted(variant_set):
        xs = [DOSAGE_OF_CODE[t] for v, t, _, _ in cells if v == j]
        ys = [d for v, _, _, d in cells if v == j]
        value = ref_pearson_r2(xs, ys)
        if not math.isnan(value):
            per_variant.append(value)
    values = {
        "r2": ref_pearson_r2([DOSAGE_OF_CODE[t] for _, t, _, _ in cells], [d for _, _, _, d in cells]),
        "concordance": sum(1 for t, p in pairs if t == p) / n if n else math.nan,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "iqs": ref_iqs(pairs, [0, 1, 2]),
        "nrd": sum(1 for t, p in nonref if t != p) / len(nonref) if nonref else math.nan,
        "phased_accuracy": sum(1 for _, t, c, _ in cells if t == c) / n if n else math.nan,
        "mean_variant_r2": sum(per_variant) / len(per_variant) if per_variant else math.nan,
        "coverage": sum(1 for j in variant_set if covered[j]) / len(variant_set) if variant_set else math.nan,
    }
    return values


def ref_score(truth, calls, dosage, covered, mask, maf, protocol, edges):
    """Everything ``score`` returns, by loops over cells. Returns (metrics dict keyed by
    (bin, metric) -> (value, n_variants, n_genotypes), per-sample list, confusion dict)."""
    n_samples, n_variants = truth.shape
    labels = bin_labels(edges)

    def bin_of(value):
        if value != value:  # NaN
            return None
        for b in range(len(edges) - 1):
            last = b == len(edges) - 2
            if edges[b] <= value < edges[b + 1] or (last and value == edges[b + 1]):
                return b
        return None

    variant_bins = [bin_of(float(maf[j])) for j in range(n_variants)]
    cells = []
    for i in range(n_samples):
        for j in range(n_variants):
            if not covered[j]:
                continue
            if protocol == "standard" and not mask[i, j]:
                continue
            cells.append((i, j, int(truth[i, j]), int(calls[i, j]), float(np.float32(dosage[i, j]))))
    result = {}
    groups = [(labels[b], {j for j in range(n_variants) if variant_bins[j] == b}) for b in range(len(labels))]
    groups.append(("overall", set(range(n_variants))))
    for label, variant_set in groups:
        group_cells = [(j, t, c, d) for _, j, t, c, d in cells if j in variant_set]
        for name, value in ref_group_metrics(group_cells, protocol, variant_set, covered).items():
            result[(label, name)] = (value, len(variant_set), len(group_cells))
    per_sample = []
    if protocol == "standard":
        for i in range(n_samples):
            mine = [(t, d) for s, _, t, _, d in cells if s == i]
            per_sample.append((ref_pearson_r2([DOSAGE_OF_CODE[t] for t, _ in mine], [d for _, d in mine]), len(mine)))
    confusion = {}
    for t in range(1, 5):
        for c in range(1, 5):
            confusion[("phased", t, c)] = sum(1 for *_, tt, cc, _ in cells if tt == t and cc == c)
    for t in range(3):
        for c in range(3):
            confusion[("dosage", t, c)] = sum(
                1 for *_, tt, cc, _ in cells if DOSAGE_OF_CODE[tt] == t and DOSAGE_OF_CODE[cc] == c
            )
    return result, per_sample, confusion


def same(a, b, tol=1e-9):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(b))


def check_against_reference(truth, calls, dosage, covered, mask, maf, protocol, edges=DEFAULT_BIN_EDGES):
    imputation = Imputation(calls=calls, dosage=dosage, covered=covered)
    scores = score(truth, imputation, mask, maf, protocol=protocol, bin_edges=edges)
    expected, per_sample, confusion = ref_score(truth, calls, dosage, covered, mask, maf, protocol, edges)
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
    maf = rng.choice(np.array([0.0, 0.003, 0.005, 0.02, 0.1, 0.25, 0.49, 0.5, np.nan]), size=n_variants)
    edges = draw(st.sampled_from([DEFAULT_BIN_EDGES, (0, 0.05, 0.5), (0.01, 0.2, 0.4)]))
    block_cells = draw(st.sampled_from([1 << 22, 7, 1]))  # 1 and 7 force many row blocks
    return truth, calls, dosage, covered, mask, maf, edges, block_cells


@settings(max_examples=150, deadline=None)
@given(scoring_cases(), st.sampled_from(PROTOCOLS))
def test_score_matches_slow_reference(case, protocol):
    truth, calls, dosage, covered, mask, maf, edges, block_cells = case
    saved = metrics_module.BLOCK_CELLS
    metrics_module.BLOCK_CELLS = block_cells
    try:
        check_against_reference(truth, calls, dosage, covered, mask, maf, protocol, edges)
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
    scores = score(truth, Imputation(calls=truth.copy(), dosage=dosage), mask, maf)
    overall = scores.metrics[scores.metrics["bin"] == "overall"].set_index("metric")["value"]
    for name in ("r2", "concordance", "precision", "recall", "f1", "iqs", "phased_accuracy", "coverage"):
        assert overall[name] == pytest.approx(1.0), name
    assert overall["nrd"] == 0.0
    assert overall["mean_variant_r2"] == pytest.approx(1.0)
    populated = scores.metrics[scores.metrics["n_genotypes"] > 0]
    for name in ("concordance", "f1", "phased_accuracy"):
        assert (populated.loc[populated["metric"] == name, "value"] == 1.0).all()
    assert np.allclose(scores.per_sample["r2"], 1.0)
    paper = score(truth, Imputation(calls=truth.copy(), dosage=dosage), mask, maf, protocol="paper")
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
    scores = score(truth, Imputation(calls=calls, dosage=dosage), mask, maf)
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
    scores = score(truth, Imputation(calls=calls, dosage=dosage), mask, maf, protocol="paper")
    overall = scores.metrics[scores.metrics["bin"] == "overall"].set_index("metric")
    assert overall["value"].to_dict() == pytest.approx(
        {"accuracy": 4 / 6, "precision": 13 / 24, "recall": 3 / 4, "f1": 37 / 60, "r2": 41 / 53}
    )
    assert (overall["n_genotypes"] == 6).all()
    # the standard protocol scores only the two masked cells (truth 2 -> 3 swap, truth 2 -> 1)
    standard = score(truth, Imputation(calls=calls, dosage=dosage), mask, maf)
    assert standard.metrics.loc[standard.metrics["bin"] == "overall", "n_genotypes"].iloc[0] == 2


# --------------------------------------------------------------------------- edge cases


def test_empty_bin_and_bin_without_scored_cells():
    truth, _, rng = polymorphic_case(n_variants=4)
    maf = np.array([0.3, 0.3, 0.02, 0.02])  # bins 30–40% and 1–5%; the others are empty
    mask = np.zeros(truth.shape, dtype=bool)
    mask[:, :2] = True  # no scored cell in the 1–5% bin
    dosage = np.array([np.nan, 0, 1, 1, 2], dtype=np.float32)[truth]
    scores = score(truth, Imputation(calls=truth.copy(), dosage=dosage), mask, maf)
    table = scores.metrics.set_index(["bin", "metric"])
    empty = table.loc["10–20%"]
    assert (empty["n_variants"] == 0).all() and (empty["n_genotypes"] == 0).all()
    assert empty["value"].isna().all()  # coverage too: no variants
    unscored = table.loc["1–5%"]
    assert (unscored["n_variants"] == 2).all() and (unscored["n_genotypes"] == 0).all()
    assert unscored.loc["coverage", "value"] == 1.0
    assert unscored.drop(index="coverage")["value"].isna().all()


def test_no_scored_cells_at_all():
    truth, maf, _ = polymorphic_case(n_variants=5, n_samples=3)
    dosage = np.zeros(truth.shape, dtype=np.float32)
    mask = np.zeros(truth.shape, dtype=bool)
    scores = score(truth, Imputation(calls=truth.copy(), dosage=dosage), mask, maf)
    values = scores.metrics.set_index(["bin", "metric"])["value"]
    assert values.drop(index="coverage", level="metric").isna().all()
    assert (scores.metrics["n_genotypes"] == 0).all()
    assert scores.per_sample["r2"].isna().all() and (scores.per_sample["n_genotypes"] == 0).all()
    assert scores.confusion["count"].sum() == 0


def test_monomorphic_truth_and_prediction():
    # every scored cell hom-ref in truth and call: R² and IQS undefined, NRD undefined,
    # concordance and F1 perfect
    truth = np.ones((6, 3), dtype=np.uint8)
    dosage = np.zeros(truth.shape, dtype=np.float32)
    scores = score(truth, Imputation(calls=truth.copy(), dosage=dosage), np.ones(truth.shape, bool), np.zeros(3))
    overall = scores.metrics[scores.metrics["bin"] == "overall"].set_index("metric")["value"]
    assert math.isnan(overall["r2"]) and math.isnan(overall["iqs"]) and math.isnan(overall["nrd"])
    assert math.isnan(overall["mean_variant_r2"])
    assert overall["concordance"] == 1.0 and overall["f1"] == 1.0 and overall["precision"] == 1.0
    paper = score(truth, Imputation(calls=truth.copy(), dosage=dosage), np.ones(truth.shape, bool), np.zeros(3), "paper")
    assert math.isnan(paper.metrics.set_index(["bin", "metric"]).loc[("overall", "r2"), "value"])


def test_constant_dosage_gives_undefined_r2_across_blocks(monkeypatch):
    # a constant float32 dosage that is not exactly representable in binary (0.1) must give an
    # exactly zero variance, hence NaN, however the cells are split into blocks
    monkeypatch.setattr(metrics_module, "BLOCK_CELLS", 3)
    truth, maf, rng = polymorphic_case(n_samples=20, n_variants=6)
    mask = rng.random(truth.shape) < 0.6
    for dtype in (np.float32, np.float64):  # float64 input is read as float32, the contract's dtype
        dosage = np.full(truth.shape, 0.1, dtype=dtype)
        scores = score(truth, Imputation(calls=truth.copy(), dosage=dosage), mask, maf)
        r2 = scores.metrics.loc[scores.metrics["metric"].isin(["r2", "mean_variant_r2"]), "value"]
        assert r2.isna().all(), dtype
        assert scores.per_sample["r2"].isna().all(), dtype


def test_uncovered_variants_are_not_scored():
    truth, maf, rng = polymorphic_case(n_samples=10, n_variants=8)
    mask = np.ones(truth.shape, dtype=bool)
    covered = np.array([True, True, True, True, False, False, True, True])
    calls = truth.copy()
    calls[:, ~covered] = 4  # placeholders: must not count
    dosage = np.array([np.nan, 0, 1, 1, 2], dtype=np.float32)[calls]
    for protocol in PROTOCOLS:
        scores = score(truth, Imputation(calls=calls, dosage=dosage, covered=covered), mask, maf, protocol)
        overall = scores.metrics[scores.metrics["bin"] == "overall"].set_index("metric")
        assert (overall["n_genotypes"] == 60).all()
        assert (overall["n_variants"] == 8).all()
        main = "concordance" if protocol == "standard" else "accuracy"
        assert overall.loc[main, "value"] == 1.0
        if protocol == "standard":
            assert overall.loc["coverage", "value"] == pytest.approx(6 / 8)


def test_variant_outside_bins_counts_in_overall_only():
    truth, _, rng = polymorphic_case(n_samples=10, n_variants=3)
    maf = np.array([0.3, np.nan, 0.3])
    mask = np.ones(truth.shape, dtype=bool)
    dosage = np.array([np.nan, 0, 1, 1, 2], dtype=np.float32)[truth]
    scores = score(truth, Imputation(calls=truth.copy(), dosage=dosage), mask, maf)
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
        score(truth, good, mask, maf, protocol="both")
    with pytest.raises(ImpbenchError, match="truth"):
        score(np.array([[0, 2], [3, 4]], dtype=np.uint8), good, mask, maf)
    with pytest.raises(ImpbenchError, match="calls"):
        score(truth, Imputation(calls=np.zeros_like(truth), dosage=dosage), mask, maf)
    with pytest.raises(ImpbenchError, match="dosage"):
        score(truth, Imputation(calls=truth.copy(), dosage=np.full(truth.shape, np.nan, np.float32)), mask, maf)
    with pytest.raises(ValueError):
        score(truth, good, mask[:1], maf)
    with pytest.raises(ValueError):
        score(truth, good, mask, maf[:1])
    with pytest.raises(ImpbenchError):
        score(truth, good, mask, maf, bin_edges=(0.3, 0.2))
    # a missing truth cell that is not scored is fine
    partial = mask.copy()
    partial[0, 0] = False
    score(np.array([[0, 2], [3, 4]], dtype=np.uint8), good, partial, maf)
