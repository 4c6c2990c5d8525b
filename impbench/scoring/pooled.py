"""Per-sample sufficient statistics and the pooled metrics computed from them.

Every pooled metric of ``impbench.scoring.metrics`` (a bin's dosage R², GT r², concordance,
macro precision/recall/F1, IQS, NRD, error rates by true class, phased accuracy; the paper
protocol's five) is a function of two summaries of the bin's scored cells:

- the 4x4 table of truth code x call code (``tables``), and
- the moments of the (truth dosage, imputed dosage) pairs (``moments``: count, means, sums of
  squared deviations and co-deviation; ``standard`` only).

Both add up over disjoint sets of cells, so ``SampleStats`` keeps them per test sample, genomic
block and MAF bin, and any multiset of (sample, block) pairs (a two-way bootstrap resample, one
cohort, all samples of several replicates) is scored by summing, with integer multiplicities,
and applying the formulas once. ``score`` computes its own pooled values this way (all pairs,
weight 1), so a resample that draws every sample and block once gives ``score``'s numbers.
``r2_bin_mean`` averages bins' R² into the frequency-fair headline.

Orientation (``standard``): tables and moments are on the **minor allele** of the training
split: at a variant whose training ALT frequency exceeds 0.5 the codes are flipped (0|0 <-> 1|1,
0|1 <-> 1|0) and the dosage ``d`` becomes ``2 - d`` before anything is counted. ``paper``
keeps the ALT coding of the published evaluation.

Exactness: truth dosages are integers and imputed dosages float32; sums of up to 2^29 such
values are exact in float64, so a group whose values are all equal gets a sum of squared
deviations of exactly 0 however it is split or weighted (``SampleStats.values`` says how), and
"undefined R²" never depends on a tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import CODE_DOSAGE_CLASS
from impbench.scoring.moments import Moments

#: The label of the bin that pools every MAF bin.
OVERALL = "overall"

__all__ = [
    "STANDARD_POOLED",
    "PAPER_POOLED",
    "Moments",
    "SampleStats",
    "pool_replicates",
    "pooled_values",
    "r2_bin_mean",
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
    """Sufficient statistics of one scoring, per test sample, genomic block and MAF bin.

    protocol : "standard" or "paper".
    labels : the bin labels (``n_bins``); ``metric_groups`` adds "overall".
    tables : int64 (n_samples, n_blocks, n_bins + 1, 4, 4): truth code x call code counts of
        each sample's scored cells per block of variants and bin; slot ``n_bins`` holds variants
        in no bin (they count in "overall" only). Minor-allele oriented under ``standard``,
        ALT-coded under ``paper``. A 4-D array (n_samples, n_bins + 1, 4, 4) is read as one block.
    moments : ``Moments`` of arrays (n_samples, n_blocks, n_bins + 1) of (true dosage, imputed
        dosage), minor-allele oriented (2-D arrays: one block); None under ``paper``.

    Blocks are the genomic blocks the two-way bootstrap resamples
    (``impbench.scoring.bootstrap.genomic_blocks``); one block when they are not resampled.
    """

    protocol: str
    labels: tuple[str, ...]
    tables: np.ndarray
    moments: Moments | None

    def __post_init__(self) -> None:
        tables = np.asarray(self.tables)
        if tables.ndim == 4:  # one block (the format before blocks)
            tables = tables[:, None]
            if self.moments is not None:
                self.moments = Moments(*(np.asarray(a)[:, None] for a in self.moments))
        if tables.ndim != 5 or tables.shape[-2:] != (4, 4):
            raise ValueError(f"tables have shape {tables.shape}, expected (samples, blocks, bins + 1, 4, 4)")
        self.tables = tables

    @property
    def n_samples(self) -> int:
        return int(self.tables.shape[0])

    @property
    def n_blocks(self) -> int:
        return int(self.tables.shape[1])

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
        """Per sample and block: bins then overall. tables (S, K, R, 4, 4), moments arrays (S, K, R)."""
        n_bins = len(self.labels)
        tables = np.concatenate([self.tables[:, :, :n_bins], self.tables.sum(axis=2, keepdims=True)], axis=2)
        if self.moments is None:
            return tables, None
        overall = self.moments.total(axis=2)
        moments = Moments(*(np.concatenate([a[:, :, :n_bins], o[:, :, None]], axis=2)
                            for a, o in zip(self.moments, overall)))
        return tables, moments

    def _features(self) -> tuple[np.ndarray, np.ndarray | None, int]:
        """Additive per-(sample, block) features: float64 (S, K, F) with F = R * 16 table counts
        then, under ``standard``, 3 R shifted dosage sums (see ``values``); the shift (R,) or None."""
        tables, moments = self._report_groups()
        n_s, n_k, n_r = tables.shape[:3]
        parts = [tables.reshape(n_s, n_k, n_r * 16).astype(np.float64)]
        shift = None
        if moments is not None:
            n_total = moments.n.sum(axis=(0, 1))
            shift = (moments.n * moments.mean_y).sum(axis=(0, 1)) / np.maximum(n_total, 1.0)
            dy = moments.mean_y - shift  # exactly 0 wherever the group's prediction is constant
            parts += [moments.n * dy, moments.m2_y + moments.n * dy * dy, moments.c_xy + moments.n * moments.mean_x * dy]
        return np.concatenate(parts, axis=2), shift, n_r

    def values(self, weights: np.ndarray | None = None, block_weights: np.ndarray | None = None) -> np.ndarray:
        """Pooled metrics of multisets of (sample, block) cells.

        weights : int (B, n_samples) sample multiplicities (None: every sample once, B = 1).
        block_weights : int (B, n_blocks) block multiplicities (None: every block once). A
            (sample, block) pair counts ``weights[b, s] * block_weights[b, k]`` times.
        Returns float64 (B, n_metrics, n_bins + 1): ``metric_names`` x (bins, overall).

        How: every statistic is a sum over (sample, block) pairs: the 4x4 tables, and for the
        dosage R² the sums of (y - c), (y - c)² and x (y - c) with c the group's mean imputed
        dosage over all pairs (a fixed shift, so the sums add up as matrix products); the truth
        dosage sums n, Σx, Σx² come from the tables as exact integers. A group whose truth is
        constant gets a sum of squared deviations of exactly 0 (R² NaN); one whose prediction
        is constant over all pairs exactly 0 too (R² 0).
        """
        features, shift, n_groups = self._features()
        n_s, n_k, n_f = features.shape
        if weights is None:
            weights = np.ones((1, n_s), dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 2 or weights.shape[1] != n_s:
            raise ValueError(f"weights have shape {weights.shape}, expected (B, {n_s})")
        n_b = len(weights)
        if block_weights is not None:
            block_weights = np.asarray(block_weights, dtype=np.float64)
            if block_weights.shape != (n_b, n_k):
                raise ValueError(f"block weights have shape {block_weights.shape}, expected ({n_b}, {n_k})")
        summed = np.empty((n_b, n_f))
        if block_weights is None:
            summed[:] = weights @ features.sum(axis=1)
        else:
            flat = features.reshape(n_s, n_k * n_f)
            chunk = max(1, _CHUNK_ELEMENTS // max(1, n_k * n_f))
            for b0 in range(0, n_b, chunk):
                by_block = (weights[b0 : b0 + chunk] @ flat).reshape(-1, n_k, n_f)
                summed[b0 : b0 + chunk] = np.einsum("bk,bkf->bf", block_weights[b0 : b0 + chunk], by_block)
        tables = np.rint(summed[:, : n_groups * 16]).astype(np.int64).reshape(n_b * n_groups, 4, 4)
        moments = None
        if shift is not None:
            moments = _moments_from_sums(tables, summed[:, n_groups * 16 :].reshape(n_b, 3, n_groups), shift)
        values = pooled_values(self.protocol, tables, moments)
        return np.stack([values[name].reshape(n_b, n_groups) for name in self.metric_names], axis=1)


#: Truth dosage (minor-allele oriented) of the phased codes 1..4 (index 0..3).
_TRUTH_DOSAGE = CODE_DOSAGE_CLASS[1:5].astype(np.int64)


def _moments_from_sums(tables: np.ndarray, sums: np.ndarray, shift: np.ndarray) -> Moments:
    """``Moments`` (arrays (B * R,)) of resampled groups. tables : int64 (B * R, 4, 4);
    sums : float64 (B, 3, R) of Σ(y - c), Σ(y - c)², Σx(y - c); shift : c, float64 (R,)."""
    n_b, _, n_r = sums.shape
    rows = tables.sum(axis=2)  # truth code counts (B * R, 4)
    n = rows.sum(axis=1)
    sum_x = rows @ _TRUTH_DOSAGE
    sum_xx = rows @ (_TRUTH_DOSAGE * _TRUTH_DOSAGE)
    n_m2_x = n * sum_xx - sum_x * sum_x  # int64, exact: n * M2_x
    n_f = n.astype(np.float64)
    safe = np.maximum(n_f, 1.0)
    sum_y, sum_yy, sum_xy = (sums[:, i].reshape(-1) for i in range(3))
    mean_x = sum_x / safe
    return Moments(
        n_f,
        mean_x,
        np.tile(shift, n_b) + sum_y / safe,
        n_m2_x / safe,
        sum_yy - sum_y * sum_y / safe,
        sum_xy - sum_x * sum_y / safe,
    )


def r2_bin_mean(bin_r2: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """The frequency-fair headline: per group of MAF bins, the mean of the bins' pooled R² over
    the bins where it is defined (each bin weighted equally); NaN where none is.

    bin_r2 : float64 (..., n_bins), each bin's pooled dosage R² (NaN: no scored cells, or a
        constant truth). groups : index arrays of bins (a class's bins; every bin for overall).
    Returns float64 (..., n_groups).
    """
    bin_r2 = np.asarray(bin_r2, dtype=np.float64)
    out = np.full(bin_r2.shape[:-1] + (len(groups),), np.nan)
    for g, members in enumerate(groups):
        part = bin_r2[..., np.asarray(members, dtype=np.int64)]
        defined = np.isfinite(part)
        count = defined.sum(axis=-1)
        total = np.where(defined, part, 0.0).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[..., g] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
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
