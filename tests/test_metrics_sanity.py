"""Identities every scorer must satisfy, on the embedded sim-1kgp dataset (cached store):
the truth scores perfectly against itself; a constant per-variant predictor scores ~nothing."""

from __future__ import annotations

import numpy as np
import pytest

from impbench.scoring.bootstrap import bootstrap_metrics
from impbench.bench.masking import make_mask
from impbench.scoring.metrics import score
from impbench.scoring.pooled import STANDARD_POOLED
from impbench.genotypes import CODE_DOSAGE_CLASS, alt_allele_frequency
from impbench.imputers.base import Imputation, RunContext
from impbench.imputers.baselines import MajorImputer

PERFECT_ONE = ("r2", "gt_r2", "concordance", "precision", "recall", "f1", "iqs", "phased_accuracy",
               "mean_variant_r2", "median_variant_r2", "frac_variant_r2_ge_0.8", "coverage")  # fmt: skip
PERFECT_ZERO = ("nrd", "error_hom_major", "error_het", "error_hom_minor")


@pytest.fixture(scope="module")
def sim_1kgp():
    from impbench.data.cards import get_card
    from impbench.data.prepare import prepare

    store = prepare(get_card("sim-1kgp"))
    return store.read_split("train"), store.read_split("test")


@pytest.mark.parametrize("level", [0.05, 0.25])
def test_truth_against_itself_is_perfect_in_every_bin(sim_1kgp, level):
    train, test = sim_1kgp
    freq = alt_allele_frequency(train.codes)
    mask = make_mask(test.codes, level, 3)
    truth = Imputation.from_probs(np.eye(4, dtype=np.float32)[test.codes - 1], test.codes * 0)  # one-hot truth
    assert np.array_equal(truth.calls, test.codes)
    scores = score(test.codes, truth, mask, train_alt_freq=freq)
    table = scores.metrics[scores.metrics["n_genotypes"] > 0]
    assert table["bin"].nunique() == 9  # every default bin and overall is populated
    # a metric may be undefined only where its definition says so: the (oriented) truth of the
    # bin is constant (r², GT r², IQS), all hom-major (NRD), or lacks the class (error rates)
    flip = freq > 0.5
    classes = CODE_DOSAGE_CLASS[test.codes].astype(int)
    classes = np.where(flip[None, :], 2 - classes, classes)
    from impbench.scoring.metrics import maf_bins

    variant_bin = maf_bins(np.minimum(freq, 1 - freq))
    labels = list(dict.fromkeys(table["bin"]))
    for label in labels:
        rows = table[table["bin"] == label].set_index("metric")["value"]
        in_bin = mask & ((variant_bin == labels.index(label))[None, :] if label != "overall" else True)
        present = {k: bool((classes[in_bin] == k).any()) for k in range(3)}
        for name in PERFECT_ONE:
            undefined = (name in ("r2", "gt_r2", "iqs") and sum(present.values()) < 2) or (
                name.endswith("variant_r2") or name == "frac_variant_r2_ge_0.8") and rows["n_variant_r2"] == 0
            assert (np.isnan(rows[name]) if undefined else rows[name] == pytest.approx(1.0)), (label, name)
        for name, k in zip(PERFECT_ZERO, (None, 0, 1, 2)):
            undefined = (not (present[1] or present[2])) if k is None else not present[k]
            assert (np.isnan(rows[name]) if undefined else rows[name] == 0.0), (label, name)
    assert np.allclose(scores.per_sample["r2"], 1.0)
    # and the bootstrap of a perfect answer has zero width (R² to rounding: the resampled
    # dosage sums are shifted sums, exact for integer truth, float for the dosage)
    ci = bootstrap_metrics(scores.sample_stats, n_boot=50, seed=0)
    ci = ci[ci["metric"].isin(["r2", "concordance", "f1"]) & ci["value"].notna()]
    assert np.allclose(ci["ci_low"], ci["value"], rtol=0, atol=1e-12)
    assert np.allclose(ci["ci_high"], ci["value"], rtol=0, atol=1e-12)
    exact = ci[ci["metric"] != "r2"]
    assert (exact["ci_low"] == exact["value"]).all() and (exact["ci_high"] == exact["value"]).all()


@pytest.mark.parametrize("level", [0.05, 0.25])
def test_constant_predictor_scores_nothing_on_the_minor_allele(sim_1kgp, tmp_path, level):
    train, test = sim_1kgp
    freq = alt_allele_frequency(train.codes)
    assert (freq > 0.5).sum() > 50  # ALT-major variants exist: orientation matters here
    mask = make_mask(test.codes, level, 1)
    target = test.with_codes(np.where(mask, 0, test.codes).astype(np.uint8))
    imputer = MajorImputer()
    ctx = RunContext(work_dir=tmp_path)
    imputer.fit(train, None, ctx)
    imputation = imputer.impute(target, ctx)
    scores = score(test.codes, imputation, mask, train_alt_freq=freq)
    r2 = scores.metrics[(scores.metrics["metric"] == "r2") & (scores.metrics["n_genotypes"] > 0)]
    assert len(r2) == 9 and (r2["value"] < 0.05).all(), r2[["bin", "value"]]
    gt_r2 = scores.metrics[(scores.metrics["metric"] == "gt_r2") & (scores.metrics["n_genotypes"] > 0)]
    assert (gt_r2["value"] < 0.05).all()
    overall = scores.metrics[scores.metrics["bin"] == "overall"].set_index("metric")["value"]
    assert overall["mean_variant_r2"] < 0.05 and overall["iqs"] < 0.1
    # on the ALT allele (no flip) the same answer looked good: the pitfall the orientation removes
    alt_coded = score(test.codes, imputation, mask, train_alt_freq=np.minimum(freq, 1 - freq))
    assert alt_coded.metrics.set_index(["bin", "metric"]).loc[("overall", "r2"), "value"] > 0.2
    assert set(STANDARD_POOLED) <= set(scores.metrics["metric"])
