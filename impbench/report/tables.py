"""Summary statistics over replicates and the report's tables (format-neutral).

``summarise`` turns ``metrics.csv`` (one row per imputer x level x replicate x protocol x bin x
metric) into one row per imputer x level x protocol x bin x metric with the mean, the sample SD
(ddof=1; NaN with a single replicate, shown as ``–``), min and max over replicates. Undefined
values (NaN) are left out of the mean and SD, and ``n_replicates`` counts the defined ones.
The ``Table`` objects built here are rendered as Markdown and HTML by ``markdown.py`` and
``html.py``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from impbench.report.load import RunResults
from impbench.report.paired import PairIndex, excludes_others
from impbench.report.style import (LOWER_IS_BETTER, PROTOCOL_NAMES, fmt_ci, fmt_count, fmt_mb, fmt_seconds,
                                   fmt_value, level_label, metric_name, metric_order, protocol_order)

SUMMARY_COLUMNS = (
    "protocol", "level", "cohort", "bin", "bin_lo", "bin_hi", "metric", "imputer", "value", "ci_low", "ci_high",
    "n_replicates", "replicate_sd", "best", "n_variants", "n_genotypes", "coverage", "maf_source",
)
OVERALL = "overall"


_NUMERIC = re.compile(r"^(-?[\d,]+(\.\d+)?( ± (-?[\d.]+|–))?( \(n=\d+\))?( ⚠ [\d.,]+ variants)?|n/a|–|[\d.,]+ of [\d.,]+|"
                      r"([\d.,]+|–)( / ([\d.,]+|–))+|"
                      r"[+-]?[\d.]+ \[[+-]?[\d.]+, [+-]?[\d.]+\]( · (best|tied|none))?( ⚠ [\d.,]+ variants)?)$")


def is_numeric_text(text: str) -> bool:
    """True for a cell that shows a number (``0.912 [0.901, 0.922]``, ``1,234``, ``n/a``, ``–``)."""
    return bool(_NUMERIC.match(text))


@dataclass
class Cell:
    text: str
    bold: bool = False  # best beyond the paired CIs, or best/tied in the verdict
    alert: bool = False  # a failure or warning (HTML: red)
    items: list[tuple[str, str]] | None = None  # a key/value list (HTML: a list, collapsible when long)


@dataclass
class Table:
    """A rendered-format-neutral table. ``caption`` states protocol and MAF source."""

    key: str
    title: str
    caption: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""


@dataclass
class LevelTables:
    protocol: str
    level: float
    overall: Table
    by_bin: list[Table]
    counts: Table


#: Metrics on the R² scale, where "better" needs the margin (``impbench report --margin``).
MARGIN_METRICS = frozenset({"r2", "r2_bin_mean", "gt_r2"})
#: The standard-protocol metric shown beside each ``paper`` metric.
PAPER_STANDARD = {"accuracy": "phased_accuracy", "r2": "r2", "precision": "precision", "recall": "recall",
                  "f1": "f1"}
#: Per-variant R² summaries resting on fewer variants (``n_variant_r2``) than this are marked.
PER_VARIANT_MIN = 100
PER_VARIANT_METRICS = frozenset({"mean_variant_r2", "median_variant_r2", "frac_variant_r2_ge_0.8"})


def summarise(results: RunResults, margin: float = 0.0) -> pd.DataFrame:
    """metrics.csv with what the tables need, one row per protocol x level x cohort x bin x
    metric x imputer (``SUMMARY_COLUMNS``).

    ``value``, ``ci_low``, ``ci_high``, ``n_replicates`` are metrics.csv's (pooled over
    replicates); ``replicate_sd`` the sample SD over replicates of replicates.csv (all test
    samples; NaN with one replicate or without the file); ``coverage`` the imputer's
    ``coverage`` in that level and bin (standard protocol's where the row's protocol has none);
    ``best`` marks the best value only when its paired CI (pairs.csv) against every other
    imputer in the row excludes 0, or for ``MARGIN_METRICS`` lies beyond ``margin`` (never on
    identical values; smaller is better for ``LOWER_IS_BETTER``; never in the ``paper``
    protocol, whose numbers are not a fair comparison). Rows sorted by protocol, level, cohort (``all`` first), bin (overall
    first, then by ``bin_lo``), metric, imputer (report order).
    """
    metrics = results.metrics
    if metrics.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    summary = metrics.copy()
    coverage = summary[summary["metric"] == "coverage"][["protocol", "level", "cohort", "bin", "imputer", "value"]]
    summary = summary.merge(coverage.rename(columns={"value": "coverage"}),
                            on=["protocol", "level", "cohort", "bin", "imputer"], how="left")
    cov_std = coverage[coverage["protocol"] == "standard"].drop(columns="protocol").rename(
        columns={"value": "coverage_standard"})
    summary = summary.merge(cov_std, on=["level", "cohort", "bin", "imputer"], how="left")
    summary["coverage"] = summary["coverage"].fillna(summary["coverage_standard"])
    summary = summary.drop(columns="coverage_standard")

    replicates = results.replicates
    if replicates is not None and not replicates.empty:
        sd = replicates.groupby(["protocol", "level", "bin", "metric", "imputer"])["value"].std().rename(
            "replicate_sd").reset_index().assign(cohort="all")
        summary = summary.merge(sd, on=["protocol", "level", "cohort", "bin", "metric", "imputer"], how="left")
    else:
        summary["replicate_sd"] = np.nan

    index = PairIndex(results.pairs)
    best = np.zeros(len(summary), dtype=bool)
    keys = ["protocol", "level", "cohort", "bin", "metric"]
    for key, rows in summary.groupby(keys, sort=False).indices.items():
        part = summary.iloc[rows]
        values = dict(zip(part["imputer"], part["value"].astype(float)))
        protocol, level, cohort, bin_label, metric = key
        if protocol == "paper":
            continue
        winner = excludes_others(values, index, level, protocol, cohort, bin_label, metric,
                                 margin if metric in MARGIN_METRICS else 0.0)
        if winner is not None:
            best[rows[list(part["imputer"]).index(winner)]] = True
    summary["best"] = best
    summary["maf_source"] = results.maf_source

    order_protocol = {p: i for i, p in enumerate(protocol_order(summary["protocol"].unique()))}
    order_imputer = {name: i for i, name in enumerate(results.imputers)}
    order_metric = {}
    for protocol in order_protocol:
        present = summary.loc[summary["protocol"] == protocol, "metric"].unique()
        for i, m in enumerate(metric_order(present, protocol)):
            order_metric[(protocol, m)] = i
    classes = {c: i for i, c in enumerate(results.classes)}
    summary["_p"] = summary["protocol"].map(order_protocol)
    summary["_c"] = summary["cohort"] != "all"
    summary["_b"] = [-1.0 if b == OVERALL else (1.0 + classes[b] if b in classes else float(lo))
                     for b, lo in zip(summary["bin"], summary["bin_lo"])]
    summary["_m"] = [order_metric[(p, m)] for p, m in zip(summary["protocol"], summary["metric"])]
    summary["_i"] = summary["imputer"].map(order_imputer)
    summary = summary.sort_values(["_p", "level", "_c", "cohort", "_b", "_m", "_i"], kind="stable")
    return summary[list(SUMMARY_COLUMNS)].reset_index(drop=True)


def expected_replicates(results: RunResults) -> int | None:
    replicates = (results.manifest.get("settings") or {}).get("replicates")
    return int(replicates) if isinstance(replicates, (int, float)) else None


def caption(results: RunResults, protocol: str | None, level: float | None = None) -> str:
    parts = []
    if protocol is not None:
        parts.append(f"Protocol: {PROTOCOL_NAMES.get(protocol, protocol)}")
    else:
        protocols = (results.manifest.get("settings") or {}).get("protocols") or sorted(
            results.metrics["protocol"].unique())
        parts.append("Protocol(s): " + ", ".join(str(p) for p in protocols))
    parts.append(f"MAF source: {results.maf_source}")
    typed = (results.manifest.get("settings") or {}).get("typed")
    parts.append(f"masking scheme: {results.scheme}" + (f" ({typed})" if results.scheme == "array" and typed else ""))
    if level is not None:
        parts.append(f"masking level {level_label(level)}")
    if protocol is not None:
        n_rep = expected_replicates(results)
        parts.append("all test samples; value [95% bootstrap CI over test samples], pooled over "
                     + (f"{n_rep} replicates" if n_rep else "the replicates"))
    return " · ".join(parts)


def _imputer_header(results: RunResults, imputer: str) -> str:
    status = results.status(imputer)
    return imputer if status in ("ok", "unknown") else f"{imputer} ({status})"


def _value_cell(results: RunResults, row: dict | None, imputer: str, n_variant_r2: float = math.nan) -> Cell:
    if row is None:
        failed = results.status(imputer) == "failed"
        return Cell("failed" if failed else "–", alert=failed)
    text = fmt_ci(row["value"], row["ci_low"], row["ci_high"])
    if row["metric"] in PER_VARIANT_METRICS and n_variant_r2 < PER_VARIANT_MIN:
        return Cell(f"{text} ⚠ {n_variant_r2:,.1f} variants", bool(row["best"]), alert=True)
    return Cell(text, bool(row["best"]))


def paper_inflation(summary: pd.DataFrame) -> str:
    """One sentence quantifying how much the ``paper`` protocol inflates dosage R²: the imputer
    with the largest paper - standard gap (overall, first level, all test samples); "" when
    either protocol is missing."""
    rows = summary[(summary["metric"] == "r2") & (summary["bin"] == OVERALL) & (summary["cohort"] == "all")]
    if rows.empty or not {"paper", "standard"} <= set(rows["protocol"]):
        return ""
    level = sorted(rows["level"].unique())[0]
    at = rows[rows["level"] == level].pivot_table(index="imputer", columns="protocol", values="value")
    at = at.dropna(subset=["paper", "standard"]) if {"paper", "standard"} <= set(at.columns) else at.iloc[:0]
    if at.empty:
        return ""
    gap = (at["paper"] - at["standard"]).sort_values(ascending=False)
    name = gap.index[0]
    return (f"The paper protocol scores every cell, observed ones included, and for tools with their own calls "
            f"(Beagle) those raw calls: {name} scores {at.loc[name, 'paper']:.3f} here and "
            f"{at.loc[name, 'standard']:.3f} under standard (R², {level_label(level)} masked), so its numbers are "
            "inflated by copying the input and are shown beside the standard ones, without significance bolding.")


BEST_NOTE = ("Bold: the best value of the row, only where its paired 95% CI (pairs.csv) against every other "
             "imputer excludes 0. ⚠: a per-variant R² summary resting on fewer than 100 variants")


def level_tables(results: RunResults, summary: pd.DataFrame) -> list[LevelTables]:
    """Tables per protocol x level (all test samples): overall metrics, one per-bin table per
    metric, counts. ``paper`` tables put each imputer's standard value (``PAPER_STANDARD``)
    beside its paper value."""
    out = []
    imputers = results.imputers
    summary = summary[summary["cohort"] == "all"]
    standard = {(round(float(r["level"]), 9), r["bin"], r["metric"], r["imputer"]): r
                for r in summary[summary["protocol"] == "standard"].to_dict("records")}
    variant_counts = {(r["protocol"], round(float(r["level"]), 9), r["bin"], r["imputer"]): float(r["value"])
                      for r in summary[summary["metric"] == "n_variant_r2"].to_dict("records")}
    for protocol in protocol_order(summary["protocol"].unique()):
        by_protocol = summary[summary["protocol"] == protocol]
        paper = protocol == "paper"
        headers = [h for name in imputers for h in (
            [f"{_imputer_header(results, name)}: paper", f"{_imputer_header(results, name)}: standard"]
            if paper else [_imputer_header(results, name)])]
        for level in sorted(by_protocol["level"].unique()):
            frame = by_protocol[by_protocol["level"] == level]
            rows_by_key = {(r["bin"], r["metric"], r["imputer"]): r for r in frame.to_dict("records")}
            metrics = list(dict.fromkeys(frame["metric"]))
            bins = [OVERALL] + [b for b in results.bins if b in set(frame["bin"])] + [
                c for c in results.classes if c in set(frame["bin"])]
            slug = f"{protocol}-L{level:g}"
            cap = caption(results, protocol, level)
            key = round(float(level), 9)

            def cells(bin_label: str, metric: str) -> list[Cell]:
                out_cells = []
                for name in imputers:
                    count = variant_counts.get((protocol, key, bin_label, name), math.nan)
                    out_cells.append(_value_cell(results, rows_by_key.get((bin_label, metric, name)), name, count))
                    if paper:
                        twin = standard.get((key, bin_label, PAPER_STANDARD.get(metric, metric), name))
                        out_cells.append(Cell("–") if twin is None else
                                         Cell(fmt_ci(twin["value"], twin["ci_low"], twin["ci_high"])))
                return out_cells

            note = (f"Paper and standard side by side: paper {', '.join(PAPER_STANDARD)} beside standard "
                    f"{', '.join(PAPER_STANDARD.values())}; no bolding (paper numbers are not a fair comparison)."
                    if paper else BEST_NOTE)
            overall = Table(f"{slug}-overall", f"{protocol} protocol, {level_label(level)} masked: overall",
                            cap, ["Metric"] + headers,
                            note=note + ("" if paper else " (lower is better for errors, NRD, ECE; R² metrics: "
                                         "beyond the margin)."))
            for metric in metrics:
                overall.rows.append([Cell(metric_name(metric, protocol))] + cells(OVERALL, metric))

            by_bin = []
            for metric in metrics:
                if not any((b, metric, n) in rows_by_key for b in bins[1:] for n in imputers):
                    continue
                table = Table(f"{slug}-{metric}", f"{metric_name(metric, protocol)} by MAF bin "
                              f"({protocol} protocol, {level_label(level)} masked)", cap,
                              ["MAF bin", "SNPs"] + headers,
                              note=note + ("" if paper else " (lower is better)." if metric in LOWER_IS_BETTER else "."))
                for bin_label in bins:
                    variants = frame.loc[(frame["bin"] == bin_label) & (frame["metric"] == metric), "n_variants"]
                    table.rows.append([Cell(bin_label), Cell(fmt_count(variants.max() if len(variants) else np.nan))]
                                      + cells(bin_label, metric))
                by_bin.append(table)

            counts = _counts_table(results, frame, bins, metrics, [_imputer_header(results, n) for n in imputers],
                                   slug, cap, protocol, level)
            out.append(LevelTables(protocol, float(level), overall, by_bin, counts))
    return out


def _counts_table(results: RunResults, frame: pd.DataFrame, bins: list[str], metrics: list[str],
                  headers: list[str], slug: str, cap: str, protocol: str, level: float) -> Table:
    """SNPs, scored genotypes and coverage per bin. When every imputer with results has the same
    scored-genotype count and coverage in every bin (the usual case: identical masks, every
    variant placed), one column each says so instead of one per imputer."""
    first_metric = metrics[0] if metrics else None
    per_bin: dict[str, dict[str, tuple[float, float]]] = {}
    for bin_label in bins:
        in_bin = frame[frame["bin"] == bin_label]
        per_bin[bin_label] = {}
        for name in results.imputers:
            mine = in_bin[in_bin["imputer"] == name]
            if mine.empty:
                continue
            # n_genotypes is the same on every metric row of a bin; take the first metric's.
            pick = mine[mine["metric"] == first_metric] if first_metric in set(mine["metric"]) else mine
            per_bin[bin_label][name] = (float(pick["n_genotypes"].iloc[0]), float(mine["coverage"].iloc[0]))
    shared = all(len({(g, round(c, 6) if c == c else None) for g, c in values.values()}) <= 1
                 for values in per_bin.values())
    with_results = [n for n in results.imputers if any(n in v for v in per_bin.values())]
    note = ("Scored genotypes: cells scored in the bin, summed over replicates. "
            "Coverage: fraction of the bin's variants the imputer placed.")
    title = f"SNPs, scored genotypes and coverage by MAF bin ({protocol} protocol, {level_label(level)} masked)"
    if shared and with_results:
        table = Table(f"{slug}-counts", title, cap, ["MAF bin", "SNPs", "Scored genotypes", "Coverage"],
                      note=note + f" Identical for every imputer with results ({', '.join(with_results)}).")
        for bin_label in bins:
            values = list(per_bin[bin_label].values())
            n_variants = frame.loc[frame["bin"] == bin_label, "n_variants"].max()
            genotypes, coverage = values[0] if values else (np.nan, np.nan)
            table.rows.append([Cell(bin_label), Cell(fmt_count(n_variants)), Cell(fmt_count(genotypes)),
                               Cell(fmt_value(coverage, 3))])
        return table
    table = Table(f"{slug}-counts", title, cap,
                  ["MAF bin", "SNPs"] + [f"{h}: {what}" for h in headers for what in ("scored genotypes", "coverage")],
                  note=note)
    for bin_label in bins:
        row = [Cell(bin_label), Cell(fmt_count(frame.loc[frame["bin"] == bin_label, "n_variants"].max()))]
        for name in results.imputers:
            if name in per_bin[bin_label]:
                genotypes, coverage = per_bin[bin_label][name]
                row += [Cell(fmt_count(genotypes)), Cell(fmt_value(coverage, 3))]
            else:
                row += [Cell("–"), Cell("–")]
        table.rows.append(row)
    return table


def runtime_frame(results: RunResults) -> pd.DataFrame:
    """Time and memory per imputer from the manifest.

    Columns: imputer, status, fit_seconds, fit_peak_mb, impute_seconds_mean, impute_seconds_sd,
    impute_seconds_total, impute_peak_mb, child_peak_mb, n_units, n_covered_min, n_covered_max.
    ``impute_*`` are over the (level, replicate) units the manifest lists for the imputer;
    ``child_peak_mb`` is the largest peak of a child process (``fit_child_peak_mb``, units'
    ``child_peak_mb``: optional manifest fields, e.g. Beagle's Java), NaN where none.
    """
    rows = []
    for name in results.imputers:
        info = results.imputer_info(name)
        units = [u for u in (info.get("impute") or []) if isinstance(u, dict)]
        seconds = np.array([float(u["seconds"]) for u in units if u.get("seconds") is not None], dtype=float)
        peaks = np.array([float(u["peak_mb"]) for u in units if u.get("peak_mb") is not None], dtype=float)
        covered = np.array([float(u["n_covered"]) for u in units if u.get("n_covered") is not None], dtype=float)
        child = np.array([float(x) for x in [info.get("fit_child_peak_mb")] + [u.get("child_peak_mb") for u in units]
                          if x is not None], dtype=float)
        rows.append({
            "imputer": name,
            "status": results.status(name),
            "fit_seconds": _float(info.get("fit_seconds")),
            "fit_peak_mb": _float(info.get("fit_peak_mb")),
            "impute_seconds_mean": seconds.mean() if seconds.size else np.nan,
            "impute_seconds_sd": seconds.std(ddof=1) if seconds.size >= 2 else np.nan,
            "impute_seconds_total": seconds.sum() if seconds.size else np.nan,
            "impute_peak_mb": peaks.max() if peaks.size else np.nan,
            "child_peak_mb": child.max() if child.size else np.nan,
            "n_units": len(units),
            "n_covered_min": covered.min() if covered.size else np.nan,
            "n_covered_max": covered.max() if covered.size else np.nan,
        })
    return pd.DataFrame(rows, columns=["imputer", "status", "fit_seconds", "fit_peak_mb", "impute_seconds_mean",
                                       "impute_seconds_sd", "impute_seconds_total", "impute_peak_mb", "child_peak_mb",
                                       "n_units",
                                       "n_covered_min", "n_covered_max"])


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def runtime_table(results: RunResults, runtime: pd.DataFrame) -> Table:
    settings = results.manifest.get("settings") or {}
    levels, replicates = settings.get("levels") or [], settings.get("replicates")
    n_expected = len(levels) * int(replicates) if levels and isinstance(replicates, (int, float)) else None
    device = settings.get("device")
    threads = settings.get("threads")
    where = ", ".join(x for x in (f"device {device}" if device else "", f"{threads} threads" if threads else "") if x)
    has_child = bool(runtime["child_peak_mb"].notna().any())
    table = Table("runtime", "Time and peak memory per imputer", caption(results, None)
                  + (f" · {where}" if where else ""),
                  ["Imputer", "Status", "Fit (s)", "Fit peak (MB)", "Impute per replicate (s, mean ± SD)",
                   "Impute total (s)", "Impute peak (MB)"] + (["Child process peak (MB)"] if has_child else [])
                  + ["Units done", "Variants covered"],
                  note="Fit: training once per run. Impute: one unit per masking level x replicate. "
                       "Peak memory as the imputer reported it (process peak, MB).")
    for r in runtime.itertuples(index=False):
        per_unit = "–" if math.isnan(r.impute_seconds_mean) else (
            fmt_seconds(r.impute_seconds_mean) + " ± " + ("–" if math.isnan(r.impute_seconds_sd)
                                                          else fmt_seconds(r.impute_seconds_sd)))
        covered = "–" if math.isnan(r.n_covered_min) else (
            fmt_count(r.n_covered_min) if r.n_covered_min == r.n_covered_max
            else f"{fmt_count(r.n_covered_min)}–{fmt_count(r.n_covered_max)}")
        table.rows.append([Cell(r.imputer), Cell(r.status, alert=r.status not in ("ok", "unknown")),
                           Cell(fmt_seconds(r.fit_seconds)), Cell(fmt_mb(r.fit_peak_mb)), Cell(per_unit),
                           Cell(fmt_seconds(r.impute_seconds_total)), Cell(fmt_mb(r.impute_peak_mb))]
                          + ([Cell(fmt_mb(r.child_peak_mb))] if has_child else [])
                          + [Cell(f"{r.n_units}" + (f" of {n_expected}" if n_expected else "")), Cell(covered)])
    return table


def failures(results: RunResults) -> list[tuple[str, str, str, str]]:
    """(imputer, status, error, note) for every imputer whose status is not ``ok``: ``error`` is
    the manifest's message ("" if none), ``note`` explains a status that has no message."""
    out = []
    for name in results.imputers:
        status = results.status(name)
        if status == "ok":
            continue
        error = str(results.imputer_info(name).get("error") or "")
        note = ""
        if status == "unknown":
            note = "not listed in manifest.json (results found in the CSV files only)"
        elif status == "running":
            note = ("no end recorded: the run was interrupted or is still running "
                    "(rerun `impbench run` with the same --run name to resume)")
        elif status == "partial":
            note = "some masking levels or replicates have no result"
        elif status == "interrupted":
            note = "the run was stopped; rerun `impbench run` with the same --run name to finish it"
        elif status == "not_applicable":
            note = "this imputer cannot work in this masking scheme"
        out.append((name, status, error, note))
    return out
