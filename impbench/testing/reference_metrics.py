"""A slow, plainly written reference of ``impbench.scoring.metrics.score``, for tests.

Loops over cells in plain Python; each metric is written from its definition in
``docs/metrics.md``. ``ref_cells`` gathers the scored cells (minor-allele oriented under
``standard``); ``ref_group_metrics`` scores any list of cells, so a bootstrap resample is
checked by scoring the cells of the drawn samples, duplicates included.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from impbench.scoring.metrics import bin_labels

DOSAGE_OF_CODE = {1: 0, 2: 1, 3: 1, 4: 2}
FLIPPED_CODE = {1: 4, 2: 3, 3: 2, 4: 1}


def ref_pearson_r2(xs, ys, constant_y_zero=True):
    """Squared Pearson correlation, two-pass; NaN when ``xs`` (the truth) is constant or has
    fewer than two values; when ``ys`` is constant, 0 (``constant_y_zero``) or NaN."""
    n = len(xs)
    if n == 0 or len(set(xs)) < 2:
        return math.nan
    if len(set(ys)) < 2:
        return 0.0 if constant_y_zero else math.nan
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
    chance = sum((sum(1 for t, _ in pairs if t == k) / n) * (sum(1 for _, p in pairs if p == k) / n) for k in classes)
    if chance == 1:
        return math.nan
    return (observed - chance) / (1 - chance)


def ref_pooled_metrics(cells, protocol):
    """The pooled metrics of a list of cells (variant, true code, call code, dosage), already
    oriented as ``score`` orients them."""
    n = len(cells)
    if protocol == "paper":
        pairs = [(t, c) for _, t, c, _ in cells]
        precision, recall, f1 = ref_macro(pairs, [1, 2, 3, 4])
        return {
            "accuracy": sum(1 for t, c in pairs if t == c) / n if n else math.nan,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "r2": ref_pearson_r2([t - 1 for t, _ in pairs], [c - 1 for _, c in pairs], constant_y_zero=False),
        }
    pairs = [(DOSAGE_OF_CODE[t], DOSAGE_OF_CODE[c]) for _, t, c, _ in cells]
    precision, recall, f1 = ref_macro(pairs, [0, 1, 2])
    nonref = [(t, p) for t, p in pairs if t != 0 or p != 0]

    def class_error(k):
        true_k = [p for t, p in pairs if t == k]
        return sum(1 for p in true_k if p != k) / len(true_k) if true_k else math.nan

    return {
        "r2": ref_pearson_r2([DOSAGE_OF_CODE[t] for _, t, _, _ in cells], [d for _, _, _, d in cells]),
        "gt_r2": ref_pearson_r2([t for t, _ in pairs], [p for _, p in pairs]),
        "concordance": sum(1 for t, p in pairs if t == p) / n if n else math.nan,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "iqs": ref_iqs(pairs, [0, 1, 2]),
        "nrd": sum(1 for t, p in nonref if t != p) / len(nonref) if nonref else math.nan,
        "error_hom_major": class_error(0),
        "error_het": class_error(1),
        "error_hom_minor": class_error(2),
        "phased_accuracy": sum(1 for _, t, c, _ in cells if t == c) / n if n else math.nan,
    }


def ref_variant_r2(cells, variant, min_cells):
    """A variant's reported r²: enough cells, a minor-allele carrier in truth or call, defined."""
    mine = [(t, c, d) for v, t, c, d in cells if v == variant]
    if len(mine) < min_cells or not any(DOSAGE_OF_CODE[t] > 0 or DOSAGE_OF_CODE[c] > 0 for t, c, _ in mine):
        return math.nan
    return ref_pearson_r2([DOSAGE_OF_CODE[t] for t, _, _ in mine], [d for _, _, d in mine])


def ref_bin_of(value, edges):
    if value != value:  # NaN
        return None
    for b in range(len(edges) - 1):
        last = b == len(edges) - 2
        if edges[b] <= value < edges[b + 1] or (last and value == edges[b + 1]):
            return b
    return None


def ref_cells(truth, calls, dosage, covered, mask, alt_freq, protocol):
    """Scored cells as (sample, variant, true code, call code, dosage), codes and dosage
    flipped to the minor allele under ``standard`` where the ALT frequency exceeds 0.5."""
    n_samples, n_variants = truth.shape
    cells = []
    for i in range(n_samples):
        for j in range(n_variants):
            if not covered[j] or (protocol == "standard" and not mask[i, j]):
                continue
            t, c, d = int(truth[i, j]), int(calls[i, j]), float(np.float32(dosage[i, j]))
            if protocol == "standard" and alt_freq[j] > 0.5:
                t, c, d = FLIPPED_CODE[t], FLIPPED_CODE[c], 2.0 - d
            cells.append((i, j, t, c, d))
    return cells


def ref_groups(alt_freq, edges):
    """[(label, set of variants)] for each bin, then overall."""
    n_variants = len(alt_freq)
    maf = [min(float(f), 1 - float(f)) for f in alt_freq]
    bins = [ref_bin_of(m, edges) for m in maf]
    groups = [(label, {j for j in range(n_variants) if bins[j] == b}) for b, label in enumerate(bin_labels(edges))]
    groups.append(("overall", set(range(n_variants))))
    return groups


def ref_score(truth, calls, dosage, covered, mask, alt_freq, protocol, edges, min_cells=5):
    """Everything ``score`` returns, by loops over cells. Returns (dict (bin, metric) ->
    (value, n_variants, n_genotypes), per-sample list of (r2, n), confusion dict, variant r²)."""
    n_samples, n_variants = truth.shape
    cells = ref_cells(truth, calls, dosage, covered, mask, alt_freq, protocol)
    plain = [(j, t, c, d) for _, j, t, c, d in cells]
    variant_r2 = [ref_variant_r2(plain, j, min_cells) if protocol == "standard" else math.nan for j in range(n_variants)]
    result = {}
    for label, variant_set in ref_groups(alt_freq, edges):
        group_cells = [cell for cell in plain if cell[0] in variant_set]
        values = ref_pooled_metrics(group_cells, protocol)
        if protocol == "standard":
            reported = [variant_r2[j] for j in sorted(variant_set) if not math.isnan(variant_r2[j])]
            values["mean_variant_r2"] = sum(reported) / len(reported) if reported else math.nan
            values["median_variant_r2"] = statistics.median(reported) if reported else math.nan
            values["frac_variant_r2_ge_0.8"] = sum(1 for r in reported if r >= 0.8) / len(reported) if reported else math.nan
            values["n_variant_r2"] = float(len(reported))
            values["coverage"] = sum(1 for j in variant_set if covered[j]) / len(variant_set) if variant_set else math.nan
            soft = sum(1 for _, _, _, d in group_cells if d != round(d))
            values["soft_dosage_fraction"] = soft / len(group_cells) if group_cells else math.nan
        scored_variants = {cell[0] for cell in group_cells}  # n_variants: variants with a scored cell
        for name, value in values.items():
            result[(label, name)] = (value, len(scored_variants), len(group_cells))
    per_sample = []
    if protocol == "standard":
        for i in range(n_samples):
            mine = [(t, d) for s, _, t, _, d in cells if s == i]
            per_sample.append((ref_pearson_r2([DOSAGE_OF_CODE[t] for t, _ in mine], [d for _, d in mine]), len(mine)))
    confusion = {}
    alt_coded = [(int(truth[i, j]), int(calls[i, j])) for i, j, *_ in cells]
    for t in range(1, 5):
        for c in range(1, 5):
            confusion[("phased", t, c)] = sum(1 for tt, cc in alt_coded if tt == t and cc == c)
    for t in range(3):
        for c in range(3):
            confusion[("dosage", t, c)] = sum(
                1 for tt, cc in alt_coded if DOSAGE_OF_CODE[tt] == t and DOSAGE_OF_CODE[cc] == c
            )
    return result, per_sample, confusion, variant_r2


def same(a, b, tol=1e-9):
    """Equal within a relative ``tol``, NaN equal to NaN only."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(b))
