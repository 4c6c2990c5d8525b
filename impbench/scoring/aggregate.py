"""From finished units to the run's estimates: pooled metrics with bootstrap CIs per cohort and
MAF class, paired differences between imputers, calibration (``docs/results.md``).

Input: each unit's per-sample sufficient statistics (``SampleStats``, one per protocol), its
per-replicate score rows (``replicates.csv``), its reliability rows, and the test samples'
cohorts. The bootstrap resamples test samples (``impbench.scoring.bootstrap``) with one seed, so
every imputer of a level sees the same resamples and the paired differences are the
differences of the same resampled values.

MAF classes (``DEFAULT_MAF_CLASSES``: rare < 1%, low-frequency 1–5%, common ≥ 5%) are unions of
MAF bins: their statistics are the bins' summed (``regroup``), so their CIs are as exact as the
bins'.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from impbench.scoring.bootstrap import percentile_ci, resample_indices, resample_weights
from impbench.scoring.calibration import expected_calibration_error, pool_reliability
from impbench.scoring.metrics import VARIANT_METRICS, bin_labels
from impbench.scoring.classes import DEFAULT_MAF_CLASSES, class_bins
from impbench.scoring.pooled import OVERALL, Moments, SampleStats, pool_replicates

#: The ``cohort`` value of rows over every test sample.
ALL_COHORTS = "all"


def regroup(stats: SampleStats, groups: Sequence[np.ndarray], labels: Sequence[str]) -> SampleStats:
    """Statistics with bins united into ``groups`` (index arrays of bins, disjoint). The extra
    slot keeps every other cell, so "overall" is unchanged."""
    n_slots = stats.tables.shape[1]
    member = np.full(n_slots, len(groups), dtype=np.int64)
    for g, bins in enumerate(groups):
        member[np.asarray(bins, dtype=np.int64)] = g
    n_new = len(groups) + 1
    tables = np.stack([stats.tables[:, member == g].sum(axis=1) for g in range(n_new)], axis=1)
    moments = None
    if stats.moments is not None:
        parts = [Moments(*(a[:, member == g] for a in stats.moments)).total(axis=1) for g in range(n_new)]
        moments = Moments(*(np.stack([p[i] for p in parts], axis=1) for i in range(6)))
    return SampleStats(stats.protocol, tuple(labels), tables, moments)


@dataclass
class Resampled:
    """One imputer's pooled statistics of a level/protocol/cohort/grouping and their values:
    point float64 (n_metrics, n_groups), resampled float64 (n_boot, n_metrics, n_groups)."""

    stats: SampleStats
    point: np.ndarray
    resampled: np.ndarray


def _resampled(stats: SampleStats, weights: np.ndarray) -> Resampled:
    return Resampled(stats, stats.values()[0], stats.values(weights))


def _long(stats: SampleStats, columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    names, groups = stats.metric_names, stats.metric_groups
    data = {"metric": np.repeat(names, len(groups)), "bin": np.tile(groups, len(names))}
    data.update({k: np.asarray(v).reshape(-1) for k, v in columns.items()})
    return pd.DataFrame(data)


def _group_cells(stats: SampleStats) -> pd.DataFrame:
    tables = stats.tables.sum(axis=(0, 2, 3))  # per slot
    n_bins = len(stats.labels)
    cells = list(tables[:n_bins]) + [int(tables.sum())]
    return pd.DataFrame({"bin": stats.metric_groups, "n_genotypes": np.asarray(cells, dtype=np.int64)})


def aggregate(
    unit_stats: Mapping[tuple[str, float, str], Mapping[int, SampleStats]],
    replicate_rows: pd.DataFrame,
    calibration_rows: pd.DataFrame | None,
    cohorts: np.ndarray,
    bin_edges: Sequence[float],
    *,
    classes: Sequence[tuple[str, float, float]] = DEFAULT_MAF_CLASSES,
    n_boot: int = 1000,
    seed: int = 0,
    imputer_order: Iterable[str] = (),
) -> dict[str, pd.DataFrame]:
    """The run's estimates (``metrics``, ``pairs``, ``calibration`` frames, docs/results.md).

    unit_stats : (imputer, level, protocol) -> {replicate: SampleStats} of the finished units.
    replicate_rows : the per-replicate score rows (replicates.csv columns).
    calibration_rows : per-replicate reliability rows (imputer, level, replicate, bin_lo,
        bin_hi, n_genotypes, sum_confidence, n_concordant) or None.
    cohorts : str (n_test_samples,), the test samples' cohorts (rows of the statistics).
    """
    cohorts = np.asarray(cohorts).astype(str)
    selections = [(ALL_COHORTS, None)]
    if len(np.unique(cohorts)) > 1:
        selections += [(c, cohorts == c) for c in sorted(np.unique(cohorts))]
    groups = class_bins(bin_edges, classes) if classes else []
    class_labels = [label for label, _, _ in classes] if classes else []
    order = {name: i for i, name in enumerate(imputer_order)}
    metric_frames, pair_frames = [], []
    by_level: dict[tuple[float, str], list[str]] = {}
    for (imputer, level, protocol) in unit_stats:
        by_level.setdefault((level, protocol), []).append(imputer)
    for (level, protocol), imputers in sorted(by_level.items()):
        imputers = sorted(imputers, key=lambda n: (order.get(n, len(order)), n))
        for cohort, selected in selections:
            values: dict[tuple[str, str], Resampled] = {}
            for imputer in imputers:
                per_rep = unit_stats[(imputer, level, protocol)]
                pooled = pool_replicates([per_rep[r] for r in sorted(per_rep)])
                if selected is not None:
                    pooled = pooled.subset(selected)
                if pooled.n_samples == 0:
                    continue
                weights = resample_weights(resample_indices(pooled.n_samples, n_boot, seed), pooled.n_samples)
                groupings = [("bins", pooled)]
                if groups:
                    groupings.append(("classes", regroup(pooled, groups, class_labels)))
                for kind, stats in groupings:
                    res = _resampled(stats, weights)
                    values[(imputer, kind)] = res
                    low, high, _ = percentile_ci(res.resampled, 0.95)
                    frame = _long(stats, {"value": res.point, "ci_low": low, "ci_high": high})
                    frame = frame.merge(_group_cells(stats), on="bin", how="left")
                    if kind == "classes":
                        frame = frame[frame["bin"] != OVERALL]
                    frame.insert(0, "imputer", imputer)
                    frame["level"], frame["protocol"], frame["cohort"] = level, protocol, cohort
                    frame["n_replicates"] = len(per_rep)
                    metric_frames.append(frame)
            for a, b in combinations(imputers, 2):
                for kind in ("bins", "classes") if groups else ("bins",):
                    ra, rb = values.get((a, kind)), values.get((b, kind))
                    if ra is None or rb is None or ra.resampled.shape != rb.resampled.shape:
                        continue
                    low, high, _ = percentile_ci(ra.resampled - rb.resampled, 0.95)
                    frame = _long(ra.stats, {"value_a": ra.point, "value_b": rb.point,
                                             "difference": ra.point - rb.point, "ci_low": low, "ci_high": high})
                    if kind == "classes":
                        frame = frame[frame["bin"] != OVERALL]
                    frame.insert(0, "imputer_a", a)
                    frame.insert(1, "imputer_b", b)
                    frame["level"], frame["protocol"], frame["cohort"] = level, protocol, cohort
                    pair_frames.append(frame)
    metrics = pd.concat(metric_frames, ignore_index=True) if metric_frames else pd.DataFrame()
    metrics = _attach_bins(metrics, replicate_rows, bin_edges, classes)
    metrics = pd.concat([metrics, _replicate_means(replicate_rows, calibration_rows)], ignore_index=True)
    pairs = pd.concat(pair_frames, ignore_index=True) if pair_frames else pd.DataFrame()
    calibration = _calibration(calibration_rows)
    return {"metrics": metrics, "pairs": pairs, "calibration": calibration}


def _attach_bins(metrics: pd.DataFrame, replicate_rows: pd.DataFrame, bin_edges, classes) -> pd.DataFrame:
    """bin_lo, bin_hi and n_variants of every bin and class row."""
    if metrics.empty:
        return metrics
    edges = list(bin_edges)
    rows = [(label, lo, hi) for label, lo, hi in zip(bin_labels(edges), edges[:-1], edges[1:])]
    rows += [(OVERALL, 0.0, 0.5)] + list(classes or ())
    info = pd.DataFrame(rows, columns=["bin", "bin_lo", "bin_hi"])
    n_var = pd.DataFrame(columns=["level", "protocol", "bin", "n_variants"])
    if replicate_rows is not None and not replicate_rows.empty:
        first = replicate_rows.drop_duplicates(["level", "protocol", "bin"])[["level", "protocol", "bin", "n_variants"]]
        extra = []
        for label, lo, hi in classes or ():
            members = [b for b, blo, bhi in rows[: len(edges) - 1] if blo >= lo - 1e-12 and bhi <= hi + 1e-12]
            inside = first[first["bin"].isin(members)]
            sums = inside.groupby(["level", "protocol"], as_index=False)["n_variants"].sum()
            sums["bin"] = label
            extra.append(sums)
        n_var = pd.concat([first, *extra], ignore_index=True)
    out = metrics.merge(info, on="bin", how="left").merge(n_var, on=["level", "protocol", "bin"], how="left")
    return out


def _replicate_means(replicate_rows: pd.DataFrame, calibration_rows: pd.DataFrame | None) -> pd.DataFrame:
    """Metrics without a CI (per-variant summaries, coverage, ECE): means over replicates,
    cohort "all"."""
    frames = []
    if replicate_rows is not None and not replicate_rows.empty:
        keep = replicate_rows[replicate_rows["metric"].isin(VARIANT_METRICS + ("coverage",))]
        if not keep.empty:
            grouped = keep.groupby(["imputer", "level", "protocol", "bin", "bin_lo", "bin_hi", "metric"],
                                   as_index=False, sort=False)
            mean = grouped.agg(value=("value", "mean"), n_replicates=("replicate", "nunique"),
                               n_variants=("n_variants", "first"), n_genotypes=("n_genotypes", "sum"))
            mean["cohort"] = ALL_COHORTS
            frames.append(mean)
    if calibration_rows is not None and not calibration_rows.empty:
        rows = []
        for (imputer, level), part in calibration_rows.groupby(["imputer", "level"], sort=False):
            per_rep = [expected_calibration_error(p) for _, p in part.groupby("replicate")]
            rows.append({"imputer": imputer, "level": level, "protocol": "standard", "cohort": ALL_COHORTS,
                         "bin": OVERALL, "bin_lo": 0.0, "bin_hi": 0.5, "metric": "ece",
                         "value": float(np.mean(per_rep)), "n_replicates": len(per_rep),
                         "n_genotypes": int(part["n_genotypes"].sum())})
        frames.append(pd.DataFrame(rows))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _calibration(calibration_rows: pd.DataFrame | None) -> pd.DataFrame:
    if calibration_rows is None or calibration_rows.empty:
        return pd.DataFrame()
    frames = []
    for (imputer, level), part in calibration_rows.groupby(["imputer", "level"], sort=False):
        tables = [p.drop(columns=["imputer", "level", "replicate"]) for _, p in part.groupby("replicate")]
        pooled = pool_reliability(tables)
        pooled.insert(0, "imputer", imputer)
        pooled.insert(1, "level", level)
        frames.append(pooled)
    return pd.concat(frames, ignore_index=True)
