"""``impbench leaderboard``: one ranked page across run folders, suite folders and result records.

Public API: ``build_leaderboard(paths, out_dir, margin=0.01, formats=...) -> Leaderboard``,
which gathers the records (``collect``: scenarios never mix across dataset hashes or masks),
ranks every (scenario, level) task on the report's headline metric (``rank``: ties by paired
CIs with a margin) and writes ``leaderboard.html``, ``leaderboard.csv`` and ``leaderboard.json``
(``page``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from impbench.errors import ImpbenchError
from impbench.report.leaderboard.collect import Scenario, gather, scenarios
from impbench.report.leaderboard.page import write_leaderboard
from impbench.report.leaderboard.rank import DEFAULT_MARGIN, VERDICT_METRIC, Standing, Task, rank_all

FORMATS = ("html", "csv", "json")


@dataclass
class Leaderboard:
    scenarios: list[Scenario]
    tasks: list[Task]
    standings: list[Standing]
    files: dict[str, Path]


def parse_formats(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ImpbenchError(f"--format: choose from {', '.join(FORMATS)}" + (f" (not {', '.join(unknown)})" if unknown else ""))
    return names


def build_leaderboard(paths: Iterable[str | Path], out_dir: str | Path, margin: float = DEFAULT_MARGIN,
                      formats: tuple[str, ...] = FORMATS) -> Leaderboard:
    """Gather, rank and write (see the module docstring); ``ImpbenchError`` for a user mistake."""
    if not (margin >= 0 and margin < 1):
        raise ImpbenchError(f"--margin {margin:g}: must be in [0, 1)")
    found = scenarios(gather(list(paths)))
    tasks, standings = rank_all(found, margin, VERDICT_METRIC)
    if not tasks:
        raise ImpbenchError(f"no scenario has a {VERDICT_METRIC!r} estimate to rank (runs without results yet?)")
    files = write_leaderboard(Path(out_dir), found, tasks, standings, VERDICT_METRIC, margin, formats)
    return Leaderboard(found, tasks, standings, files)
