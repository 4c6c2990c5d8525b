"""Per-sample sufficient statistics and the pooled metrics computed from them.

Every pooled metric of ``impbench.scoring.metrics`` (a bin's dosage R², GT r², concordance,
macro precision/recall/F1, IQS, NRD, error rates by true class, phased accuracy; the paper
protocol's five) is a function of two summaries of the bin's scored cells:

- the 4x4 table of truth code x call code (``tables``), and
- the moments of the (truth dosage, imputed dosage) pairs (``moments``: count, means, sums of
  squared deviations and co-deviation; ``standard`` only).

Both add up over disjoint sets of cells, so ``SampleStats`` keeps them per test sample and MAF
bin, and any multiset of samples (a bootstrap resample, one cohort, all samples of several
replicates) is scored by summing, with integer multiplicities, and applying the formulas once.
``score`` computes its own pooled values this way (all samples, weight 1), so a resample that
draws every sample once gives exactly ``score``'s numbers.

Orientation (``standard``): tables and moments are on the **minor allele** of the training
split: at a variant whose training ALT frequency exceeds 0.5 the codes are flipped (0|0 <-> 1|1,
0|1 <-> 1|0) and the dosage ``d`` becomes ``2 - d`` before anything is counted. ``paper``
keeps the ALT coding of the published evaluation.

Exactness: truth dosages are integers and imputed dosages float32; sums of up to 2^29 such
values are exact in float64, so a group whose values are all equal gets a sum of squared
deviations of exactly 0 however it is split or weighted (``Moments.weighted``), and
"undefined R²" never depends on a tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import CODE_DOSAGE_CLASS

#: The label of the bin that pools every MAF bin.
OVERALL = "overall"

__all__ = [
    "STANDARD_POOLED",
    "PAPER_POOLED",
    "Moments",
    "SampleStats",
    "pool_replicates",
    "pooled_values",
]

#: Standard-protocol metrics computed from the pooled tables and moments (bootstrappable).
STANDARD_POOLED = (
    "r2",
    "gt_r2",
    "concordance",
    "precision",
    "recall",
    "f1",
    "iqs",
    "nrd",
    "error_hom_major",
    "error_het",
    "error_hom_minor",
    "phased_accuracy",
)
#: Paper-protocol metrics (all from the ALT-coded 4x4 tables).
PAPER_POOLED = ("accuracy", "precision", "recall", "f1", "r2")

#: Phased code (index 0..3 = codes 1..4) -> dosage class (0, 1, 2), as a (4, 3) 0/1 matrix.
_PHASED_TO_DOSAGE = np.eye(3, dtype=np.int64)[CODE_DOSAGE_CLASS[1:5].astype(np.int64)]
#: Elements of the (resamples x samples x groups) arrays formed at once by ``SampleStats.values``.
_CHUNK_ELEMENTS = 1 << 22


class Moments(NamedTuple):
    """Per-group sufficient statistics of paired values (x, y): count, means, sums of squared
    deviations from the mean and the sum of co-deviations. Arrays of one shape."""

    n: np.ndarray
    mean_x: np.ndarray
    mean_y: np.ndarray
    m2_x: np.ndarray
    m2_y: np.ndarray
    c_xy: np.ndarray

    @classmethod
    def zeros(cls, shape) -> "Moments":
        return cls(*(np.zeros(shape) for _ in range(6)))

    @classmethod
    def of(cls, group: np.ndarray, n_groups: int, x: np.ndarray, y: np.ndarray) -> "Moments":
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

    def merge(self, other: "Moments") -> "Moments":
        """Moments of the union of two disjoint sets of cells (Chan et al. pairwise update)."""
        n = self.n + other.n
        safe = np.maximum(n, 1.0)
        delta_x = other.mean_x - self.mean_x
        delta_y = other.mean_y - self.mean_y
        weight = self.n * other.n / safe
        return Moments(
            n,
            np.where(other.n > 0, self.mean_x + delta_x * (other.n / safe), self.mean_x),
            np.where(other.n > 0, self.mean_y + delta_y * (other.n / safe), self.mean_y),
            self.m2_x + other.m2_x + delta_x * delta_x * weight,
            self.m2_y + other.m2_y + delta_y * delta_y * weight,
            self.c_xy + other.c_xy + delta_x * delta_y * weight,
        )

    def combine(self, group: np.ndarray, n_groups: int) -> "Moments":
        """Moments of unions of 1-D groups: item ``i`` goes to ``group[i]``."""
        n = np.bincount(group, weights=self.n, minlength=n_groups)
        safe = np.maximum(n, 1.0)
        mean_x = np.bincount(group, weights=self.n * self.mean_x, minlength=n_groups) / safe
        mean_y = np.bincount(group, weights=self.n * self.mean_y, minlength=n_groups) / safe
        dx = self.mean_x - mean_x[group]
        dy = self.mean_y - mean_y[group]
        return Moments(
            n,
            mean_x,
            mean_y,
            np.bincount(group, weights=self.m2_x + self.n * dx * dx, minlength=n_groups),
            np.bincount(group, weights=self.m2_y + self.n * dy * dy, minlength=n_groups),
            np.bincount(group, weights=self.c_xy + self.n * dx * dy, minlength=n_groups),
        )

    def total(self, axis: int) -> "Moments":
        """Moments of the union of all groups along ``axis`` (that axis removed)."""
        n = self.n.sum(axis=axis)
        safe = np.maximum(n, 1.0)
        mean_x = (self.n * self.mean_x).sum(axis=axis) / safe
        mean_y = (self.n * self.mean_y).sum(axis=axis) / safe
        dx = self.mean_x - np.expand_dims(mean_x, axis)
        dy = self.mean_y - np.expand_dims(mean_y, axis)
        return Moments(
            n,
            mean_x,
            mean_y,
            (self.m2_x + self.n * dx * dx).sum(axis=axis),
            (self.m2_y + self.n * dy * dy).sum(axis=axis),
            (self.c_xy + self.n * dx * dy).sum(axis=axis),
        )

    def weighted(self, weights: np.ndarray) -> "Moments":
        """Moments of multisets of samples. self : arrays (S, R) (sample x group); weights :
        (B, S) non-negative integer multiplicities. Returns arrays (B, R)."""
        w = np.asarray(weights, dtype=np.float64)
        n = w @ self.n
        safe = np.maximum(n, 1.0)
        mean_x = (w @ (self.n * self.mean_x)) / safe
        mean_y = (w @ (self.n * self.mean_y)) / safe
        dx = self.mean_x[None] - mean_x[:, None]  # (B, S, R)
        dy = self.mean_y[None] - mean_y[:, None]
        wn = w[:, :, None] * self.n[None]
        wn_dx = wn * dx
        return Moments(
            n,
            mean_x,
            mean_y,
            w @ self.m2_x + (wn_dx * dx).sum(axis=1),
            w @ self.m2_y + (wn * dy * dy).sum(axis=1),
            w @ self.c_xy + (wn_dx * dy).sum(axis=1),
        )

    def take(self, index) -> "Moments":
        return Moments(*(a[index] for a in self))

    def r2(self) -> np.ndarray:
        """Squared Pearson correlation of truth x and prediction y, clipped to 1. NaN where the
        truth is constant (no variance to explain; includes groups of fewer than two cells);
        0 where the truth varies but the prediction is constant (it explains none of it)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            value = self.c_xy * self.c_xy / (self.m2_x * self.m2_y)
        value = np.where(self.m2_y > 0, np.minimum(value, 1.0), 0.0)
        return np.where(self.m2_x > 0, value, np.nan)


# --------------------------------------------------------------------------- table metrics


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
    """Non-reference discordance on the (oriented) 3x3 table: discordant cells / cells where
    truth or call is not class 0, i.e. (N - trace) / (N - D[0, 0]); NaN when that is 0."""
    n = dosage_confusion.sum(axis=(1, 2))
    trace = np.trace(dosage_confusion, axis1=1, axis2=2)
    denominator = n - dosage_confusion[:, 0, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (n - trace) / np.maximum(denominator, 1), np.nan)


def _class_errors(dosage_confusion: np.ndarray) -> np.ndarray:
    """Error rate per true class: 1 - D[k, k] / t_k, float64 (n_groups, 3); NaN where t_k = 0."""
    true_k = dosage_confusion.sum(axis=2)
    tp = np.diagonal(dosage_confusion, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(true_k > 0, (true_k - tp) / np.maximum(true_k, 1), np.nan)


def _table_r2(confusion: np.ndarray, values: np.ndarray, constant_call_zero: bool) -> np.ndarray:
    """Squared Pearson correlation of truth and call values from a (G, K, K) table whose
    classes take ``values``; NaN where the truth holds a single class; where the calls do,
    0 when ``constant_call_zero`` (the standard GT r²) else NaN (the paper's code r²)."""
    table = confusion.astype(np.float64)
    n = table.sum(axis=(1, 2))
    rows = table.sum(axis=2)
    cols = table.sum(axis=1)
    safe = np.maximum(n, 1.0)[:, None]
    mean_x = (rows * values).sum(axis=1, keepdims=True) / safe
    mean_y = (cols * values).sum(axis=1, keepdims=True) / safe
    dx = values[None, :] - mean_x
    dy = values[None, :] - mean_y
    m2_x = (rows * dx * dx).sum(axis=1)
    m2_y = (cols * dy * dy).sum(axis=1)
    c_xy = np.einsum("gtc,gt,gc->g", table, dx, dy)
    truth_varies = (rows > 0).sum(axis=1) > 1
    calls_vary = (cols > 0).sum(axis=1) > 1
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.minimum(c_xy * c_xy / (m2_x * m2_y), 1.0)
    value = np.where(calls_vary, value, 0.0 if constant_call_zero else np.nan)
    return np.where(truth_varies, value, np.nan)


def dosage_confusion(phased: np.ndarray) -> np.ndarray:
    """(G, 4, 4) phased tables -> (G, 3, 3) dosage-class tables (0|1 and 1|0 merged)."""
    return np.einsum("gtc,ti,cj->gij", phased, _PHASED_TO_DOSAGE, _PHASED_TO_DOSAGE)


def pooled_values(protocol: str, phased: np.ndarray, moments: Moments | None) -> dict[str, np.ndarray]:
    """Every pooled metric of each group.

    phased : int64 (G, 4, 4) truth code x call code (minor-allele oriented for ``standard``).
    moments : ``Moments`` of arrays (G,) of (true dosage, imputed dosage); ``standard`` only.
    Returns ``{metric: float64 (G,)}`` for ``STANDARD_POOLED`` or ``PAPER_POOLED``; every
    value NaN in a group without cells.
    """
    phased = np.asarray(phased, dtype=np.int64)
    empty = phased.sum(axis=(1, 2)) == 0
    if protocol == "standard":
        table = dosage_confusion(phased)
        precision, recall, f1 = _macro_scores(table)
        errors = _class_errors(table)
        values = {
            "r2": moments.r2(),
            "gt_r2": _table_r2(table, np.arange(3, dtype=np.float64), constant_call_zero=True),
            "concordance": _accuracy(table),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "iqs": _iqs(table),
            "nrd": _nrd(table),
            "error_hom_major": errors[:, 0],
            "error_het": errors[:, 1],
            "error_hom_minor": errors[:, 2],
            "phased_accuracy": _accuracy(phased),
        }
    else:
        precision, recall, f1 = _macro_scores(phased)
        values = {
            "accuracy": _accuracy(phased),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "r2": _table_r2(phased, np.arange(4, dtype=np.float64), constant_call_zero=False),
        }
    return {name: np.where(empty, np.nan, value).astype(np.float64) for name, value in values.items()}


# --------------------------------------------------------------------------- per-sample stats


@dataclass
class SampleStats:
    """Sufficient statistics of one scoring, per test sample and MAF bin.

    protocol : "standard" or "paper".
    labels : the bin labels (``n_bins``); ``metric_groups`` adds "overall".
    tables : int64 (n_samples, n_bins + 1, 4, 4): truth code x call code counts of each
        sample's scored cells per bin; slot ``n_bins`` holds variants in no bin (they count in
        "overall" only). Minor-allele oriented under ``standard``, ALT-coded under ``paper``.
    moments : ``Moments`` of arrays (n_samples, n_bins + 1) of (true dosage, imputed dosage),
        minor-allele oriented; None under ``paper``.
    """

    protocol: str
    labels: tuple[str, ...]
    tables: np.ndarray
    moments: Moments | None

    @property
    def n_samples(self) -> int:
        return int(self.tables.shape[0])

    @property
    def metric_names(self) -> tuple[str, ...]:
        return STANDARD_POOLED if self.protocol == "standard" else PAPER_POOLED

    @property
    def metric_groups(self) -> list[str]:
        return list(self.labels) + [OVERALL]

    def subset(self, samples) -> "SampleStats":
        """The statistics of some samples (an index array or a boolean mask over samples),
        e.g. one cohort's: ``stats.subset(truth.cohort == "YRI")``."""
        index = np.asarray(samples)
        if index.dtype == bool:
            if index.shape != (self.n_samples,):
                raise ValueError(f"sample mask has shape {index.shape}, expected ({self.n_samples},)")
            index = np.flatnonzero(index)
        return SampleStats(self.protocol, self.labels, self.tables[index],
                           None if self.moments is None else self.moments.take(index))  # fmt: skip

    def _report_groups(self) -> tuple[np.ndarray, Moments | None]:
        """Per sample: bins then overall. tables (S, R, 4, 4), moments arrays (S, R)."""
        n_bins = len(self.labels)
        tables = np.concatenate([self.tables[:, :n_bins], self.tables.sum(axis=1, keepdims=True)], axis=1)
        if self.moments is None:
            return tables, None
        overall = self.moments.total(axis=1)
        moments = Moments(*(np.concatenate([a[:, :n_bins], o[:, None]], axis=1) for a, o in zip(self.moments, overall)))
        return tables, moments

    def values(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Pooled metrics of multisets of samples.

        weights : int (B, n_samples) multiplicities (None: every sample once, B = 1).
        Returns float64 (B, n_metrics, n_bins + 1): ``metric_names`` x (bins, overall).
        """
        if weights is None:
            weights = np.ones((1, self.n_samples), dtype=np.int64)
        weights = np.asarray(weights)
        tables, moments = self._report_groups()
        n_groups = tables.shape[1]
        flat_tables = tables.reshape(self.n_samples, -1).astype(np.float64)
        names = self.metric_names
        out = np.empty((len(weights), len(names), n_groups))
        chunk = max(1, _CHUNK_ELEMENTS // max(1, self.n_samples * n_groups))
        for b0 in range(0, len(weights), chunk):
            w = weights[b0 : b0 + chunk].astype(np.float64)
            n_b = len(w)
            summed = np.rint(w @ flat_tables).astype(np.int64).reshape(n_b * n_groups, 4, 4)
            pooled_moments = None
            if moments is not None:
                pooled_moments = Moments(*(a.reshape(-1) for a in moments.weighted(w)))
            values = pooled_values(self.protocol, summed, pooled_moments)
            out[b0 : b0 + n_b] = np.stack([values[name].reshape(n_b, n_groups) for name in names], axis=1)
        return out


def pool_replicates(stats_by_replicate: Sequence[SampleStats]) -> SampleStats:
    """The statistics of several replicates (masks) of the same test samples, pooled per
    sample: a sample's cells are those of all replicates together. Raises ``ImpbenchError``
    when the replicates differ in protocol, bins or samples."""
    stats_by_replicate = list(stats_by_replicate)
    if not stats_by_replicate:
        raise ImpbenchError("no replicate statistics to pool")
    first = stats_by_replicate[0]
    for other in stats_by_replicate[1:]:
        if other.protocol != first.protocol or tuple(other.labels) != tuple(first.labels) or other.tables.shape != first.tables.shape:
            raise ImpbenchError("replicate statistics differ in protocol, bins or samples; they cannot be pooled")
    tables = sum(s.tables for s in stats_by_replicate)
    moments = first.moments
    if moments is not None:
        for other in stats_by_replicate[1:]:
            moments = moments.merge(other.moments)
    return SampleStats(first.protocol, tuple(first.labels), tables, moments)
