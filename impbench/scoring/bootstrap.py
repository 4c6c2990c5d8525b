"""Two-way bootstrap confidence intervals and paired differences over test samples and
genomic blocks of variants. API:

- ``DEFAULT_N_BOOT = 1000``, ``CI_LEVEL = 0.95``, ``DEFAULT_BLOCK_LENGTH``, ``MAX_BLOCKS``
- ``genomic_blocks(positions, block_length) -> int64 (n_variants,)``; ``block_length_for``
- ``resample_indices(n_samples, n_boot, seed) -> int64 (n_boot, n_samples)``
- ``resample_weights(indices, n) -> int64 (n_boot, n)``; ``two_way_weights(stats, n_boot, seed)``
- ``bootstrap_values(stats_by_replicate, n_boot, seed, samples=None) -> (stats, point, resampled)``
- ``bootstrap_metrics(stats_by_replicate, n_boot=1000, seed=0, samples=None) -> DataFrame``
- ``paired_differences(stats_a, stats_b, n_boot=1000, seed=0, samples=None) -> DataFrame``

Two units are resampled at once: test samples and genomic blocks (runs of adjacent variants,
``genomic_blocks``: the statistics' second axis). The replicates (masks) of one imputer and
level are pooled per (sample, block) first (``pool_replicates``), so one resample applies to
every replicate at once. A resample draws ``n`` of the ``n`` samples and ``K`` of the ``K``
blocks with replacement, independently (``resample_indices`` with ``seed`` for the samples, with
``(seed, 1)`` for the blocks); a (sample, block) pair counts ``w_sample * w_block`` times, and
the metrics are those of the pooled cells so weighted, computed from the summed per-(sample,
block) statistics (``SampleStats.values``), never by rescoring cells. Statistics with one block
(or ``resample_blocks=False``) give the sample-only bootstrap. The CI is the
percentile interval (2.5% and 97.5% of the resampled values, numpy's linear interpolation)
over the resamples where the metric is defined.

Paired differences use the same resample indices for both imputers (same seed, same samples),
so mask and sample noise shared by the two cancel. ``samples`` restricts everything to a subset
of the test samples (one cohort: ``truth.cohort == "YRI"``) before resampling.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from impbench.errors import ImpbenchError
from impbench.scoring.pooled import SampleStats, pool_replicates

__all__ = [
    "DEFAULT_N_BOOT",
    "CI_LEVEL",
    "BOOTSTRAP_COLUMNS",
    "PAIRED_COLUMNS",
    "DEFAULT_BLOCK_LENGTH",
    "MAX_BLOCKS",
    "block_length_for",
    "genomic_blocks",
    "resample_indices",
    "resample_weights",
    "two_way_weights",
    "bootstrap_values",
    "bootstrap_metrics",
    "paired_differences",
]

DEFAULT_N_BOOT = 1000
CI_LEVEL = 0.95
#: Default genomic block length in bp (a 1.2 Mb sim-1kgp window has 24 blocks) ...
DEFAULT_BLOCK_LENGTH = 50_000
#: ... lengthened where a region would hold more blocks than this (``block_length_for``).
MAX_BLOCKS = 100
BOOTSTRAP_COLUMNS = ["metric", "bin", "value", "ci_low", "ci_high", "n_boot"]
PAIRED_COLUMNS = ["metric", "bin", "value_a", "value_b", "difference", "ci_low", "ci_high", "n_boot"]


def resample_indices(n_samples: int, n_boot: int, seed: int) -> np.ndarray:
    """The drawn samples of each resample: int64 (n_boot, n_samples), uniform with replacement,
    from ``np.random.default_rng(seed)``."""
    if int(n_boot) != n_boot or n_boot < 1:
        raise ImpbenchError(f"bootstrap resamples must be a positive integer, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_samples, size=(int(n_boot), n_samples), dtype=np.int64)


def resample_weights(indices: np.ndarray, n_samples: int) -> np.ndarray:
    """How often each sample (or block) is drawn in each resample: int64 (n_boot, n_samples)."""
    n_boot = len(indices)
    flat = (np.arange(n_boot, dtype=np.int64)[:, None] * n_samples + indices).ravel()
    return np.bincount(flat, minlength=n_boot * n_samples).reshape(n_boot, n_samples)


def block_length_for(positions: np.ndarray, requested: int | None) -> int:
    """The block length a run uses: ``requested`` bp when given (0: one block, samples-only
    bootstrap), else ``DEFAULT_BLOCK_LENGTH``, lengthened to span / ``MAX_BLOCKS`` on long regions."""
    if requested is not None:
        if int(requested) != requested or requested < 0:
            raise ImpbenchError(f"--block-length must be a non-negative whole number of bp, got {requested!r}")
        return int(requested)
    positions = np.asarray(positions, dtype=np.int64)
    span = int(positions.max() - positions.min()) + 1 if positions.size else 1
    return max(DEFAULT_BLOCK_LENGTH, -(-span // MAX_BLOCKS))


def genomic_blocks(positions: np.ndarray, block_length: int) -> np.ndarray:
    """Each variant's block: ``(position - first position) // block_length``, numbered 0..K-1
    over the blocks that hold a variant. positions : int (n_variants,), sorted or not;
    block_length 0: every variant in block 0. Returns int64 (n_variants,)."""
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size == 0 or block_length == 0:
        return np.zeros(positions.shape, dtype=np.int64)
    raw = (positions - positions.min()) // int(block_length)
    return np.unique(raw, return_inverse=True)[1].astype(np.int64).reshape(positions.shape)


def two_way_weights(n_samples: int, n_blocks: int, n_boot: int, seed: int,
                    resample_blocks: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Sample and block multiplicities of ``n_boot`` resamples: int64 (n_boot, n_samples) from
    ``seed`` and int64 (n_boot, n_blocks) from ``(seed, 1)``, or None for the blocks when there is
    one block or ``resample_blocks`` is False."""
    samples = resample_weights(resample_indices(n_samples, n_boot, seed), n_samples)
    if n_blocks <= 1 or not resample_blocks:
        return samples, None
    rng = np.random.default_rng([int(seed), 1])
    blocks = rng.integers(0, n_blocks, size=(int(n_boot), n_blocks), dtype=np.int64)
    return samples, resample_weights(blocks, n_blocks)


def _pooled(stats_by_replicate, samples) -> SampleStats:
    if isinstance(stats_by_replicate, SampleStats):
        stats_by_replicate = [stats_by_replicate]
    stats = pool_replicates(stats_by_replicate)
    if samples is not None:
        stats = stats.subset(samples)
    if stats.n_samples == 0:
        raise ImpbenchError("no test samples to bootstrap over")
    return stats


def bootstrap_values(
    stats_by_replicate: Sequence[SampleStats] | SampleStats, n_boot: int = DEFAULT_N_BOOT, seed: int = 0, samples=None,
    resample_blocks: bool = True,
) -> tuple[SampleStats, np.ndarray, np.ndarray]:
    """The pooled statistics, their point values and every resample's values.

    Returns ``(stats, point, resampled)``: ``point`` float64 (n_metrics, n_groups) over all
    (selected) samples once; ``resampled`` float64 (n_boot, n_metrics, n_groups); metrics in
    ``stats.metric_names`` order, groups ``stats.metric_groups`` (bins, then overall).
    """
    stats = _pooled(stats_by_replicate, samples)
    weights, block_weights = two_way_weights(stats.n_samples, stats.n_blocks, n_boot, seed, resample_blocks)
    return stats, stats.values()[0], stats.values(weights, block_weights)


def percentile_ci(resampled: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring NaN resamples; NaN where none is defined."""
    defined = np.isfinite(resampled)
    n_defined = defined.sum(axis=0)
    tail = (1.0 - level) / 2 * 100
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            low, high = np.nanpercentile(resampled, [tail, 100 - tail], axis=0)
    return low, high, n_defined


def _frame(stats: SampleStats, columns: dict[str, np.ndarray], order: list[str]) -> pd.DataFrame:
    names = stats.metric_names
    groups = stats.metric_groups
    data = {
        "metric": np.repeat(names, len(groups)),
        "bin": np.tile(groups, len(names)),
    }
    data.update({key: np.asarray(value).reshape(-1) for key, value in columns.items()})
    return pd.DataFrame(data, columns=order)


def bootstrap_metrics(
    stats_by_replicate: Sequence[SampleStats] | SampleStats,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    samples=None,
    level: float = CI_LEVEL,
    resample_blocks: bool = True,
) -> pd.DataFrame:
    """95% percentile CIs of every pooled metric, per bin and overall.

    stats_by_replicate : the ``Scores.sample_stats`` of every replicate of one imputer, level
        and protocol (or one ``SampleStats``).
    samples : index array or boolean mask over test samples (e.g. one cohort), or None.
    Returns columns ``metric, bin, value, ci_low, ci_high, n_boot``: ``value`` pools all
    replicates' cells of the selected samples (not a mean over replicates), ``n_boot`` counts
    the resamples where the metric is defined (the CI is NaN when none is).
    """
    stats, point, resampled = bootstrap_values(stats_by_replicate, n_boot, seed, samples, resample_blocks)
    low, high, n_defined = percentile_ci(resampled, level)
    return _frame(stats, {"value": point, "ci_low": low, "ci_high": high, "n_boot": n_defined}, BOOTSTRAP_COLUMNS)


def paired_differences(
    stats_a: Sequence[SampleStats] | SampleStats,
    stats_b: Sequence[SampleStats] | SampleStats,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    samples=None,
    level: float = CI_LEVEL,
    resample_blocks: bool = True,
) -> pd.DataFrame:
    """Difference a - b of every pooled metric, with a paired bootstrap CI.

    stats_a, stats_b : two imputers' ``sample_stats`` of the same replicates (same masks, same
        order) and protocol. Both are resampled with the same indices.
    Returns columns ``metric, bin, value_a, value_b, difference, ci_low, ci_high, n_boot``
    (``n_boot``: resamples where both are defined). A CI that excludes 0 says the two differ
    beyond the sampling noise of the test samples.
    """
    pooled_a = _pooled(stats_a, samples)
    pooled_b = _pooled(stats_b, samples)
    if (pooled_a.protocol, pooled_a.labels, pooled_a.tables.shape) != (pooled_b.protocol, pooled_b.labels, pooled_b.tables.shape):
        raise ImpbenchError("paired differences need the same protocol, bins and samples for both imputers")
    weights, block_weights = two_way_weights(pooled_a.n_samples, pooled_a.n_blocks, n_boot, seed, resample_blocks)
    point_a, point_b = pooled_a.values()[0], pooled_b.values()[0]
    diff = pooled_a.values(weights, block_weights) - pooled_b.values(weights, block_weights)
    low, high, n_defined = percentile_ci(diff, level)
    columns = {"value_a": point_a, "value_b": point_b, "difference": point_a - point_b,
               "ci_low": low, "ci_high": high, "n_boot": n_defined}  # fmt: skip
    return _frame(pooled_a, columns, PAIRED_COLUMNS)
