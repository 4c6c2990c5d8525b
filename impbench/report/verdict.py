"""The report's opening section: which imputer to use, and how sure that is.

Per masking level, imputers are ranked by the frequency-fair headline ``VERDICT_METRIC``
(``r2_bin_mean``: the mean over MAF bins of the per-bin dosage R², each bin weighted equally;
standard protocol, all test samples) with 95% CIs, overall and within each MAF class
(``RunResults.classes``: extra ``bin`` rows of metrics.csv and pairs.csv). A run folder written
before that metric existed is ranked on the pooled ``r2`` instead (``verdict_metric``), and the
report says so (``notes.fallback_note``).

"A is better than B" only where the paired CI's lower bound of A - B exceeds the margin
(``DEFAULT_MARGIN`` R², ``impbench report --margin``); otherwise they are tied. Where the best
of a class is below ``NONE_BELOW`` R², no imputer imputes that class (status ``none``); where
two imputers are both below it, neither imputes it. One sentence per level says it in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from impbench.errors import ImpbenchError
from impbench.report.load import ALL, OVERALL, RunResults
from impbench.report.paired import PairIndex, Ranked, rank
from impbench.report.style import class_phrase, fmt_ci, fmt_diff, level_label, level_phrase
from impbench.report.tables import Cell, Table

#: The headline the verdict ranks on (``impbench.scoring`` writes it to metrics.csv).
VERDICT_METRIC = "r2_bin_mean"
#: What runs written before ``VERDICT_METRIC`` existed are ranked on (pooled over all variants).
FALLBACK_METRIC = "r2"
VERDICT_PROTOCOL = "standard"
#: R² by which one imputer must beat another (lower bound of the paired 95% CI).
DEFAULT_MARGIN = 0.01
#: Below this R² in a class an imputer does not impute that class.
NONE_BELOW = 0.05
MAX_PAIR_CLAUSES = 3


def check_margin(margin: float) -> float:
    """``margin`` as a float in [0, 1); ``ImpbenchError`` otherwise (one line for the CLI)."""
    try:
        value = float(margin)
    except (TypeError, ValueError):
        raise ImpbenchError(f"--margin: {margin!r} is not a number") from None
    if not (math.isfinite(value) and 0 <= value < 1):
        raise ImpbenchError(f"--margin must be at least 0 and below 1 (an R² difference), got {margin}")
    return value


@dataclass
class LevelVerdict:
    level: float
    cohort: str
    ranks: dict[str, list[Ranked]]  # bin ("overall" or a class label) -> ranking
    sentence: str
    metric: str = VERDICT_METRIC
    margin: float = DEFAULT_MARGIN


def verdict_metric(results: RunResults) -> str:
    """``VERDICT_METRIC`` when metrics.csv has it (standard protocol), else ``FALLBACK_METRIC``."""
    frame = results.metrics
    has = ((frame["metric"] == VERDICT_METRIC) & (frame["protocol"] == VERDICT_PROTOCOL)).any()
    return VERDICT_METRIC if has else FALLBACK_METRIC


def verdict_levels(results: RunResults) -> list[float]:
    frame = results.metrics
    frame = frame[(frame["protocol"] == VERDICT_PROTOCOL) & (frame["metric"] == verdict_metric(results))]
    return sorted(float(v) for v in frame["level"].dropna().unique())


def level_verdicts(results: RunResults, index: PairIndex, cohort: str = ALL,
                   margin: float = DEFAULT_MARGIN) -> list[LevelVerdict]:
    """One ``LevelVerdict`` per masking level (levels without an overall headline are left out)."""
    metric = verdict_metric(results)
    metrics = results.metrics[(results.metrics["metric"] == metric)
                              & (results.metrics["protocol"] == VERDICT_PROTOCOL)
                              & (results.metrics["cohort"] == cohort)]
    out = []
    for level in verdict_levels(results):
        ranks = {b: rank(metrics, index, results.imputers, level, VERDICT_PROTOCOL, cohort, b, metric,
                         margin=margin, floor=NONE_BELOW)
                 for b in (OVERALL, *results.classes)}
        ranks = {b: r for b, r in ranks.items() if r}
        if OVERALL not in ranks:
            continue
        sentence = level_sentence(level, ranks, index, cohort, results.scheme, metric=metric, margin=margin)
        out.append(LevelVerdict(level, cohort, ranks, sentence, metric, margin))
    return out


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _top_phrase(top: list[str], where: str) -> str:
    if len(top) == 1:
        return f"{top[0]} is best {where}"
    return f"{_names(top)} are tied best {where}"


def _where(b: str) -> str:
    return "overall" if b == OVERALL else f"for {class_phrase(b)}"


def level_sentence(level: float, ranks: dict[str, list[Ranked]], index: PairIndex, cohort: str = ALL,
                   scheme: str = "uniform", metric: str = VERDICT_METRIC, margin: float = DEFAULT_MARGIN) -> str:
    """``At 5% masking beagle is best overall and in every MAF class; no imputer imputes rare
    variants (every R² below 0.05); knn and scda cannot be told apart for low-frequency
    variants.`` from the rankings of one level. Best means: better than every imputer not tied
    with it by more than ``margin`` (``paired.rank``)."""
    lead = f"At {level_phrase(level, scheme)}" if scheme != "array" else f"With {level_phrase(level, scheme)},"
    if cohort != ALL:
        lead += f", in cohort {cohort},"
    tops = {b: [r.imputer for r in ranking if r.top] for b, ranking in ranks.items()}
    nothing = [b for b, ranking in ranks.items() if ranking and ranking[0].status == "none"]
    classes = [b for b in ranks if b != OVERALL and b not in nothing]
    if len(ranks[OVERALL]) == 1:
        return f"{lead} only {ranks[OVERALL][0].imputer} has a result."
    if OVERALL in nothing:
        text = f"{lead} no imputer imputes anything overall (every R² below {NONE_BELOW:g})"
    else:
        same = [b for b in classes if tops[b] == tops[OVERALL]]
        text = f"{lead} " + _top_phrase(tops[OVERALL], "overall")
        if classes and len(same) == len(classes) and not nothing:
            text += " and in every MAF class"
        elif same:
            text += " and for " + _names([class_phrase(b) for b in same])
        differ = [f"for {class_phrase(b)} " + _top_phrase(tops[b], "").strip() for b in classes if b not in same]
        if differ:
            text += "; " + "; ".join(differ)
    none_classes = [class_phrase(b) for b in nothing if b != OVERALL]
    if none_classes:
        pair = [r.imputer for r in ranks[nothing[-1]]] if all(len(ranks[b]) == 2 for b in nothing) else []
        who = f"neither {pair[0]} nor {pair[1]} imputes" if pair else "no imputer imputes"
        text += f"; {who} {_names(none_classes)} (every R² below {NONE_BELOW:g})"
    # Below the floor in a class that someone imputes: "neither imputes".
    below: dict[tuple[str, ...], list[str]] = {}
    for b, ranking in ranks.items():
        if b in nothing:
            continue
        low = tuple(r.imputer for r in ranking if not r.top and r.value < NONE_BELOW)
        if low:
            below.setdefault(low, []).append(_where(b))
    for names, where in below.items():
        scope = _names(where)
        if len(where) == len(ranks) > 1:
            scope = "overall or in any MAF class"
        if len(names) == 1:
            text += f"; {names[0]} does not impute (R² below {NONE_BELOW:g}) {scope}"
        elif len(names) == 2:
            text += f"; neither {names[0]} nor {names[1]} imputes (R² below {NONE_BELOW:g}) {scope}"
        else:
            text += f"; {_names(list(names))} do not impute (R² below {NONE_BELOW:g}) {scope}"
    # Neighbours in a ranking (neither tied with the best, both above the floor) that the margin
    # does not tell apart.
    apart: dict[tuple[str, str], list[str]] = {}
    for b, ranking in ranks.items():
        if b in nothing:
            continue
        rest = [r for r in ranking if not r.top and r.value >= NONE_BELOW]
        for x, y in zip(rest, rest[1:]):
            paired = index.difference(x.imputer, y.imputer, level, VERDICT_PROTOCOL, cohort, b, metric)
            if paired is not None and not (paired[1] > margin or -paired[2] > margin):
                pair = tuple(sorted((x.imputer, y.imputer), key=lambda name: _run_order(ranks, name)))
                apart.setdefault(pair, []).append(_where(b))
    clauses = [f"{x} and {y} cannot be told apart {_names(where)}" for (x, y), where in apart.items()]
    if clauses:
        text += "; " + "; ".join(clauses[:MAX_PAIR_CLAUSES])
    return text + "."


def _run_order(ranks: dict[str, list[Ranked]], name: str) -> int:
    """Position in the level's overall ranking (a stable order for naming pairs)."""
    order = [r.imputer for r in ranks[OVERALL]]
    return order.index(name) if name in order else len(order)


def _status_text(entry: Ranked) -> str:
    return {"best": " · best", "tied": " · tied", "none": " · none"}.get(entry.status, "")


def headline_name(metric: str) -> str:
    """Column label of the verdict metric."""
    if metric == VERDICT_METRIC:
        return "Headline R² (mean over MAF bins)"
    return "Pooled dosage R² (older run: no per-bin mean)"


def _rank_text(position: int, entry: Ranked) -> str:
    if entry.status == "none":
        return "–"
    return "1=" if entry.status == "tied" else "1" if entry.top else str(position + 1)


def verdict_table(results: RunResults, verdict: LevelVerdict, key: str) -> Table:
    """Rank, imputer, overall headline with CI, paired difference from the best, the headline
    per class, and the pooled all-variant R² (dominated by common variants)."""
    classes = [b for b in verdict.ranks if b != OVERALL]
    where = "all test samples" if verdict.cohort == ALL else f"test cohort {verdict.cohort}"
    pooled = {}
    if verdict.metric != FALLBACK_METRIC:
        m = results.metrics
        rows = m[(m["metric"] == FALLBACK_METRIC) & (m["protocol"] == VERDICT_PROTOCOL) & (m["cohort"] == verdict.cohort)
                 & (m["bin"] == OVERALL) & ((m["level"] - verdict.level).abs() < 1e-9)]
        pooled = {r.imputer: r for r in rows.itertuples(index=False)}
    table = Table(key, f"{level_label(verdict.level)} masked: imputers ranked by {headline_name(verdict.metric)}",
                  f"Minor-allele dosage R², standard protocol, {where}; value [95% bootstrap CI]. "
                  f"MAF source: {results.row_maf_source(verdict.cohort)}",
                  ["Rank", "Imputer", f"Overall: {headline_name(verdict.metric)}", "Difference from the best"]
                  + list(classes) + (["Pooled R², all variants (dominated by common variants)"] if pooled else []),
                  note=f"Bold: the best and every imputer tied with it (the best is not ahead by more than "
                       f"{verdict.margin:g} R² at the lower bound of the paired 95% CI). 'none': no imputer "
                       f"reaches {NONE_BELOW:g} R² there. Difference from the best: paired bootstrap (same samples, "
                       "same masks).")
    by_class = {b: {r.imputer: r for r in verdict.ranks[b]} for b in classes}
    overall = verdict.ranks[OVERALL]
    for position, entry in enumerate(overall):
        row = [Cell(_rank_text(position, entry)), Cell(entry.imputer, bold=entry.top),
               Cell(fmt_ci(entry.value, entry.ci_low, entry.ci_high) + _status_text(entry), bold=entry.top),
               Cell("–" if entry.status == "best" or position == 0 else
                    fmt_diff(entry.diff, entry.diff_low, entry.diff_high)
                    + (" (no paired CI)" if entry.status == "unpaired" else ""))]
        for b in classes:
            mine = by_class[b].get(entry.imputer)
            row.append(Cell("n/a") if mine is None else
                       Cell(fmt_ci(mine.value, mine.ci_low, mine.ci_high) + _status_text(mine), bold=mine.top))
        if pooled:
            mine = pooled.get(entry.imputer)
            row.append(Cell("n/a") if mine is None else Cell(fmt_ci(mine.value, mine.ci_low, mine.ci_high)))
        table.rows.append(row)
    return table


def cohort_table(results: RunResults, level: float, by_cohort: dict[str, LevelVerdict], key: str) -> Table:
    """Overall headline per test cohort (columns) and imputer (rows, in the all-samples ranking)."""
    cohorts = list(by_cohort)
    metric = next(iter(by_cohort.values())).metric if by_cohort else VERDICT_METRIC
    margin = next(iter(by_cohort.values())).margin if by_cohort else DEFAULT_MARGIN
    sources = "; ".join(f"{c}: {results.row_maf_source(c)}" for c in cohorts)
    table = Table(key, f"{level_label(level)} masked: {headline_name(metric)} per test cohort",
                  f"Minor-allele dosage R², standard protocol, each cohort's test samples; value [95% CI]. "
                  f"MAF source per cohort row: {sources}", ["Imputer"] + cohorts,
                  note=f"Bold: best in the cohort or tied with it (not behind by more than {margin:g} R² at the "
                       "lower bound of the paired 95% CI).")
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
