"""MAF-stratified imputation metrics (both protocols). API:

- ``DEFAULT_BIN_EDGES``, ``PROTOCOLS = ("standard", "paper")``, ``ORIENTATION``
- ``bin_labels(edges) -> list[str]``; ``maf_bins(maf, edges) -> int64 (n_variants,)``
- ``minor_allele_flip(train_alt_freq) -> bool (n_variants,)``
- ``score(truth, imputation, mask, *, train_alt_freq, protocol="standard",
  bin_edges=DEFAULT_BIN_EDGES, min_variant_cells=5) -> Scores``

Also ``STANDARD_METRICS``, ``PAPER_METRICS``, ``OVERALL``, ``check_bin_edges`` and ``Scores``.
``docs/metrics.md`` gives every formula and edge case; this docstring is the short version.

Scored cells. ``standard``: masked cells at covered variants. ``paper``: every cell (masked or
not) at covered variants, as the published evaluation scored them. Every pooled statistic pools
all scored cells of a MAF bin (not an average over SNPs), per bin and ``overall``.

Orientation. Under ``standard`` every dosage metric is on the minor allele of the training
split (``ORIENTATION``): where the training ALT frequency exceeds 0.5, codes and dosages are
flipped before counting, as GLIMPSE2_concordance does. Bins use the folded MAF of the same
frequency.

How it is computed. The matrix is read in blocks of whole rows; per block only the scored
cells are gathered. One ``bincount`` over ``(sample, bin, flip, truth code, call code)`` gives
every sample's 4x4 table per bin; two-pass ``bincount`` moments of the oriented dosages per
(sample, bin) and per variant follow. The per-sample statistics (``Scores.sample_stats``,
``impbench.scoring.pooled.SampleStats``) are summed to give every pooled metric, the same code
the bootstrap (``impbench.scoring.bootstrap``) runs on resampled samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from impbench.errors import ImpbenchError
from impbench.genotypes import CODE_DOSAGE_CLASS
from impbench.imputers.base import Imputation
from impbench.scoring.pooled import OVERALL, PAPER_POOLED, STANDARD_POOLED, Moments, SampleStats, dosage_confusion

__all__ = [
    "DEFAULT_BIN_EDGES",
    "DEFAULT_MIN_VARIANT_CELLS",
    "ORIENTATION",
    "PROTOCOLS",
    "STANDARD_METRICS",
    "PAPER_METRICS",
    "VARIANT_R2_THRESHOLD",
    "OVERALL",
    "Scores",
    "bin_labels",
    "check_bin_edges",
    "maf_bins",
    "minor_allele_flip",
    "score",
]

DEFAULT_BIN_EDGES = (0, 0.005, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
PROTOCOLS = ("standard", "paper")
#: How ``standard`` orients dosages (the runner writes it into the manifest).
ORIENTATION = "minor allele of the training split (codes and dosage flipped where its ALT frequency > 0.5)"
#: Default minimum scored cells behind a per-variant r².
DEFAULT_MIN_VARIANT_CELLS = 5
#: ``frac_variant_r2_ge_0.8`` counts per-variant r² at or above this.
VARIANT_R2_THRESHOLD = 0.8
#: Per-variant summaries (not pooled: no bootstrap CI).
VARIANT_METRICS = ("mean_variant_r2", "median_variant_r2", "frac_variant_r2_ge_0.8", "n_variant_r2")
#: Descriptive metrics of the scored cells (means over replicates in metrics.csv, no CI).
CELL_METRICS = ("coverage", "soft_dosage_fraction")
STANDARD_METRICS = STANDARD_POOLED + VARIANT_METRICS + CELL_METRICS
PAPER_METRICS = PAPER_POOLED
#: The label of the row that pools every variant.
#: Cells per block read at once (bounds memory; results do not depend on it).
BLOCK_CELLS = 1 << 22

METRIC_COLUMNS = ["protocol", "bin", "bin_lo", "bin_hi", "metric", "value", "n_variants", "n_genotypes"]
PER_SAMPLE_COLUMNS = ["sample_index", "r2", "n_genotypes"]
CONFUSION_COLUMNS = ["protocol", "kind", "truth", "pred", "count"]

#: Code -> carries the ALT allele / carries the REF allele (index by code 0-5).
_ALT_CARRIER = np.array([False, False, True, True, True, False])
_REF_CARRIER = np.array([False, True, True, True, False, False])


@dataclass
class Scores:
    """The scores of one imputation under one protocol.

    metrics : one row per (bin, metric); columns ``protocol, bin, bin_lo, bin_hi, metric,
        value, n_variants, n_genotypes``. Bins in edge order, then ``overall``.
    per_sample : columns ``sample_index, r2, n_genotypes`` (minor-allele dosage R² over each
        sample's scored cells); ``standard`` only, empty for ``paper``.
    confusion : columns ``protocol, kind, truth, pred, count`` over all scored cells, ALT-coded
        (as in a VCF); ``kind`` ``phased`` (codes 1-4, 16 rows) and ``dosage`` (0-2, 9 rows).
    sample_stats : per-sample sufficient statistics (``impbench.scoring.pooled.SampleStats``)
        for the bootstrap and per-cohort scores.
    variant_r2 : float64 (n_variants,), each variant's r² where it is reported (enough cells,
        a minor-allele carrier, defined), else NaN; all NaN under ``paper``.
    variant_n_genotypes : int64 (n_variants,), scored cells per variant.
    flipped : bool (n_variants,), True where ``standard`` flipped to the minor allele.
    """

    metrics: pd.DataFrame
    per_sample: pd.DataFrame
    confusion: pd.DataFrame
    sample_stats: SampleStats | None = None
    variant_r2: np.ndarray | None = None
    variant_n_genotypes: np.ndarray | None = None
    flipped: np.ndarray | None = None


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


# --------------------------------------------------------------------------- score


def minor_allele_flip(train_alt_freq: np.ndarray) -> np.ndarray:
    """True where the training split's ALT frequency exceeds 0.5 (the ALT allele is the major
    one): there ``standard`` flips codes and dosages. NaN gives False. bool (n_variants,)."""
    freq = np.asarray(train_alt_freq, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return freq > 0.5


def _validate(truth, imputation, mask, train_alt_freq, protocol):
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
    freq = np.asarray(train_alt_freq, dtype=np.float64)
    for name, array, expected in (
        ("imputation.calls", calls, shape),
        ("imputation.dosage", dosage, shape),
        ("mask", mask, shape),
        ("imputation.covered", covered, shape[1:]),
        ("train_alt_freq", freq, shape[1:]),
    ):
        if array.shape != expected:
            raise ValueError(f"{name} has shape {array.shape}, expected {expected}")
    if np.any((freq < 0) | (freq > 1)):
        raise ValueError("train_alt_freq must lie in [0, 1] (an ALT allele frequency)")
    return truth, calls, dosage, covered, mask, freq


def score(
    truth: np.ndarray,
    imputation: Imputation,
    mask: np.ndarray,
    *,
    train_alt_freq: np.ndarray,
    protocol: str = "standard",
    bin_edges: Sequence[float] = DEFAULT_BIN_EDGES,
    min_variant_cells: int = DEFAULT_MIN_VARIANT_CELLS,
    blocks: np.ndarray | None = None,
) -> Scores:
    """Score one imputation of a masked replicate.

    truth : uint8 (n_samples, n_variants), the true codes (1-4 at every scored cell).
    imputation : the imputer's ``Imputation`` for the masked matrix (calls, dosage, covered).
    mask : bool (n_samples, n_variants), True at masked cells.
    train_alt_freq : float (n_variants,), ALT allele frequency of the training split's truth
        (``impbench.genotypes.alt_allele_frequency(train.codes)``; NaN allowed): bins use its
        folded MAF, ``standard`` flips to the minor allele where it exceeds 0.5.
    protocol : "standard" (masked cells at covered variants) or "paper" (all cells at
        covered variants); see ``docs/metrics.md``.
    bin_edges : MAF bin edges (see ``maf_bins``).
    min_variant_cells : scored cells a variant needs for its r² to be reported (it also needs
        one minor-allele carrier in truth or call).
    blocks : int64 (n_variants,), each variant's genomic block (0 .. n_blocks - 1,
        ``impbench.scoring.bootstrap.genomic_blocks``), the second axis of ``sample_stats``
        that the two-way bootstrap resamples; None: one block.
    ``n_variants`` of a bin counts its variants with at least one scored cell (under
    ``standard`` an array scheme's typed variants have none); ``coverage`` is the covered
    fraction of all the bin's variants.
    Raises ``ImpbenchError`` when a scored cell's truth or call is not a code 1-4, or its
    dosage is not finite; ``ValueError`` on mismatched shapes.
    """
    truth, calls, dosage, covered, mask, freq = _validate(truth, imputation, mask, train_alt_freq, protocol)
    if int(min_variant_cells) != min_variant_cells or min_variant_cells < 2:
        raise ImpbenchError(f"min_variant_cells must be an integer >= 2, got {min_variant_cells!r}")
    edges = check_bin_edges(bin_edges)
    labels = bin_labels(edges)
    n_bins = len(labels)
    n_samples, n_variants = truth.shape
    if blocks is None:
        blocks = np.zeros(n_variants, dtype=np.int64)
    blocks = np.asarray(blocks, dtype=np.int64)
    if blocks.shape != (n_variants,) or (n_variants and blocks.min() < 0):
        raise ValueError(f"blocks must be non-negative int (n_variants,), got shape {blocks.shape}")
    n_blocks = int(blocks.max()) + 1 if n_variants else 1
    variant_bin = maf_bins(np.minimum(freq, 1.0 - freq), edges)
    slot = np.where(variant_bin >= 0, variant_bin, n_bins)  # slot n_bins: in no bin
    n_slots = n_bins + 1
    standard = protocol == "standard"
    flip = minor_allele_flip(freq) if standard else np.zeros(n_variants, dtype=bool)
    block_slot = blocks * n_slots + slot  # per variant: its (block, bin slot)
    slot_flip = (block_slot * 2 + flip).astype(np.int64)
    n_groups_per_sample = n_blocks * n_slots
    cells_per_sample = n_groups_per_sample * 2 * 16

    tables = np.zeros((n_samples, n_blocks, n_slots, 2, 4, 4), dtype=np.int64)
    sample_moments = Moments.zeros((n_samples, n_blocks, n_slots)) if standard else None
    variant_moments = Moments.zeros(n_variants)
    variant_carriers = np.zeros(n_variants)
    variant_cells = np.zeros(n_variants, dtype=np.int64)
    soft_cells = np.zeros(n_slots)
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
        local_sample = cells // n_variants
        combined = (local_sample * cells_per_sample + slot_flip[variant] * 16
                    + (true_code.astype(np.int64) - 1) * 4 + (call_code.astype(np.int64) - 1))  # fmt: skip
        counts = np.bincount(combined, minlength=(row1 - row0) * cells_per_sample)
        tables[row0:row1] = counts.reshape(row1 - row0, n_blocks, n_slots, 2, 4, 4)
        variant_cells += np.bincount(variant, minlength=n_variants)
        if not standard:
            continue
        # float32 first (the contract's dtype): exact zero sums of squares for constant groups
        imputed = dosage[row0:row1].reshape(-1)[cells].astype(np.float32).astype(np.float64)
        if not np.all(np.isfinite(imputed)):
            raise ImpbenchError(f"imputation dosage is not finite at scored cells (rows {row0}-{row1 - 1})")
        soft_cells += np.bincount(slot[variant], weights=imputed != np.rint(imputed), minlength=n_slots)
        true_dosage = CODE_DOSAGE_CLASS[true_code].astype(np.float64)
        cell_flip = flip[variant]
        true_dosage = np.where(cell_flip, 2.0 - true_dosage, true_dosage)
        imputed = np.where(cell_flip, 2.0 - imputed, imputed)
        carrier = np.where(cell_flip, _REF_CARRIER[true_code] | _REF_CARRIER[call_code],
                           _ALT_CARRIER[true_code] | _ALT_CARRIER[call_code])  # fmt: skip
        variant_carriers += np.bincount(variant, weights=carrier, minlength=n_variants)
        variant_moments = variant_moments.merge(Moments.of(variant, n_variants, true_dosage, imputed))
        group = local_sample * n_groups_per_sample + block_slot[variant]
        block = Moments.of(group, (row1 - row0) * n_groups_per_sample, true_dosage, imputed)
        for whole, part in zip(sample_moments, block):  # a block of rows holds whole samples
            whole[row0:row1] = part.reshape(row1 - row0, n_blocks, n_slots)

    # flip axis resolved: reversing the code axes maps code c to 5 - c (0|0 <-> 1|1, 0|1 <-> 1|0)
    alt_coded = tables.sum(axis=3)
    oriented = tables[:, :, :, 0] + tables[:, :, :, 1, ::-1, ::-1] if standard else alt_coded
    stats = SampleStats(protocol, tuple(labels), np.ascontiguousarray(oriented), sample_moments)
    pooled = stats.values()[0]  # (n_metrics, n_bins + 1)
    values = {name: pooled[i] for i, name in enumerate(stats.metric_names)}

    group_tables = np.concatenate([oriented[:, :, :n_bins].sum(axis=(0, 1)), oriented.sum(axis=(0, 1, 2))[None]])
    n_genotypes = group_tables.sum(axis=(1, 2))
    group_of_variant = np.where(variant_bin >= 0, variant_bin, n_bins + 1)  # n_bins+1: dropped
    n_variants_group = np.append(np.bincount(group_of_variant, minlength=n_bins + 2)[:n_bins], n_variants)
    scored_variant = variant_cells > 0
    n_scored_group = np.append(np.bincount(group_of_variant[scored_variant], minlength=n_bins + 2)[:n_bins],
                               scored_variant.sum())
    variant_r2 = np.full(n_variants, np.nan)
    if standard:
        eligible = (variant_moments.n >= min_variant_cells) & (variant_carriers >= 1)
        variant_r2 = np.where(eligible, variant_moments.r2(), np.nan)
        values.update(_variant_summaries(variant_r2, group_of_variant, n_bins))
        n_covered = np.append(
            np.bincount(group_of_variant, weights=covered.astype(np.float64), minlength=n_bins + 2)[:n_bins],
            covered.sum(),
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            values["coverage"] = np.where(n_variants_group > 0, n_covered / np.maximum(n_variants_group, 1), np.nan)
            soft = np.append(soft_cells[:n_bins], soft_cells.sum())
            values["soft_dosage_fraction"] = np.where(n_genotypes > 0, soft / np.maximum(n_genotypes, 1), np.nan)
        metric_names = STANDARD_METRICS
        overall_per_sample = Moments(*(a.reshape(n_samples, -1) for a in sample_moments)).total(axis=1)
        per_sample = pd.DataFrame(
            {
                "sample_index": np.arange(n_samples, dtype=np.int64),
                "r2": overall_per_sample.r2(),
                "n_genotypes": overall_per_sample.n.astype(np.int64),
            }
        )
    else:
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
            "n_variants": np.repeat(n_scored_group, n_metrics).astype(np.int64),
            "n_genotypes": np.repeat(n_genotypes, n_metrics).astype(np.int64),
        },
        columns=METRIC_COLUMNS,
    )
    overall_alt = alt_coded.sum(axis=(0, 1, 2))
    confusion = _confusion_frame(protocol, overall_alt, dosage_confusion(overall_alt[None])[0])
    return Scores(metrics=metrics, per_sample=per_sample, confusion=confusion, sample_stats=stats,
                  variant_r2=variant_r2, variant_n_genotypes=variant_moments.n.astype(np.int64),
                  flipped=flip)  # fmt: skip


def _variant_summaries(variant_r2: np.ndarray, group_of_variant: np.ndarray, n_bins: int) -> dict[str, np.ndarray]:
    """Mean, median, fraction >= ``VARIANT_R2_THRESHOLD`` and count of the reported per-variant
    r² of each bin and overall; float64 (n_bins + 1,) each, NaN (count 0) where none."""
    finite = np.isfinite(variant_r2)
    groups = [np.flatnonzero(finite & (group_of_variant == b)) for b in range(n_bins)] + [np.flatnonzero(finite)]
    out = {name: np.full(n_bins + 1, np.nan) for name in VARIANT_METRICS}
    for g, index in enumerate(groups):
        out["n_variant_r2"][g] = len(index)
        if len(index):
            values = variant_r2[index]
            out["mean_variant_r2"][g] = values.mean()
            out["median_variant_r2"][g] = np.median(values)
            out["frac_variant_r2_ge_0.8"][g] = np.mean(values >= VARIANT_R2_THRESHOLD)
    return out


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
