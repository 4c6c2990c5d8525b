"""The report's first screen: one recommendation sentence (per MAF class, with the margin and
each imputer's cost) and one compact table across masking levels.

``recommendation(results, verdicts) -> str`` and ``answer_table(results, verdicts) -> Table``
read the rankings of ``verdict.level_verdicts``; cost is the manifest's timings
(``tables.runtime_frame``): seconds per unit (fit + mean impute of one level x replicate) and
the largest peak memory of fit, impute and child processes.
"""

from __future__ import annotations

import math

from impbench.report.load import ALL, OVERALL, RunResults
from impbench.report.notes import dosage_kind, soft_fractions
from impbench.report.paired import Ranked
from impbench.report.style import class_phrase, fmt_ci, fmt_mb, fmt_seconds, level_label, level_phrase
from impbench.report.tables import Cell, Table, runtime_frame
from impbench.report.verdict import NONE_BELOW, VERDICT_METRIC, VERDICT_PROTOCOL, LevelVerdict, headline_name

N_EFF_METRIC = "n_eff"


def imputer_costs(results: RunResults) -> dict[str, tuple[float, float]]:
    """Imputer -> (seconds per unit: fit + mean impute, peak MB over fit, impute and children);
    NaN where the manifest has no timing."""
    out = {}
    for r in runtime_frame(results).itertuples(index=False):
        parts = [v for v in (r.fit_seconds, r.impute_seconds_mean) if v == v]
        peaks = [v for v in (r.fit_peak_mb, r.impute_peak_mb, r.child_peak_mb) if v == v]
        out[r.imputer] = (sum(parts) if parts else math.nan, max(peaks) if peaks else math.nan)
    return out


def cost_text(costs: dict[str, tuple[float, float]], name: str) -> str:
    seconds, peak = costs.get(name, (math.nan, math.nan))
    if seconds != seconds and peak != peak:
        return "cost not recorded"
    return f"{fmt_seconds(seconds)} s, {fmt_mb(peak)} MB"


def _class_clause(where: str, ranking: list[Ranked], costs, margin: float) -> str:
    if not ranking:
        return ""
    if ranking[0].status == "none":
        return f"{where}: no imputer (every R² below {NONE_BELOW:g})"
    top = [r for r in ranking if r.top]
    if len(top) == 1:
        best = top[0]
        return f"{where}: {best.imputer} ({best.value:.3f}; {cost_text(costs, best.imputer)})"
    def seconds(entry: Ranked) -> float:
        value = costs.get(entry.imputer, (math.nan, math.nan))[0]
        return value if value == value else math.inf

    cheapest = min(top, key=seconds)
    names = " or ".join(f"{r.imputer} ({r.value:.3f})" for r in top)
    return (f"{where}: {names}, tied within {margin:g}; {cheapest.imputer} costs least "
            f"({cost_text(costs, cheapest.imputer)})")


def _tops(verdict: LevelVerdict) -> dict[str, tuple[str, ...]]:
    return {b: tuple(r.imputer for r in ranking if r.top) for b, ranking in verdict.ranks.items()}


def recommendation(results: RunResults, verdicts: list[LevelVerdict]) -> str:
    """``At 5% masking use: overall beagle (0.962; 14 s, 512 MB); common variants: ...; rare
    variants: no imputer (every R² below 0.05). The same at 15% and 25% masking.`` (first
    level; "better" needs the paired 95% CI beyond the margin)."""
    if not verdicts:
        return ""
    first = verdicts[0]
    costs = imputer_costs(results)
    what = ("headline R², the mean of the per-MAF-bin dosage R²" if first.metric == VERDICT_METRIC
            else "pooled dosage R² (this run has no per-bin mean)")
    # Scopes with the same answer share one clause ("overall and for common variants: ...").
    groups: dict[tuple, list[str]] = {}
    for b, ranking in first.ranks.items():
        key = tuple((r.imputer, r.status) for r in ranking if r.top or r.status == "none")[:1] + \
            tuple(r.imputer for r in ranking if r.top)
        groups.setdefault(key, []).append(b)
    clauses = []
    for scopes in groups.values():
        names = [("overall" if b == OVERALL else class_phrase(b)) for b in scopes]
        if len(scopes) == len(first.ranks) and len(scopes) > 1:
            where = "overall and in every MAF class"
        else:
            where = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        clauses.append(_class_clause(where, first.ranks[scopes[0]], costs, first.margin))
    text = (f"Recommendation at {level_phrase(first.level, results.scheme)} ({what}; one imputer is better only "
            f"where its paired 95% CI is ahead by more than {first.margin:g}; cost per unit of work: seconds, "
            f"peak memory): " + "; ".join(c for c in clauses if c) + ".")
    others = verdicts[1:]
    if others:
        same = [v for v in others if _tops(v) == _tops(first)]
        labels = [level_label(v.level) for v in same]
        if len(same) == len(others):
            text += f" The same at {', '.join(labels)} masking."
        else:
            differ = [level_label(v.level) for v in others if v not in same]
            text += f" At {', '.join(differ)} masking the ranking differs: see the table."
    return text


def n_eff_values(results: RunResults) -> dict[tuple[float, str, str], float]:
    """(level, bin, imputer) -> ``n_eff`` (standard protocol, all test samples)."""
    m = results.metrics
    rows = m[(m["metric"] == N_EFF_METRIC) & (m["protocol"] == VERDICT_PROTOCOL) & (m["cohort"] == ALL)]
    return {(round(float(r.level), 9), r.bin, r.imputer): float(r.value) for r in rows.itertuples(index=False)}


def answer_table(results: RunResults, verdicts: list[LevelVerdict]) -> Table:
    """Rows: level x imputer in that level's overall ranking; columns: the headline overall and
    per class with CIs, n_eff per class, dosage kind, cost."""
    classes = list(dict.fromkeys(b for v in verdicts for b in v.ranks if b != OVERALL))
    n_eff = n_eff_values(results)
    costs = imputer_costs(results)
    soft = soft_fractions(results)
    eff_bins = [b for b in [OVERALL, *classes] if any(k[1] == b for k in n_eff)]
    metric = verdicts[0].metric if verdicts else VERDICT_METRIC
    margin = verdicts[0].margin if verdicts else 0.0
    columns = ["Level", "Rank", "Imputer", "Overall"] + classes
    if eff_bins:
        columns.append("n_eff (" + " / ".join("all" if b == OVERALL else b.split(" (")[0].split("-")[0]
                                               for b in eff_bins) + ")")
    columns += ["Dosages", "s per unit", "Peak MB"]
    table = Table("answer", f"{headline_name(metric)} at every masking level",
                  f"Standard protocol, all test samples; value [95% CI]. MAF source: {results.row_maf_source(ALL)}",
                  columns,
                  note=f"Bold: the best and those tied with it (not behind by more than {margin:g} R² at the paired "
                       f"CI's bound); 'none': no imputer reaches {NONE_BELOW:g}. "
                       + ("n_eff = test samples × R²: the sample size an association study keeps. " if eff_bins else "")
                       + "s per unit: seconds of fit + one level × replicate.")
    for verdict in verdicts:
        by_bin = {b: {r.imputer: r for r in ranking} for b, ranking in verdict.ranks.items()}
        for position, entry in enumerate(verdict.ranks[OVERALL]):
            rank = "–" if entry.status == "none" else "1=" if entry.status == "tied" else \
                "1" if entry.top else str(position + 1)
            row = [Cell(level_label(verdict.level) if position == 0 else ""), Cell(rank),
                   Cell(entry.imputer, bold=entry.top)]
            for b in [OVERALL, *classes]:
                mine = by_bin.get(b, {}).get(entry.imputer)
                row.append(Cell("n/a") if mine is None else Cell(
                    fmt_ci(mine.value, mine.ci_low, mine.ci_high) + (" · none" if mine.status == "none" else ""),
                    bold=mine.top))
            if eff_bins:
                values = [n_eff.get((round(verdict.level, 9), b, entry.imputer), math.nan) for b in eff_bins]
                row.append(Cell(" / ".join("–" if v != v else f"{v:,.0f}" if v >= 10 else f"{v:.1f}"
                                           for v in values)))
            seconds, peak = costs.get(entry.imputer, (math.nan, math.nan))
            row += [Cell(dosage_kind(soft.get(entry.imputer)).split(" (")[0] if soft else "not recorded"),
                    Cell(fmt_seconds(seconds)), Cell(fmt_mb(peak))]
            table.rows.append(row)
    return table
