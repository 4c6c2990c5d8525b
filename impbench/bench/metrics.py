"""MAF-stratified imputation metrics (both protocols). API:

- ``DEFAULT_BIN_EDGES``, ``PROTOCOLS = ("standard", "paper")``
- ``bin_labels(edges) -> list[str]``; ``maf_bins(maf, edges) -> int64 (n_variants,)``
- ``score(truth, imputation, mask, maf, protocol="standard", bin_edges=DEFAULT_BIN_EDGES) -> Scores``

Also ``STANDARD_METRICS``, ``PAPER_METRICS``, ``OVERALL``, ``check_bin_edges`` and ``Scores``.
``docs/metrics.md`` gives every formula and edge case; this docstring is the short version.

Scored cells. ``standard``: masked cells at covered variants. ``paper``: every cell (masked or
not) at covered variants, as the published evaluation scored them. Every statistic pools all
scored cells of a MAF bin (not an average over SNPs), per bin and ``overall`` (all variants,
including any whose MAF falls in no bin).

How it is computed (fast and exact). The matrix is read in blocks of rows; per block only the
scored cells are gathered. One ``bincount`` over the combined index ``(bin, truth code, call
code)`` gives every bin's 4x4 phased confusion table at once; the 3x3 dosage table and all
classification metrics derive from it. Dosage R² needs per-group moments (count, means, sums of
squared deviations and co-deviation), computed per variant and per sample by two-pass
``bincount`` within a block, merged across blocks with Chan et al.'s pairwise update, and
combined from variants into bins the same way (all terms non-negative: no cancellation).
Because truth dosages are integers and imputed dosages float32 (promoted to float64), a group
whose values are all equal gets a sum of squares of exactly 0, so "undefined R²" is detected
exactly rather than by a tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

from impbench.errors import ImpbenchError
from impbench.genotypes import CODE_DOSAGE_CLASS, N_CALL_CODES
from impbench.imputers.base import Imputation

__all__ = [
    "DEFAULT_BIN_EDGES",
    "PROTOCOLS",
    "STANDARD_METRICS",
    "PAPER_METRICS",
    "OVERALL",
    "Scores",
    "bin_labels",
    "check_bin_edges",
    "maf_bins",
    "score",
]

DEFAULT_BIN_EDGES = (0, 0.005, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
PROTOCOLS = ("standard", "paper")
STANDARD_METRICS = (
    "r2",
    "concordance",
    "precision",
    "recall",
    "f1",
    "iqs",
    "nrd",
    "phased_accuracy",
    "mean_variant_r2",
    "coverage",
)
PAPER_METRICS = ("accuracy", "precision", "recall", "f1", "r2")
#: The label of the row that pools every variant.
OVERALL = "overall"
#: Cells per block read at once (bounds memory; results do not depend on it).
BLOCK_CELLS = 1 << 22

METRIC_COLUMNS = ["protocol", "bin", "bin_lo", "bin_hi", "metric", "value", "n_variants", "n_genotypes"]
PER_SAMPLE_COLUMNS = ["sample_index", "r2", "n_genotypes"]
CONFUSION_COLUMNS = ["protocol", "kind", "truth", "pred", "count"]

#: Phased code (index 0..3 = codes 1..4) -> dosage class (0, 1, 2), as a (4, 3) 0/1 matrix.
_PHASED_TO_DOSAGE = np.eye(3, dtype=np.int64)[CODE_DOSAGE_CLASS[1:5].astype(np.int64)]


@dataclass
class Scores:
    """The scores of one imputation under one protocol.

    metrics : one row per (bin, metric); columns ``protocol, bin, bin_lo, bin_hi, metric,
        value, n_variants, n_genotypes``. Bins in edge order, then ``overall``.
    per_sample : columns ``sample_index, r2, n_genotypes`` (dosage R² over each sample's
        scored cells); ``standard`` only, empty for ``paper``.
    confusion : columns ``protocol, kind, truth, pred, count`` over all scored cells; ``kind``
        ``phased`` (truth/pred codes 1-4, 16 rows) and ``dosage`` (classes 0-2, 9 rows).
    """

    metrics: pd.DataFrame
    per_sample: pd.DataFrame
    confusion: pd.DataFrame


# --------------------------------------------------------------------------- bins


def check_bin_edges(edges: Sequence[float]) -> np.ndarray:
    """``edges`` as float64, or ``ImpbenchError`` unless they are at least two strictly
    increasing finite numbers within [0, 0.5]."""
    try:
        array = np.asarray(edges, dtype=np.float64)
    except (TypeError, ValueError):
        raise ImpbenchError(f"MAF bin edges {edges!r} are not numbers") from None
    if array.ndim != 1 or len(array) < 2:
        raise ImpbenchError(f"MAF bin edges {edges!r}: need at least two edges")
    if not np.all(np.isfinite(array)) or np.any(np.diff(array) <= 0):
        raise ImpbenchError(f"MAF bin edges {edges!r} must be finite and strictly increasing")
    if array[0] < 0 or array[-1] > 0.5:
        raise ImpbenchError(f"MAF bin edges {edges!r} must lie within [0, 0.5] (folded MAF)")
    return array


def _percent(value: float) -> str:
    return f"{round(float(value) * 100, 6):g}"


def bin_labels(edges: Sequence[float] = DEFAULT_BIN_EDGES) -> list[str]:
    """Genetics-paper labels of the bins: ``<0.5%`` for a first bin starting at 0, then
    ``0.5–1%``, ``1–5%``, ... (en dash, percent)."""
    array = check_bin_edges(edges)
    labels = []
    for lo, hi in zip(array[:-1], array[1:]):
        if lo == 0:
            labels.append(f"<{_percent(hi)}%")
        else:
            labels.append(f"{_percent(lo)}–{_percent(hi)}%")
    return labels


def maf_bins(maf: np.ndarray, edges: Sequence[float] = DEFAULT_BIN_EDGES) -> np.ndarray:
    """Bin index of each variant's MAF.

    maf : float, shape (n_variants,). Bin ``b`` holds ``edges[b] <= maf < edges[b + 1]``; the
    last bin is closed (``maf == edges[-1]`` is in it). MAF 0 is in the first bin when the
    edges start at 0. NaN, and values outside ``[edges[0], edges[-1]]``, give -1.
    Returns int64, shape (n_variants,).
    """
    array = check_bin_edges(edges)
    maf = np.asarray(maf, dtype=np.float64)
    index = np.searchsorted(array, maf, side="right").astype(np.int64) - 1
    n_bins = len(array) - 1
    index[maf == array[-1]] = n_bins - 1
    index[(index >= n_bins) | (index < 0) | np.isnan(maf)] = -1
    return index


# --------------------------------------------------------------------------- moments


class _Moments(NamedTuple):
    """Per-group sufficient statistics of paired values (x, y): count, means, sums of squared
    deviations from the mean and the sum of co-deviations. Arrays of one shape (n_groups,)."""

    n: np.ndarray
    mean_x: np.ndarray
    mean_y: np.ndarray
    m2_x: np.ndarray
    m2_y: np.ndarray
    c_xy: np.ndarray

    @classmethod
    def zeros(cls, n_groups: int) -> "_Moments":
        return cls(*(np.zeros(n_groups) for _ in range(6)))

    @classmethod
    def of(cls, group: np.ndarray, n_groups: int, x: np.ndarray, y: np.ndarray) -> "_Moments":
        """Two-pass moments of (x, y) grouped by ``group`` (int array, values < n_groups)."""
        n = np.bincount(group, minlength=n_groups).astype(np.float64)
        safe = np.maximum(n, 1.0)
        mean_x = np.bincount(group, weights=x, minlength=n_groups) / safe
        mean_y = np.bincount(group, weights=y, minlength=n_groups) / safe
        dx = x - mean_x[group]
        dy = y - mean_y[group]
        return cls(
            n,
            mean_x,
            mean_y,
            np.bincount(group, weights=dx * dx, minlength=n_groups),
            np.bincount(group, weights=dy * dy, minlength=n_groups),
            np.bincount(group, weights=dx * dy, minlength=n_groups),
        )

    def merge(self, other: "_Moments") -> "_Moments":
        """Moments of the union of two disjoint sets of cells (Chan et al. pairwise update)."""
        n = self.n + other.n
        safe = np.maximum(n, 1.0)
        delta_x = other.mean_x - self.mean_x
        delta_y = other.mean_y - self.mean_y
        weight = self.n * other.n / safe
        return _Moments(
            n,
            np.where(other.n > 0, self.mean_x + delta_x * (other.n / safe), self.mean_x),
            np.where(other.n > 0, self.mean_y + delta_y * (other.n / safe), self.mean_y),
            self.m2_x + other.m2_x + delta_x * delta_x * weight,
            self.m2_y + other.m2_y + delta_y * delta_y * weight,
            self.c_xy + other.c_xy + delta_x * delta_y * weight,
        )

    def combine(self, group: np.ndarray, n_groups: int) -> "_Moments":
        """Moments of unions of these groups: item ``i`` goes to ``group[i]``."""
        n = np.bincount(group, weights=self.n, minlength=n_groups)
        safe = np.maximum(n, 1.0)
        mean_x = np.bincount(group, weights=self.n * self.mean_x, minlength=n_groups) / safe
        mean_y = np.bincount(group, weights=self.n * self.mean_y, minlength=n_groups) / safe
        dx = self.mean_x - mean_x[group]
        dy = self.mean_y - mean_y[group]
        return _Moments(
            n,
            mean_x,
            mean_y,
            np.bincount(group, weights=self.m2_x + self.n * dx * dx, minlength=n_groups),
            np.bincount(group, weights=self.m2_y + self.n * dy * dy, minlength=n_groups),
            np.bincount(group, weights=self.c_xy + self.n * dx * dy, minlength=n_groups),
        )

    def r2(self) -> np.ndarray:
        """Squared Pearson correlation; NaN where either variable has zero variance (which
        includes groups of fewer than two cells)."""
        defined = (self.m2_x > 0) & (self.m2_y > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = self.c_xy * self.c_xy / (self.m2_x * self.m2_y)
        return np.where(defined, np.minimum(value, 1.0), np.nan)


# --------------------------------------------------------------------------- classification


def _macro_scores(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Macro precision, recall and F1 over the classes present in truth or prediction.

    confusion : int64 (n_groups, K, K), rows truth, columns prediction. Per class k:
    precision = TP/predicted (0 if never predicted), recall = TP/true (0 if never true),
    F1 = 2 TP / (true + predicted). The macro value is the plain mean over present classes;
    NaN when no class is present (no cells).
    """
    tp = np.diagonal(confusion, axis1=1, axis2=2).astype(np.float64)
    true_k = confusion.sum(axis=2).astype(np.float64)
    pred_k = confusion.sum(axis=1).astype(np.float64)
    present = (true_k + pred_k) > 0
    n_present = present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision_k = np.where(pred_k > 0, tp / np.maximum(pred_k, 1), 0.0)
        recall_k = np.where(true_k > 0, tp / np.maximum(true_k, 1), 0.0)
        f1_k = np.where(present, 2 * tp / np.maximum(true_k + pred_k, 1), 0.0)

        def macro(per_class: np.ndarray) -> np.ndarray:
            return np.where(n_present > 0, (per_class * present).sum(axis=1) / n_present, np.nan)

        return macro(precision_k), macro(recall_k), macro(f1_k)


def _accuracy(confusion: np.ndarray) -> np.ndarray:
    n = confusion.sum(axis=(1, 2))
    trace = np.trace(confusion, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, trace / np.maximum(n, 1), np.nan)


def _iqs(confusion: np.ndarray) -> np.ndarray:
    """Lin et al. (2010) imputation quality score on hard calls: (Po - Pc) / (1 - Pc) with
    Po the observed agreement and Pc = sum_k true_k pred_k / N^2 the chance agreement. NaN when
    N = 0 or Pc = 1 (truth and calls all in one and the same class)."""
    n = confusion.sum(axis=(1, 2))
    trace = np.trace(confusion, axis1=1, axis2=2)
    chance_n2 = (confusion.sum(axis=2) * confusion.sum(axis=1)).sum(axis=1)  # Pc * N^2, exact
    n2 = n * n
    defined = (n > 0) & (chance_n2 < n2)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (trace * n.astype(np.float64) - chance_n2) / (n2 - chance_n2).astype(np.float64)
    return np.where(defined, value, np.nan)


def _nrd(dosage_confusion: np.ndarray) -> np.ndarray:
    """Non-reference discordance: discordant cells / cells where truth or call is not
    hom-ref, i.e. (N - trace) / (N - D[0, 0]); NaN when every cell is hom-ref in both."""
    n = dosage_confusion.sum(axis=(1, 2))
    trace = np.trace(dosage_confusion, axis1=1, axis2=2)
    denominator = n - dosage_confusion[:, 0, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (n - trace) / np.maximum(denominator, 1), np.nan)


def _code_r2(confusion: np.ndarray) -> np.ndarray:
    """Squared Pearson correlation between truth and call codes shifted to 0..3, from the 4x4
    table; NaN where truth or calls hold a single code."""
    values = np.arange(N_CALL_CODES, dtype=np.float64)
    table = confusion.astype(np.float64)
    n = table.sum(axis=(1, 2))
    rows = table.sum(axis=2)
    cols = table.sum(axis=1)
    safe = np.maximum(n, 1.0)[:, None]
    mean_x = (rows * values).sum(axis=1, keepdims=True) / safe
    mean_y = (cols * values).sum(axis=1, keepdims=True) / safe
    dx = values[None, :] - mean_x  # (G, 4)
    dy = values[None, :] - mean_y
    m2_x = (rows * dx * dx).sum(axis=1)
    m2_y = (cols * dy * dy).sum(axis=1)
    c_xy = np.einsum("gtc,gt,gc->g", table, dx, dy)
    defined = ((rows > 0).sum(axis=1) > 1) & ((cols > 0).sum(axis=1) > 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.minimum(c_xy * c_xy / (m2_x * m2_y), 1.0)
    return np.where(defined, value, np.nan)


def _dosage_confusion(phased: np.ndarray) -> np.ndarray:
    """(G, 4, 4) phased tables -> (G, 3, 3) dosage-class tables (0|1 and 1|0 merged)."""
    return np.einsum("gtc,ti,cj->gij", phased, _PHASED_TO_DOSAGE, _PHASED_TO_DOSAGE)


# --------------------------------------------------------------------------- score


def _validate(truth, imputation, mask, maf, protocol):
    if protocol not in PROTOCOLS:
        raise ImpbenchError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    truth = np.asarray(truth)
    if truth.ndim != 2:
        raise ValueError(f"truth must be 2-D (n_samples, n_variants), got shape {truth.shape}")
    shape = truth.shape
    calls = np.asarray(imputation.calls)
    dosage = np.asarray(imputation.dosage)
    covered = np.asarray(imputation.covered, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    maf = np.asarray(maf, dtype=np.float64)
    for name, array, expected in (
        ("imputation.calls", calls, shape),
        ("imputation.dosage", dosage, shape),
        ("mask", mask, shape),
        ("imputation.covered", covered, shape[1:]),
        ("maf", maf, shape[1:]),
    ):
        if array.shape != expected:
            raise ValueError(f"{name} has shape {array.shape}, expected {expected}")
    return truth, calls, dosage, covered, mask, maf


def score(
    truth: np.ndarray,
    imputation: Imputation,
    mask: np.ndarray,
    maf: np.ndarray,
    protocol: str = "standard",
    bin_edges: Sequence[float] = DEFAULT_BIN_EDGES,
) -> Scores:
    """Score one imputation of a masked replicate.

    truth : uint8 (n_samples, n_variants), the true codes (1-4 at every scored cell).
    imputation : the imputer's ``Imputation`` for the masked matrix (calls, dosage, covered).
    mask : bool (n_samples, n_variants), True at masked cells.
    maf : float (n_variants,), folded MAF of the training split's truth (binning only).
    protocol : "standard" (masked cells at covered variants) or "paper" (all cells at
        covered variants); see ``docs/metrics.md``.
    bin_edges : MAF bin edges (see ``maf_bins``).
    Raises ``ImpbenchError`` when a scored cell's truth or call is not a code 1-4, or its
    dosage is not finite; ``ValueError`` on mismatched shapes.
    """
    truth, calls, dosage, covered, mask, maf = _validate(truth, imputation, mask, maf, protocol)
    edges = check_bin_edges(bin_edges)
    labels = bin_labels(edges)
    n_bins = len(labels)
    n_samples, n_variants = truth.shape
    variant_bin = maf_bins(maf, edges)
    # slot 0 collects variants in no bin (they count in "overall" only); slot b+1 is bin b
    slot = variant_bin + 1
    n_slots = n_bins + 1
    standard = protocol == "standard"

    phased_counts = np.zeros(n_slots * 16, dtype=np.int64)
    variant_moments = _Moments.zeros(n_variants)
    sample_moments = _Moments.zeros(n_samples)
    rows_per_block = max(1, BLOCK_CELLS // max(n_variants, 1))
    for row0 in range(0, n_samples, rows_per_block):
        row1 = min(row0 + rows_per_block, n_samples)
        if standard:
            scored = mask[row0:row1] & covered[None, :]
        else:
            scored = np.broadcast_to(covered[None, :], (row1 - row0, n_variants))
        cells = np.flatnonzero(scored)
        if cells.size == 0:
            continue
        true_code = truth[row0:row1].reshape(-1)[cells]
        call_code = calls[row0:row1].reshape(-1)[cells]
        if true_code.min() < 1 or true_code.max() > 4:
            raise ImpbenchError(f"truth holds codes outside 1-4 at scored cells (rows {row0}-{row1 - 1})")
        if call_code.min() < 1 or call_code.max() > 4:
            raise ImpbenchError(f"imputation calls hold codes outside 1-4 at scored cells (rows {row0}-{row1 - 1})")
        variant = cells % n_variants
        combined = slot[variant] * 16 + (true_code.astype(np.int64) - 1) * 4 + (call_code.astype(np.int64) - 1)
        phased_counts += np.bincount(combined, minlength=n_slots * 16)
        if not standard:
            continue
        # float32 first (the contract's dtype): exact zero sums of squares for constant groups
        imputed = dosage[row0:row1].reshape(-1)[cells].astype(np.float32).astype(np.float64)
        if not np.all(np.isfinite(imputed)):
            raise ImpbenchError(f"imputation dosage is not finite at scored cells (rows {row0}-{row1 - 1})")
        true_dosage = CODE_DOSAGE_CLASS[true_code].astype(np.float64)
        variant_moments = variant_moments.merge(_Moments.of(variant, n_variants, true_dosage, imputed))
        sample = cells // n_variants
        block_samples = _Moments.of(sample, row1 - row0, true_dosage, imputed)
        for whole, part in zip(sample_moments, block_samples):  # a block holds whole samples
            whole[row0:row1] = part

    # groups: bins 0..n_bins-1, then overall
    per_slot = phased_counts.reshape(n_slots, 4, 4)
    phased = np.concatenate([per_slot[1:], per_slot.sum(axis=0, keepdims=True)])
    dosage_tables = _dosage_confusion(phased)
    n_genotypes = phased.sum(axis=(1, 2))
    group_of_variant = np.where(variant_bin >= 0, variant_bin, n_bins + 1)  # n_bins+1: dropped
    n_variants_group = np.append(np.bincount(group_of_variant, minlength=n_bins + 2)[:n_bins], n_variants)
    empty = n_genotypes == 0

    values: dict[str, np.ndarray] = {}
    if standard:
        precision, recall, f1 = _macro_scores(dosage_tables)
        bin_moments = variant_moments.combine(group_of_variant, n_bins + 2)
        overall_moments = variant_moments.combine(np.zeros(n_variants, dtype=np.int64), 1)
        pooled_r2 = np.append(bin_moments.r2()[:n_bins], overall_moments.r2())
        variant_r2 = variant_moments.r2()
        finite = np.isfinite(variant_r2)
        r2_sum = np.bincount(group_of_variant, weights=np.where(finite, variant_r2, 0.0), minlength=n_bins + 2)[:n_bins]
        r2_count = np.bincount(group_of_variant, weights=finite.astype(np.float64), minlength=n_bins + 2)[:n_bins]
        r2_sum = np.append(r2_sum, np.where(finite, variant_r2, 0.0).sum())
        r2_count = np.append(r2_count, finite.sum())
        n_covered = np.append(
            np.bincount(group_of_variant, weights=covered.astype(np.float64), minlength=n_bins + 2)[:n_bins],
            covered.sum(),
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            values = {
                "r2": pooled_r2,
                "concordance": _accuracy(dosage_tables),
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "iqs": _iqs(dosage_tables),
                "nrd": _nrd(dosage_tables),
                "phased_accuracy": _accuracy(phased),
                "mean_variant_r2": np.where(r2_count > 0, r2_sum / np.maximum(r2_count, 1), np.nan),
                "coverage": np.where(n_variants_group > 0, n_covered / np.maximum(n_variants_group, 1), np.nan),
            }
        for name in STANDARD_METRICS:
            if name != "coverage":
                values[name] = np.where(empty, np.nan, values[name])
        metric_names = STANDARD_METRICS
        per_sample = pd.DataFrame(
            {
                "sample_index": np.arange(n_samples, dtype=np.int64),
                "r2": sample_moments.r2(),
                "n_genotypes": sample_moments.n.astype(np.int64),
            }
        )
    else:
        precision, recall, f1 = _macro_scores(phased)
        values = {"accuracy": _accuracy(phased), "precision": precision, "recall": recall, "f1": f1, "r2": _code_r2(phased)}
        metric_names = PAPER_METRICS
        per_sample = pd.DataFrame(
            {"sample_index": np.zeros(0, dtype=np.int64), "r2": np.zeros(0), "n_genotypes": np.zeros(0, dtype=np.int64)}
        )

    group_labels = labels + [OVERALL]
    lo = np.append(edges[:-1], edges[0])
    hi = np.append(edges[1:], edges[-1])
    n_groups = len(group_labels)
    n_metrics = len(metric_names)
    metrics = pd.DataFrame(
        {
            "protocol": protocol,
            "bin": np.repeat(group_labels, n_metrics),
            "bin_lo": np.repeat(lo, n_metrics),
            "bin_hi": np.repeat(hi, n_metrics),
            "metric": np.tile(metric_names, n_groups),
            "value": np.stack([values[name] for name in metric_names], axis=1).reshape(-1).astype(np.float64),
            "n_variants": np.repeat(n_variants_group, n_metrics).astype(np.int64),
            "n_genotypes": np.repeat(n_genotypes, n_metrics).astype(np.int64),
        },
        columns=METRIC_COLUMNS,
    )
    confusion = _confusion_frame(protocol, phased[-1], dosage_tables[-1])
    return Scores(metrics=metrics, per_sample=per_sample, confusion=confusion)


def _confusion_frame(protocol: str, phased: np.ndarray, dosage: np.ndarray) -> pd.DataFrame:
    phased_truth, phased_pred = np.meshgrid(np.arange(1, 5), np.arange(1, 5), indexing="ij")
    dosage_truth, dosage_pred = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    return pd.DataFrame(
        {
            "protocol": protocol,
            "kind": ["phased"] * 16 + ["dosage"] * 9,
            "truth": np.concatenate([phased_truth.ravel(), dosage_truth.ravel()]).astype(np.int64),
            "pred": np.concatenate([phased_pred.ravel(), dosage_pred.ravel()]).astype(np.int64),
            "count": np.concatenate([phased.ravel(), dosage.ravel()]).astype(np.int64),
        },
        columns=CONFUSION_COLUMNS,
    )
