"""Calibration of an imputer's probabilities and its estimated per-variant quality. API:

- ``reliability_table(truth, imputation, mask, n_bins=10) -> DataFrame`` (one replicate)
- ``pool_reliability(tables) -> DataFrame`` (several replicates, by summing counts)
- ``expected_calibration_error(table) -> float``
- ``estimated_variant_dr2(imputation, mask) -> float64 (n_variants,)``
- ``quality_correlation(true_r2, estimated, reported=None) -> DataFrame``

Scored cells are those of the ``standard`` protocol: masked cells at covered variants.

Reliability. For each scored cell the *confidence* is the probability the imputer gave to the
dosage class of its call (0|0; 0|1 and 1|0 summed; 1|1); the cell is *concordant* when the
call's dosage class is the true one. Cells are grouped by confidence into ``n_bins`` equal bins
of [0, 1] (``[lo, hi)``, the last closed); a calibrated imputer has concordance = mean
confidence in every bin. ECE = sum over bins of (cells in bin / all cells) x |concordance -
mean confidence|.

Estimated quality. Beagle's DR2 (estimated squared correlation of the imputed and true ALT
dosage), computed from the probabilities of the scored cells only, not of observed cells,
which are one-hot and would push it to 1. With d_i = P(het) + 2 P(hom-alt) and
e_i = P(het) + 4 P(hom-alt) over the n scored cells of a variant:

    DR2 = (sum d_i^2 - (sum d_i)^2 / n) / (sum e_i - (sum d_i)^2 / n),

0 where the denominator is 0 (every cell certain and equal), clipped to [0, 1]; NaN without a
scored cell or without probabilities. It is the same on the ALT and on the minor allele.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from impbench.genotypes import CODE_DOSAGE_CLASS
from impbench.imputers.base import Imputation

__all__ = [
    "RELIABILITY_COLUMNS",
    "QUALITY_COLUMNS",
    "reliability_table",
    "pool_reliability",
    "expected_calibration_error",
    "estimated_variant_dr2",
    "quality_correlation",
]

RELIABILITY_COLUMNS = ["bin_lo", "bin_hi", "n_genotypes", "sum_confidence", "n_concordant", "mean_confidence", "concordance"]
QUALITY_COLUMNS = ["source", "n_variants", "pearson_r", "spearman_r", "mean_estimated", "mean_true"]
#: Cells read at once.
BLOCK_CELLS = 1 << 22


def _scored_blocks(mask: np.ndarray, covered: np.ndarray):
    """Yield (row0, row1, flat indices of scored cells within the block)."""
    n_samples, n_variants = mask.shape
    rows = max(1, BLOCK_CELLS // max(n_variants, 1))
    for row0 in range(0, n_samples, rows):
        row1 = min(row0 + rows, n_samples)
        cells = np.flatnonzero(mask[row0:row1] & covered[None, :])
        if cells.size:
            yield row0, row1, cells


def _finish_reliability(table: pd.DataFrame) -> pd.DataFrame:
    n = table["n_genotypes"].to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["mean_confidence"] = np.where(n > 0, table["sum_confidence"] / np.maximum(n, 1), np.nan)
        table["concordance"] = np.where(n > 0, table["n_concordant"] / np.maximum(n, 1), np.nan)
    return table[RELIABILITY_COLUMNS]


def reliability_table(truth: np.ndarray, imputation: Imputation, mask: np.ndarray, n_bins: int = 10) -> pd.DataFrame | None:
    """Confidence of the called genotype against observed concordance, in ``n_bins`` bins.

    truth : uint8 (n_samples, n_variants) codes; mask : bool, same shape; ``imputation.probs``
    float (n_samples, n_variants, 4). Returns columns ``RELIABILITY_COLUMNS`` (one row per bin;
    counts and sums so that replicates pool with ``pool_reliability``), or None when the
    imputation has no probabilities.
    """
    if imputation.probs is None:
        return None
    truth = np.asarray(truth)
    mask = np.asarray(mask, dtype=bool)
    covered = np.asarray(imputation.covered, dtype=bool)
    calls = np.asarray(imputation.calls)
    probs = np.asarray(imputation.probs)
    n = np.zeros(n_bins)
    sum_confidence = np.zeros(n_bins)
    n_concordant = np.zeros(n_bins)
    for row0, row1, cells in _scored_blocks(mask, covered):
        cell_probs = probs[row0:row1].reshape(-1, 4)[cells].astype(np.float64)
        called = CODE_DOSAGE_CLASS[calls[row0:row1].reshape(-1)[cells]]
        true_class = CODE_DOSAGE_CLASS[truth[row0:row1].reshape(-1)[cells]]
        class_probs = np.stack([cell_probs[:, 0], cell_probs[:, 1] + cell_probs[:, 2], cell_probs[:, 3]], axis=1)
        confidence = np.clip(class_probs[np.arange(len(cells)), called], 0.0, 1.0)
        which = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
        n += np.bincount(which, minlength=n_bins)
        sum_confidence += np.bincount(which, weights=confidence, minlength=n_bins)
        n_concordant += np.bincount(which, weights=(called == true_class), minlength=n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    table = pd.DataFrame({"bin_lo": edges[:-1], "bin_hi": edges[1:], "n_genotypes": n.astype(np.int64),
                          "sum_confidence": sum_confidence, "n_concordant": n_concordant.astype(np.int64)})  # fmt: skip
    return _finish_reliability(table)


def pool_reliability(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Several replicates' reliability tables (same bins) as one, by summing the counts."""
    tables = [t for t in tables if t is not None]
    if not tables:
        return pd.DataFrame(columns=RELIABILITY_COLUMNS)
    pooled = tables[0][["bin_lo", "bin_hi"]].copy()
    for column in ("n_genotypes", "sum_confidence", "n_concordant"):
        pooled[column] = sum(t[column].to_numpy() for t in tables)
    return _finish_reliability(pooled)


def expected_calibration_error(table: pd.DataFrame) -> float:
    """sum_b (n_b / N) |concordance_b - mean confidence_b|; NaN without cells."""
    if table is None or len(table) == 0:
        return float("nan")
    n = table["n_genotypes"].to_numpy(np.float64)
    total = n.sum()
    if total == 0:
        return float("nan")
    gap = np.abs(table["concordance"].to_numpy(np.float64) - table["mean_confidence"].to_numpy(np.float64))
    return float(np.sum(np.where(n > 0, n * gap, 0.0)) / total)


def estimated_variant_dr2(imputation: Imputation, mask: np.ndarray) -> np.ndarray:
    """DR2 per variant from the probabilities of its scored (masked, covered) cells only.

    Returns float64 (n_variants,): see the module docstring; NaN where a variant has no scored
    cell, and everywhere when the imputation has no probabilities.
    """
    mask = np.asarray(mask, dtype=bool)
    n_variants = mask.shape[1]
    if imputation.probs is None:
        return np.full(n_variants, np.nan)
    probs = np.asarray(imputation.probs)
    covered = np.asarray(imputation.covered, dtype=bool)
    n = np.zeros(n_variants)
    sum_d = np.zeros(n_variants)
    sum_d2 = np.zeros(n_variants)
    sum_e = np.zeros(n_variants)
    for row0, row1, cells in _scored_blocks(mask, covered):
        p = probs[row0:row1].reshape(-1, 4)[cells].astype(np.float64)
        variant = cells % n_variants
        het = p[:, 1] + p[:, 2]
        d = het + 2 * p[:, 3]
        n += np.bincount(variant, minlength=n_variants)
        sum_d += np.bincount(variant, weights=d, minlength=n_variants)
        sum_d2 += np.bincount(variant, weights=d * d, minlength=n_variants)
        sum_e += np.bincount(variant, weights=het + 4 * p[:, 3], minlength=n_variants)
    with np.errstate(invalid="ignore", divide="ignore"):
        correction = sum_d * sum_d / np.maximum(n, 1)
        numerator = np.maximum(sum_d2 - correction, 0.0)
        denominator = sum_e - correction
        dr2 = np.where(denominator > 1e-12 * np.maximum(n, 1), numerator / denominator, 0.0)
    return np.where(n > 0, np.clip(dr2, 0.0, 1.0), np.nan)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def quality_correlation(true_r2: np.ndarray, estimated: np.ndarray, reported: np.ndarray | None = None) -> pd.DataFrame:
    """How well an estimated per-variant quality predicts the true per-variant r².

    true_r2 : float (n_variants,), ``Scores.variant_r2`` (NaN where not reported).
    estimated : float (n_variants,), ``estimated_variant_dr2``.
    reported : float (n_variants,) or None, the imputer's own quality (Beagle's DR2; NaN where
        it has none).
    Returns one row per source (``estimated``, then ``reported`` when given) with columns
    ``QUALITY_COLUMNS``, over the variants where both values are finite; correlations NaN
    with fewer than 3 such variants or a constant side.
    """
    true_r2 = np.asarray(true_r2, dtype=np.float64)
    rows = []
    for source, values in (("estimated", estimated), ("reported", reported)):
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64)
        if values.shape != true_r2.shape:
            raise ValueError(f"{source} quality has shape {values.shape}, expected {true_r2.shape}")
        both = np.isfinite(values) & np.isfinite(true_r2)
        x, y = values[both], true_r2[both]
        varied = len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
        rows.append({
            "source": source,
            "n_variants": int(both.sum()),
            "pearson_r": float(np.corrcoef(x, y)[0, 1]) if varied else float("nan"),
            "spearman_r": _spearman(x, y) if varied else float("nan"),
            "mean_estimated": float(x.mean()) if len(x) else float("nan"),
            "mean_true": float(y.mean()) if len(y) else float("nan"),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=QUALITY_COLUMNS)
