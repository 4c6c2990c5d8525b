"""The report's opening section: which imputer to use, and how sure that is.

Per masking level, imputers are ranked by overall minor-allele dosage R² (``r2``, standard
protocol, all test samples, ``VERDICT_METRIC``) with 95% bootstrap CIs, and within each MAF
class (``RunResults.classes``: extra ``bin`` rows of metrics.csv and pairs.csv). An imputer
whose paired difference from the best has a CI covering 0 is tied with it (``paired.rank``).
One generated sentence per level says it in words; ``flags`` lists results not to trust.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from impbench.report.load import ALL, OVERALL, RunResults
from impbench.report.paired import PairIndex, Ranked, rank
from impbench.report.style import class_phrase, fmt_ci, fmt_count, fmt_diff, level_label, level_phrase
from impbench.report.tables import Cell, Table

VERDICT_METRIC = "r2"
VERDICT_PROTOCOL = "standard"
#: ``info.stop_reason`` values that mean a neural imputer hit its budget rather than converging.
BUDGET_STOPS = {"epochs": "its epoch budget", "time": "its time budget"}
MAX_PAIR_CLAUSES = 3


@dataclass
class LevelVerdict:
    level: float
    cohort: str
    ranks: dict[str, list[Ranked]]  # bin ("overall" or a class label) -> ranking
    sentence: str


def verdict_levels(results: RunResults) -> list[float]:
    frame = results.metrics
    frame = frame[(frame["protocol"] == VERDICT_PROTOCOL) & (frame["metric"] == VERDICT_METRIC)]
    return sorted(float(v) for v in frame["level"].dropna().unique())


def level_verdicts(results: RunResults, index: PairIndex, cohort: str = ALL) -> list[LevelVerdict]:
    """One ``LevelVerdict`` per masking level (levels without an overall ``r2`` are left out)."""
    metrics = results.metrics[(results.metrics["metric"] == VERDICT_METRIC)
                              & (results.metrics["protocol"] == VERDICT_PROTOCOL)
                              & (results.metrics["cohort"] == cohort)]
    out = []
    for level in verdict_levels(results):
        ranks = {b: rank(metrics, index, results.imputers, level, VERDICT_PROTOCOL, cohort, b, VERDICT_METRIC)
                 for b in (OVERALL, *results.classes)}
        ranks = {b: r for b, r in ranks.items() if r}
        if OVERALL not in ranks:
            continue
        out.append(LevelVerdict(level, cohort, ranks, level_sentence(level, ranks, index, cohort, results.scheme)))
    return out


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _top_phrase(top: list[str], where: str) -> str:
    if len(top) == 1:
        return f"{top[0]} is best {where}"
    return f"{_names(top)} are tied best {where}"


def level_sentence(level: float, ranks: dict[str, list[Ranked]], index: PairIndex, cohort: str = ALL,
                   scheme: str = "uniform") -> str:
    """``At 5% masking beagle is best overall and in every MAF class; knn and scda cannot be
    told apart for rare variants.`` from the rankings of one level."""
    lead = f"At {level_phrase(level, scheme)}" if scheme != "array" else f"With {level_phrase(level, scheme)},"
    if cohort != ALL:
        lead += f", in cohort {cohort},"
    tops = {b: [r.imputer for r in ranking if r.top] for b, ranking in ranks.items()}
    classes = [b for b in ranks if b != OVERALL]
    if len(ranks[OVERALL]) == 1:
        return f"{lead} only {ranks[OVERALL][0].imputer} has a result."
    same = [b for b in classes if tops[b] == tops[OVERALL]]
    text = f"{lead} " + _top_phrase(tops[OVERALL], "overall")
    if classes and len(same) == len(classes):
        text += " and in every MAF class"
    elif same:
        text += " and for " + _names([class_phrase(b) for b in same])
    differ = [f"for {class_phrase(b)} " + _top_phrase(tops[b], "").strip() for b in classes if b not in same]
    if differ:
        text += "; " + "; ".join(differ)
    # Neighbours in a ranking (neither tied with the best) whose paired CI covers 0.
    apart: dict[tuple[str, str], list[str]] = {}
    for b, ranking in ranks.items():
        rest = [r.imputer for r in ranking if not r.top]
        for x, y in zip(rest, rest[1:]):
            x, y = sorted((x, y), key=lambda name: _run_order(ranks, name))
            paired = index.difference(x, y, level, VERDICT_PROTOCOL, cohort, b, VERDICT_METRIC)
            if paired is not None and paired[1] <= 0 <= paired[2]:
                apart.setdefault((x, y), []).append("overall" if b == OVERALL else f"for {class_phrase(b)}")
    clauses = [f"{x} and {y} cannot be told apart {_names(where)}" for (x, y), where in apart.items()]
    if clauses:
        text += "; " + "; ".join(clauses[:MAX_PAIR_CLAUSES])
    return text + "."


def _run_order(ranks: dict[str, list[Ranked]], name: str) -> int:
    """Position in the level's overall ranking (a stable order for naming pairs)."""
    order = [r.imputer for r in ranks[OVERALL]]
    return order.index(name) if name in order else len(order)


def _status_text(entry: Ranked) -> str:
    return {"best": " · best", "tied": " · tied"}.get(entry.status, "")


def verdict_table(results: RunResults, verdict: LevelVerdict, key: str) -> Table:
    """Rank, imputer, overall R² with CI, paired difference from the best, R² per class."""
    classes = [b for b in verdict.ranks if b != OVERALL]
    where = "all test samples" if verdict.cohort == ALL else f"test cohort {verdict.cohort}"
    table = Table(key, f"{level_label(verdict.level)} masked: imputers ranked by dosage R²",
                  f"Minor-allele dosage R², standard protocol, {where}; value [95% bootstrap CI over test samples]. "
                  f"MAF source: {results.maf_source}",
                  ["Rank", "Imputer", "Overall R²", "Difference from the best"] + list(classes),
                  note="Bold: the best and every imputer tied with it (its paired difference from the best has "
                       "a 95% CI covering 0). Difference from the best: paired bootstrap (same samples, same masks).")
    by_class = {b: {r.imputer: r for r in verdict.ranks[b]} for b in classes}
    overall = verdict.ranks[OVERALL]
    for position, entry in enumerate(overall):
        rank_text = "1" if entry.top else str(position + 1)
        if entry.status == "tied":
            rank_text = "1="
        row = [Cell(rank_text), Cell(entry.imputer, bold=entry.top),
               Cell(fmt_ci(entry.value, entry.ci_low, entry.ci_high) + _status_text(entry), bold=entry.top),
               Cell("–" if entry.status == "best" else fmt_diff(entry.diff, entry.diff_low, entry.diff_high)
                    + (" (no paired CI)" if entry.status == "unpaired" else ""))]
        for b in classes:
            mine = by_class[b].get(entry.imputer)
            row.append(Cell("n/a") if mine is None else
                       Cell(fmt_ci(mine.value, mine.ci_low, mine.ci_high) + _status_text(mine), bold=mine.top))
        table.rows.append(row)
    return table


def cohort_table(results: RunResults, level: float, by_cohort: dict[str, LevelVerdict], key: str) -> Table:
    """Overall R² per test cohort (columns) and imputer (rows, in the all-samples ranking)."""
    cohorts = list(by_cohort)
    table = Table(key, f"{level_label(level)} masked: overall dosage R² per test cohort",
                  "Minor-allele dosage R², standard protocol, each cohort's test samples; value [95% CI]. "
                  f"MAF source: {results.maf_source}", ["Imputer"] + cohorts,
                  note="Bold: best in the cohort or tied with it (paired CI covering 0).")
    entries = {c: {r.imputer: r for r in v.ranks[OVERALL]} for c, v in by_cohort.items()}
    order = list(dict.fromkeys(n for v in by_cohort.values() for n in (r.imputer for r in v.ranks[OVERALL])))
    for name in order:
        row = [Cell(name)]
        for cohort in cohorts:
            entry = entries[cohort].get(name)
            row.append(Cell("n/a") if entry is None else
                       Cell(fmt_ci(entry.value, entry.ci_low, entry.ci_high) + _status_text(entry), bold=entry.top))
        table.rows.append(row)
    return table


def flags(results: RunResults) -> list[str]:
    """Warnings on results not to trust: budget-stopped neural imputers, imputers that covered
    fewer variants than others, masks whose achieved rate differs from the requested one."""
    out = []
    for name in results.imputers:
        info = results.imputer_info(name).get("info") or {}
        stopped = info.get("stop_reason") if isinstance(info, dict) else None
        if stopped in BUDGET_STOPS:
            out.append(f"{name} stopped at {BUDGET_STOPS[stopped]}, not by convergence: it may score better "
                       "with more training.")
    covered = {}
    for name in results.imputers:
        units = [u for u in (results.imputer_info(name).get("impute") or []) if isinstance(u, dict)]
        counts = [u["n_covered"] for u in units if isinstance(u.get("n_covered"), (int, float))]
        if counts:
            covered[name] = min(counts)
    metrics = results.metrics
    coverage = metrics[(metrics["metric"] == "coverage") & (metrics["bin"] == OVERALL) & (metrics["cohort"] == ALL)]
    coverage_min = coverage.groupby("imputer")["value"].min()
    most = max(covered.values()) if covered else None
    for name in results.imputers:
        fraction = float(coverage_min.get(name, np.nan))
        below = most is not None and name in covered and covered[name] < most
        if below or (fraction == fraction and fraction < 1 - 1e-9):
            detail = f"{fraction:.1%} of the variants" if fraction == fraction else "fewer variants"
            if below:
                detail += f" ({fmt_count(covered[name])}, against {fmt_count(most)} for others)"
            out.append(f"{name} covered {detail}: its scores are over fewer variants than the others'.")
    warned: dict[str, list[str]] = {}
    for mask in results.manifest.get("masks") or []:
        if isinstance(mask, dict) and mask.get("warning"):
            level = mask.get("level")
            label = level_label(level) if isinstance(level, (int, float)) else str(level)
            warned.setdefault((label, str(mask["warning"])), []).append(str(mask.get("replicate")))
    for (label, warning), replicates in warned.items():
        which = "replicate" + ("s " if len(replicates) > 1 else " ") + ", ".join(replicates)
        out.append(f"Masks at {label} ({which}): {warning.rstrip('.')}.")
    return out
