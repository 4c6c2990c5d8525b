"""Ranking the imputers of every scenario and across scenarios.

A **task** is one (scenario, masking level). Its headline is ``VERDICT_METRIC`` of
``impbench.report.verdict`` (what the report's Verdict ranks on) at the overall bin, standard
protocol, all test samples, with its 95% bootstrap CI. Imputer ``j`` **beats** ``i`` in a task
when the difference is both real and larger than the margin (``--margin``, default 0.01):

- paired (both from one run, so the paired bootstrap difference is in the records): the paired
  CI of ``j - i`` excludes 0 in ``j``'s favour and ``|j - i|`` exceeds the margin;
- unpaired (records from different runs, e.g. two labs): the two CIs do not overlap and the
  gap between the values exceeds the margin (conservative: separate CIs are a stronger test).

An imputer's rank is 1 + the number of imputers that beat it, so imputers nobody separates share
a rank. In a task it **won** (rank 1 and it beats every other), **tied** (rank 1, but at least
one other is not beaten) or **lost** (rank above 1). Across tasks: the mean rank, the tasks
won, tied and lost, the tasks it was "n/a" in (``ImputerNotApplicable``) or failed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from impbench.report.leaderboard.collect import Scenario, Source
from impbench.report.style import LOWER_IS_BETTER
from impbench.report.verdict import VERDICT_METRIC, VERDICT_PROTOCOL

OVERALL = "overall"
DEFAULT_MARGIN = 0.01
NOT_APPLICABLE = "not_applicable"


@dataclass
class Entry:
    """One imputer in one task. ``state``: ranked | n/a | failed | missing."""

    imputer: str
    state: str
    value: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    rank: int | None = None
    outcome: str | None = None  # won | tied | lost
    paired: bool = True  # every comparison behind its rank was paired
    seconds: float | None = None
    peak_mb: float | None = None
    note: str = ""


@dataclass
class Task:
    scenario: Scenario
    level: float
    entries: list[Entry] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.scenario.label} @ {self.level:g}"


@dataclass
class Standing:
    """An imputer across tasks."""

    imputer: str
    ranks: list[int] = field(default_factory=list)
    won: int = 0
    tied: int = 0
    lost: int = 0
    not_applicable: int = 0
    failed: int = 0

    @property
    def mean_rank(self) -> float:
        return sum(self.ranks) / len(self.ranks) if self.ranks else math.nan


def _num(value) -> float:
    return math.nan if value is None else float(value)


def _estimate(record: dict, level: float, metric: str) -> dict | None:
    for e in record.get("estimates") or []:
        if e.get("metric") == metric and e.get("bin") == OVERALL and math.isclose(float(e["level"]), level, abs_tol=1e-9):
            return e
    return None


def _paired(source: Source, other: Source, level: float, metric: str) -> tuple[float, float, float] | None:
    """(source - other, CI) from ``source``'s record when both come from one run."""
    if source.run_id != other.run_id:
        return None
    for p in source.record.get("paired") or []:
        if (p.get("other") == other.imputer and p.get("metric") == metric and p.get("bin") == OVERALL
                and math.isclose(float(p["level"]), level, abs_tol=1e-9)):
            values = (_num(p.get("difference")), _num(p.get("ci_low")), _num(p.get("ci_high")))
            return values if all(math.isfinite(v) for v in values) else None
    return None


def beats(a: Entry, sa: Source, b: Entry, sb: Source, level: float, metric: str, margin: float) -> tuple[bool, bool]:
    """(whether ``a`` beats ``b``, whether the answer came from a paired difference)."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    paired = _paired(sa, sb, level, metric)
    if paired is not None:
        diff, low, high = (sign * v for v in paired)
        low, high = min(low, high), max(low, high)
        return low > 0 and diff > margin, True
    if sign > 0:
        separated = a.ci_low > b.ci_high
    else:
        separated = a.ci_high < b.ci_low
    return bool(separated and sign * (a.value - b.value) > margin), False


def scenario_levels(scenario: Scenario, metric: str = VERDICT_METRIC) -> list[float]:
    levels = {round(float(e["level"]), 9) for s in scenario.sources for e in s.record.get("estimates") or []
              if e.get("metric") == metric and e.get("bin") == OVERALL}
    return sorted(levels)


def rank_task(scenario: Scenario, level: float, margin: float = DEFAULT_MARGIN, metric: str = VERDICT_METRIC) -> Task:
    task = Task(scenario, level)
    ranked: list[tuple[Entry, Source]] = []
    for source in scenario.sources:
        record = source.record
        status = str(record["imputer"].get("status") or "")
        cost = record.get("cost") or {}
        entry = Entry(source.imputer, "missing", seconds=cost.get("seconds"), peak_mb=cost.get("peak_mb"))
        estimate = _estimate(record, level, metric)
        if status == NOT_APPLICABLE:
            entry.state, entry.note = "n/a", str(record["imputer"].get("error") or "not applicable")
        elif estimate is not None and math.isfinite(_num(estimate.get("value"))):
            entry.state = "ranked"
            entry.value, entry.ci_low, entry.ci_high = (_num(estimate.get(k)) for k in ("value", "ci_low", "ci_high"))
            if status != "ok":
                entry.note = f"status {status}"
            ranked.append((entry, source))
        elif status in ("failed", "partial", "interrupted"):
            entry.state, entry.note = "failed", str(record["imputer"].get("error") or status)
        else:
            entry.note = f"no {metric} at this level (status {status or 'unknown'})"
        task.entries.append(entry)
    for entry, source in ranked:
        results = [(beats(other, so, entry, source, level, metric, margin), other) for other, so in ranked
                   if other is not entry]
        entry.rank = 1 + sum(won for (won, _), _ in results)
        entry.paired = all(paired for (_, paired), _ in results)
    for entry, source in ranked:
        if entry.rank > 1:
            entry.outcome = "lost"
        else:
            beaten = all(beats(entry, source, other, so, level, metric, margin)[0]
                         for other, so in ranked if other is not entry)
            entry.outcome = "won" if beaten else "tied"
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    order = {"ranked": 0, "failed": 1, "missing": 2, "n/a": 3}
    task.entries.sort(key=lambda e: (order[e.state], e.rank or 0, -sign * e.value if e.state == "ranked" else 0))
    return task


def rank_all(scenarios: list[Scenario], margin: float = DEFAULT_MARGIN,
             metric: str = VERDICT_METRIC) -> tuple[list[Task], list[Standing]]:
    """Every task of every scenario, and the standings (best mean rank first; then most won)."""
    tasks = [rank_task(s, level, margin, metric) for s in scenarios for level in scenario_levels(s, metric)]
    standings: dict[str, Standing] = {}
    for source in (s for scenario in scenarios for s in scenario.sources):
        standings.setdefault(source.imputer, Standing(source.imputer))
    for task in tasks:
        for entry in task.entries:
            standing = standings[entry.imputer]
            if entry.state == "ranked":
                standing.ranks.append(int(entry.rank))
                setattr(standing, entry.outcome, getattr(standing, entry.outcome) + 1)
            elif entry.state == "n/a":
                standing.not_applicable += 1
            else:
                standing.failed += 1
    order = sorted(standings.values(), key=lambda s: (not s.ranks, s.mean_rank if s.ranks else 0, -s.won, -s.tied,
                                                     s.imputer))
    return tasks, order


__all__ = ["DEFAULT_MARGIN", "Entry", "Standing", "Task", "VERDICT_METRIC", "VERDICT_PROTOCOL", "beats", "rank_all",
           "rank_task", "scenario_levels"]
