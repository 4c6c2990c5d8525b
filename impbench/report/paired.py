"""Paired differences (``pairs.csv``) looked up in either direction, and the rankings built on them.

``pairs.csv`` holds one row per unordered pair: ``difference = value_a - value_b`` with a paired
bootstrap CI. ``PairIndex.difference(x, y, ...)`` returns ``x - y`` whichever order was written.
``rank`` orders imputers by one metric in one scope (level, protocol, cohort, bin) and marks
each as ``best``, ``tied`` (the best is not better beyond the margin: the lower bound of the
paired CI of best - other is at most ``margin``), ``worse`` (that lower bound exceeds the
margin), ``none`` (a class that no imputer imputes: the best's value is below ``floor``) or
``unpaired`` (no paired row to tell).

Why a margin: near R² = 0 a paired CI that merely excludes 0 is no test. A pure-noise dosage
beat ``major`` by +0.00046, CI [8e-6, 0.0017], in every group; with the margin (default 0.01 R²)
it is tied, and both, below 0.05 R², impute nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from impbench.report.style import LOWER_IS_BETTER

_KEYS = ("level", "protocol", "cohort", "bin", "metric")


class PairIndex:
    """Paired differences by (level, protocol, cohort, bin, metric, imputer_x, imputer_y)."""

    def __init__(self, pairs: pd.DataFrame | None) -> None:
        self._rows: dict[tuple, tuple[float, float, float]] = {}
        if pairs is None or pairs.empty:
            return
        columns = [pairs[c].to_numpy() for c in (*_KEYS, "imputer_a", "imputer_b", "difference", "ci_low", "ci_high")]
        for level, protocol, cohort, bin_label, metric, a, b, diff, low, high in zip(*columns):
            self._rows[(round(float(level), 9), protocol, cohort, bin_label, metric, a, b)] = (
                float(diff), float(low), float(high))

    def __bool__(self) -> bool:
        return bool(self._rows)

    def difference(self, x: str, y: str, level: float, protocol: str, cohort: str, bin_label: str,
                   metric: str) -> tuple[float, float, float] | None:
        """(x - y, CI low, CI high), or None when the pair has no row."""
        key = (round(float(level), 9), protocol, cohort, bin_label, metric)
        if (*key, x, y) in self._rows:
            return self._rows[(*key, x, y)]
        if (*key, y, x) in self._rows:
            diff, low, high = self._rows[(*key, y, x)]
            return -diff, -high, -low
        return None


@dataclass
class Ranked:
    imputer: str
    value: float
    ci_low: float
    ci_high: float
    status: str  # best | tied | worse | none | unpaired
    diff: float = math.nan  # value - best's value (paired), NaN for the best
    diff_low: float = math.nan
    diff_high: float = math.nan

    @property
    def top(self) -> bool:
        """Best or tied with the best."""
        return self.status in ("best", "tied")


def better_beyond(paired: tuple[float, float, float] | None, margin: float, sign: float = 1.0) -> bool:
    """True when ``paired`` (x - y, CI low, CI high) says x is better than y beyond ``margin``:
    the CI bound nearest to "no better" exceeds the margin (``sign`` -1: smaller is better)."""
    if paired is None or not all(math.isfinite(v) for v in paired):
        return False
    return (paired[1] > margin) if sign > 0 else (-paired[2] > margin)


def rank(metrics: pd.DataFrame, index: PairIndex, imputers: list[str], level: float, protocol: str, cohort: str,
         bin_label: str, metric: str, margin: float = 0.0, floor: float | None = None) -> list[Ranked]:
    """Imputers with a defined value, best first (``LOWER_IS_BETTER`` metrics ascending; ties in
    value keep report order). The best's paired difference from itself is 0 by definition.

    margin : the best is better than another only where the paired CI's lower bound of
        best - other exceeds it (else ``tied``). floor : when the best's value is below it,
        every imputer is ``none`` (none imputes this scope); None: no floor."""
    rows = metrics[(np.isclose(metrics["level"], level)) & (metrics["protocol"] == protocol)
                   & (metrics["cohort"] == cohort) & (metrics["bin"] == bin_label) & (metrics["metric"] == metric)]
    by_name = {r.imputer: r for r in rows.itertuples(index=False) if r.value == r.value}
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    order = sorted((n for n in imputers if n in by_name), key=lambda n: (-sign * by_name[n].value, imputers.index(n)))
    out: list[Ranked] = []
    nothing = bool(order) and floor is not None and sign > 0 and by_name[order[0]].value < floor
    for position, name in enumerate(order):
        row = by_name[name]
        if position == 0:
            out.append(Ranked(name, row.value, row.ci_low, row.ci_high, "none" if nothing else "best", 0.0, 0.0, 0.0))
            continue
        paired = index.difference(name, order[0], level, protocol, cohort, bin_label, metric)
        if paired is None or not all(math.isfinite(v) for v in paired):
            status, paired = "unpaired", (row.value - by_name[order[0]].value, math.nan, math.nan)
        else:
            best_minus = (-paired[0], -paired[2], -paired[1])
            status = "worse" if better_beyond(best_minus, margin, sign) else "tied"
        if nothing:
            status = "none"
        out.append(Ranked(name, row.value, row.ci_low, row.ci_high, status, *paired))
    return out


def excludes_others(metrics_rows: dict[str, float], index: PairIndex, level: float, protocol: str, cohort: str,
                    bin_label: str, metric: str, margin: float = 0.0) -> str | None:
    """The imputer whose value is best among ``metrics_rows`` (name -> value, NaN left out) when
    its paired CI against every other imputer lies beyond ``margin`` in its favour
    (``better_beyond``); else None (identical values, overlapping CIs, or no paired rows)."""
    defined = {n: v for n, v in metrics_rows.items() if v == v}
    if len(defined) < 2:
        return None
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    best = max(defined, key=lambda n: sign * defined[n])
    for other in defined:
        if other == best:
            continue
        paired = index.difference(best, other, level, protocol, cohort, bin_label, metric)
        if not better_beyond(paired, margin, sign):
            return None
    return best
