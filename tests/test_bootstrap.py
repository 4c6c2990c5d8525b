"""Bootstrap CIs and paired differences against a slow resampling loop that rescores cells."""

from __future__ import annotations

import math

import numpy as np
import pytest

from impbench.scoring.bootstrap import (
    bootstrap_metrics,
    bootstrap_values,
    paired_differences,
    resample_indices,
    resample_weights,
)
from impbench.scoring.metrics import PROTOCOLS, score
from impbench.scoring.pooled import PAPER_POOLED, STANDARD_POOLED, pool_replicates
from impbench.errors import ImpbenchError
from impbench.imputers.base import Imputation
from impbench.testing.reference_metrics import ref_cells, ref_groups, ref_pooled_metrics, same

EDGES = (0, 0.05, 0.2, 0.5)


def noisy_case(seed, n_samples=7, n_variants=9, n_replicates=2, error=0.3):
    """Truth, training ALT frequencies (some above 0.5) and per-replicate (mask, imputation)."""
    rng = np.random.default_rng(seed)
    freq = rng.choice([0.03, 0.1, 0.3, 0.6, 0.9, 0.97], size=n_variants)
    a0 = rng.random((n_samples, n_variants)) < freq
    a1 = rng.random((n_samples, n_variants)) < freq
    truth = (1 + a1 + 2 * a0).astype(np.uint8)
    replicates = []
    for _ in range(n_replicates):
        mask = rng.random(truth.shape) < 0.6
        calls = truth.copy()
        wrong = rng.random(truth.shape) < error
        calls[wrong] = rng.integers(1, 5, size=int(wrong.sum()), dtype=np.uint8)
        dosage = np.clip(np.array([0, 0, 1, 1, 2], dtype=np.float32)[calls] + rng.normal(0, 0.3, truth.shape), 0, 2)
        covered = rng.random(n_variants) < 0.9
        replicates.append((mask, Imputation(calls=calls, dosage=dosage.astype(np.float32), covered=covered)))
    return truth, freq, replicates


def slow_resampled(truth, freq, replicates, protocol, indices):
    """Metrics of one resample by rescoring: the scored cells of every replicate of each drawn
    sample (a sample drawn twice counts twice). Returns {(bin, metric): value}."""
    per_replicate = [
        ref_cells(truth, imp.calls, imp.dosage, imp.covered, mask, freq, protocol) for mask, imp in replicates
    ]
    drawn = []
    for cells in per_replicate:
        for i in indices:
            drawn += [(j, t, c, d) for s, j, t, c, d in cells if s == i]
    result = {}
    for label, variant_set in ref_groups(freq, EDGES):
        values = ref_pooled_metrics([cell for cell in drawn if cell[0] in variant_set], protocol)
        result.update({(label, name): value for name, value in values.items()})
    return result


def all_stats(truth, freq, replicates, protocol):
    return [score(truth, imp, mask, train_alt_freq=freq, protocol=protocol, bin_edges=EDGES).sample_stats
            for mask, imp in replicates]  # fmt: skip


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resampled_values_match_rescoring_the_drawn_samples(protocol, seed):
    truth, freq, replicates = noisy_case(seed)
    stats = all_stats(truth, freq, replicates, protocol)
    n_boot = 6
    pooled, point, resampled = bootstrap_values(stats, n_boot=n_boot, seed=seed)
    names = STANDARD_POOLED if protocol == "standard" else PAPER_POOLED
    assert pooled.metric_names == names and resampled.shape == (n_boot, len(names), len(EDGES))
    indices = resample_indices(truth.shape[0], n_boot, seed)
    for b in range(n_boot):
        expected = slow_resampled(truth, freq, replicates, protocol, indices[b].tolist())
        for m, name in enumerate(names):
            for g, label in enumerate(pooled.metric_groups):
                assert same(resampled[b, m, g], expected[(label, name)]), (b, name, label)
    # the point value pools every replicate's cells of every sample once
    expected = slow_resampled(truth, freq, replicates, protocol, range(truth.shape[0]))
    for m, name in enumerate(names):
        for g, label in enumerate(pooled.metric_groups):
            assert same(point[m, g], expected[(label, name)]), (name, label)


def test_ci_is_the_percentile_interval_of_the_rescored_resamples():
    truth, freq, replicates = noisy_case(4, n_samples=6, n_variants=7)
    stats = all_stats(truth, freq, replicates, "standard")
    n_boot = 12
    table = bootstrap_metrics(stats, n_boot=n_boot, seed=9).set_index(["metric", "bin"])
    indices = resample_indices(truth.shape[0], n_boot, 9)
    slow = [slow_resampled(truth, freq, replicates, "standard", indices[b].tolist()) for b in range(n_boot)]
    for (name, label), row in table.iterrows():
        values = np.array([s[(label, name)] for s in slow], dtype=float)
        defined = values[np.isfinite(values)]
        assert row["n_boot"] == len(defined)
        if len(defined) == 0:
            assert math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])
            continue
        low, high = np.percentile(defined, [2.5, 97.5])
        assert same(row["ci_low"], low) and same(row["ci_high"], high), (name, label)


def test_paired_differences_use_the_same_resamples_for_both():
    truth, freq, reps_a = noisy_case(5, error=0.1)
    _, _, reps_b = noisy_case(5, error=0.4)  # same truth and masks (same seed), other calls
    stats_a = all_stats(truth, freq, reps_a, "standard")
    stats_b = all_stats(truth, freq, reps_b, "standard")
    n_boot = 8
    table = paired_differences(stats_a, stats_b, n_boot=n_boot, seed=3).set_index(["metric", "bin"])
    indices = resample_indices(truth.shape[0], n_boot, 3)
    diffs = {}
    for b in range(n_boot):
        slow_a = slow_resampled(truth, freq, reps_a, "standard", indices[b].tolist())
        slow_b = slow_resampled(truth, freq, reps_b, "standard", indices[b].tolist())
        for key in slow_a:
            diffs.setdefault(key, []).append(slow_a[key] - slow_b[key])
    full_a = slow_resampled(truth, freq, reps_a, "standard", range(truth.shape[0]))
    full_b = slow_resampled(truth, freq, reps_b, "standard", range(truth.shape[0]))
    for (name, label), row in table.iterrows():
        assert same(row["value_a"], full_a[(label, name)]) and same(row["value_b"], full_b[(label, name)])
        assert same(row["difference"], full_a[(label, name)] - full_b[(label, name)])
        values = np.array(diffs[(label, name)], dtype=float)
        defined = values[np.isfinite(values)]
        assert row["n_boot"] == len(defined)
        if len(defined):
            low, high = np.percentile(defined, [2.5, 97.5])
            assert same(row["ci_low"], low) and same(row["ci_high"], high), (name, label)
    # an imputer against itself: every defined difference is 0 with a CI of [0, 0]
    self_diff = paired_differences(stats_a, stats_a, n_boot=n_boot, seed=3)
    defined = self_diff["difference"].notna()
    assert (self_diff.loc[defined, ["difference", "ci_low", "ci_high"]] == 0).all().all()


def test_sample_subset_equals_scoring_those_samples_alone():
    truth, freq, replicates = noisy_case(6, n_samples=10)
    cohort = np.array(["A", "B"] * 5)
    stats = all_stats(truth, freq, replicates, "standard")
    rows = cohort == "B"
    alone = [score(truth[rows], Imputation(calls=imp.calls[rows], dosage=imp.dosage[rows], covered=imp.covered),
                   mask[rows], train_alt_freq=freq, bin_edges=EDGES).sample_stats for mask, imp in replicates]  # fmt: skip
    got = bootstrap_metrics(stats, n_boot=20, seed=1, samples=rows)
    expected = bootstrap_metrics(alone, n_boot=20, seed=1)
    pd_equal = got.fillna(-1).to_numpy() == expected.fillna(-1).to_numpy()
    assert pd_equal.all()


def test_one_replicate_point_values_are_those_of_score():
    truth, freq, replicates = noisy_case(7, n_replicates=1)
    mask, imp = replicates[0]
    scores = score(truth, imp, mask, train_alt_freq=freq, bin_edges=EDGES)
    table = bootstrap_metrics(scores.sample_stats, n_boot=5, seed=0).set_index(["metric", "bin"])["value"]
    metrics = scores.metrics.set_index(["metric", "bin"])["value"]
    for key, value in table.items():
        assert same(value, metrics[key]), key


def test_resample_weights_count_draws_and_bad_inputs():
    indices = resample_indices(5, 50, seed=2)
    weights = resample_weights(indices, 5)
    assert (weights.sum(axis=1) == 5).all()
    assert all((np.bincount(indices[b], minlength=5) == weights[b]).all() for b in range(50))
    assert np.array_equal(indices, resample_indices(5, 50, seed=2))
    with pytest.raises(ImpbenchError):
        resample_indices(5, 0, seed=1)
    truth, freq, replicates = noisy_case(8)
    standard = all_stats(truth, freq, replicates, "standard")
    paper = all_stats(truth, freq, replicates, "paper")
    with pytest.raises(ImpbenchError):
        pool_replicates([standard[0], paper[0]])
    with pytest.raises(ImpbenchError):
        bootstrap_metrics(standard, samples=np.zeros(truth.shape[0], dtype=bool))
