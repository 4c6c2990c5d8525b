"""From finished units to the run's estimates: pooled metrics with bootstrap CIs per cohort and
MAF class, paired differences between imputers, calibration (``docs/results.md``).

Input: each unit's per-(sample, block) sufficient statistics (``SampleStats``, one per protocol,
and one per cohort binned by the cohort's own training MAF), its per-replicate score rows
(``replicates.csv``), its reliability rows, and the test samples' cohorts. The bootstrap
resamples test samples and genomic blocks (``impbench.scoring.bootstrap``) with one seed, so
every imputer of a level sees the same resamples and the paired differences are the
differences of the same resampled values.

The headline ``r2_bin_mean`` of a class (or overall) is the mean of its MAF bins' pooled dosage
R², each bin weighted equally (``impbench.scoring.pooled.r2_bin_mean``), so a frequency-only
answer cannot score by knowing which variants are common; ``n_eff`` = test samples x
``r2_bin_mean``.

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

from impbench.scoring.bootstrap import percentile_ci, two_way_weights
from impbench.scoring.calibration import expected_calibration_error, pool_reliability
from impbench.scoring.metrics import CELL_METRICS, VARIANT_METRICS, bin_labels
from impbench.scoring.classes import DEFAULT_MAF_CLASSES, class_bins
from impbench.scoring.pooled import OVERALL, Moments, SampleStats, pool_replicates, r2_bin_mean

#: The ``cohort`` value of rows over every test sample.
ALL_COHORTS = "all"


def regroup(stats: SampleStats, groups: Sequence[np.ndarray], labels: Sequence[str]) -> SampleStats:
    """Statistics with bins united into ``groups`` (index arrays of bins, disjoint). The extra
    slot keeps every other cell, so "overall" is unchanged."""
    n_slots = stats.tables.shape[2]
    member = np.full(n_slots, len(groups), dtype=np.int64)
    for g, bins in enumerate(groups):
        member[np.asarray(bins, dtype=np.int64)] = g
    n_new = len(groups) + 1
    tables = np.stack([stats.tables[:, :, member == g].sum(axis=2) for g in range(n_new)], axis=2)
    moments = None
    if stats.moments is not None:
        parts = [Moments(*(a[:, :, member == g] for a in stats.moments)).total(axis=2) for g in range(n_new)]
        moments = Moments(*(np.stack([p[i] for p in parts], axis=2) for i in range(6)))
    return SampleStats(stats.protocol, tuple(labels), tables, moments)


@dataclass
class Resampled:
    """One imputer's pooled statistics of a level/protocol/cohort/grouping and their values:
    point float64 (n_metrics, n_groups), resampled float64 (n_boot, n_metrics, n_groups);
    ``names`` and ``groups`` label the two axes."""

    stats: SampleStats
    point: np.ndarray
    resampled: np.ndarray
    names: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.names = tuple(self.names) or tuple(self.stats.metric_names)
        self.groups = tuple(self.groups) or tuple(self.stats.metric_groups)


#: The frequency-fair headline and what an association study keeps (classes and overall).
HEADLINE_METRICS = ("r2_bin_mean", "n_eff")
#: ``maf_source`` of rows binned by the pooled training split and by the cohort's own.
MAF_POOLED = "pooled training split"
MAF_COHORT = "cohort training split"


def _headline(bins: Resampled, groups: Sequence[np.ndarray], class_labels: Sequence[str]) -> Resampled | None:
    """``r2_bin_mean`` (mean of the bins' pooled R², each bin once, ``r2_bin_mean``) and
    ``n_eff`` (number of test samples x ``r2_bin_mean``) per class and overall, from the bins'
    point and resampled R² (the same resamples). None under ``paper``."""
    if bins.stats.protocol != "standard":
        return None
    n_bins = len(bins.stats.labels)
    r2 = bins.names.index("r2")
    members = [np.asarray(g, dtype=np.int64) for g in groups] + [np.arange(n_bins)]
    point = r2_bin_mean(bins.point[r2, :n_bins], members)
    resampled = r2_bin_mean(bins.resampled[:, r2, :n_bins], members)
    n = float(bins.stats.n_samples)
    return Resampled(bins.stats, np.stack([point, n * point]), np.stack([resampled, n * resampled], axis=1),
                     HEADLINE_METRICS, tuple(class_labels) + (OVERALL,))


def _long(res: Resampled, columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    data = {"metric": np.repeat(res.names, len(res.groups)), "bin": np.tile(res.groups, len(res.names))}
    data.update({k: np.asarray(v).reshape(-1) for k, v in columns.items()})
    return pd.DataFrame(data)


def _group_cells(stats: SampleStats) -> pd.DataFrame:
    tables = stats.tables.sum(axis=(0, 1, 3, 4))  # per slot
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
    cohort_stats: Mapping[tuple[str, float, str, str], Mapping[int, SampleStats]] | None = None,
    resample_blocks: bool = True,
) -> dict[str, pd.DataFrame]:
    """The run's estimates (``metrics``, ``pairs``, ``calibration`` frames, docs/results.md).

    unit_stats : (imputer, level, protocol) -> {replicate: SampleStats} of the finished units,
        binned and oriented by the pooled training split (rows of cohort "all").
    replicate_rows : the per-replicate score rows (replicates.csv columns).
    calibration_rows : per-replicate reliability rows (imputer, level, replicate, bin_lo,
        bin_hi, n_genotypes, sum_confidence, n_concordant) or None.
    cohorts : str (n_test_samples,), the test samples' cohorts (rows of the statistics).
    cohort_stats : (imputer, level, protocol, cohort) -> {replicate: SampleStats} of the
        cohort's test samples, binned and oriented by the cohort's own training split; a cohort
        without them is the subset of ``unit_stats`` (pooled MAF). Rows say which in
        ``maf_source`` (``MAF_COHORT`` or ``MAF_POOLED``).
    resample_blocks : resample genomic blocks besides samples (the two-way bootstrap; statistics
        with one block are resampled by sample only either way).
    Every metric of the statistics gets a CI; besides, per class and overall, the headline
    ``r2_bin_mean`` and ``n_eff`` (``HEADLINE_METRICS``; pairs: ``r2_bin_mean``).
    """
    cohorts = np.asarray(cohorts).astype(str)
    cohort_stats = cohort_stats or {}
    selections = [(ALL_COHORTS, None)]
    present = set(np.unique(cohorts)) if len(np.unique(cohorts)) > 1 else set()
    present |= {key[3] for key in cohort_stats} & set(np.unique(cohorts))
    selections += [(c, cohorts == c) for c in sorted(present)]
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
            sources: dict[str, str] = {}
            for imputer in imputers:
                per_rep = cohort_stats.get((imputer, level, protocol, cohort))
                sources[imputer] = MAF_COHORT if per_rep is not None else MAF_POOLED
                if per_rep is None:
                    per_rep = unit_stats[(imputer, level, protocol)]
                pooled = pool_replicates([per_rep[r] for r in sorted(per_rep)])
                if selected is not None and sources[imputer] == MAF_POOLED:
                    pooled = pooled.subset(selected)
                if pooled.n_samples == 0:
                    continue
                weights, block_weights = two_way_weights(pooled.n_samples, pooled.n_blocks, n_boot, seed,
                                                         resample_blocks)
                kinds = [("bins", pooled)]
                if groups:
                    kinds.append(("classes", regroup(pooled, groups, class_labels)))
                for kind, stats in kinds:
                    values[(imputer, kind)] = Resampled(stats, stats.values()[0], stats.values(weights, block_weights))
                headline = _headline(values[(imputer, "bins")], groups, class_labels)
                if headline is not None:
                    values[(imputer, "headline")] = headline
                for kind in ("bins", "classes", "headline"):
                    res = values.get((imputer, kind))
                    if res is None:
                        continue
                    low, high, _ = percentile_ci(res.resampled, 0.95)
                    frame = _long(res, {"value": res.point, "ci_low": low, "ci_high": high})
                    frame = frame.merge(_group_cells(regroup(res.stats, groups, class_labels) if kind == "headline"
                                                     and groups else res.stats), on="bin", how="left")
                    if kind == "classes":
                        frame = frame[frame["bin"] != OVERALL]
                    frame.insert(0, "imputer", imputer)
                    frame["level"], frame["protocol"], frame["cohort"] = level, protocol, cohort
                    frame["n_replicates"] = len(per_rep)
                    frame["maf_source"] = sources[imputer]
                    metric_frames.append(frame)
            for a, b in combinations(imputers, 2):
                for kind in ("bins", "classes", "headline"):
                    ra, rb = values.get((a, kind)), values.get((b, kind))
                    if ra is None or rb is None or ra.resampled.shape != rb.resampled.shape:
                        continue
                    low, high, _ = percentile_ci(ra.resampled - rb.resampled, 0.95)
                    frame = _long(ra, {"value_a": ra.point, "value_b": rb.point,
                                       "difference": ra.point - rb.point, "ci_low": low, "ci_high": high})
                    if kind == "classes":
                        frame = frame[frame["bin"] != OVERALL]
                    if kind == "headline":
                        frame = frame[frame["metric"] == "r2_bin_mean"]
                    frame.insert(0, "imputer_a", a)
                    frame.insert(1, "imputer_b", b)
                    frame["level"], frame["protocol"], frame["cohort"] = level, protocol, cohort
                    frame["maf_source"] = sources[a] if sources[a] == sources[b] else "mixed"
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
    if "maf_source" in out:  # the replicate rows count variants by the pooled MAF's bins only
        out.loc[out["maf_source"] == MAF_COHORT, "n_variants"] = np.nan
    return out


def _replicate_means(replicate_rows: pd.DataFrame, calibration_rows: pd.DataFrame | None) -> pd.DataFrame:
    """Metrics without a CI (per-variant summaries, coverage, ECE): means over replicates,
    cohort "all"."""
    frames = []
    if replicate_rows is not None and not replicate_rows.empty:
        keep = replicate_rows[replicate_rows["metric"].isin(VARIANT_METRICS + CELL_METRICS)]
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
