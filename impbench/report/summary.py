"""The end of ``impbench run``: a short rich table (imputers x MAF classes at the first level,
the verdict's headline R² with its 95% CI, the best and its ties within the margin marked), the
recommendation sentence, the run folder and the next command.

``run_summary(run_dir) -> rich renderable``; the caller prints it (``Console.print``).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from impbench.report.load import ALL, OVERALL, load_run
from impbench.report.paired import PairIndex
from impbench.report.style import fmt_ci, level_phrase
from impbench.report.recommend import recommendation
from impbench.report.verdict import DEFAULT_MARGIN, headline_name, level_verdicts


def run_summary(run_dir: str | Path, margin: float = DEFAULT_MARGIN):
    """A rich ``Group``: the verdict's first level as a table (rows imputers in the overall
    ranking; columns overall and each MAF class; ``*`` best, ``=`` tied with it), its
    sentence, the run folder and ``impbench report <run_dir>``. Never raises on a run without
    metrics: it then says so."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    run_dir = Path(run_dir)
    results = load_run(run_dir)
    verdicts = level_verdicts(results, PairIndex(results.pairs), ALL, margin=margin)
    parts = []
    if verdicts:
        verdict = verdicts[0]
        columns = [OVERALL] + [c for c in results.classes if c in verdict.ranks]
        table = Table(title=f"{headline_name(verdict.metric)}, {level_phrase(verdict.level, results.scheme)} "
                            f"(95% CI; * best, = tied with it within {verdict.margin:g})", title_justify="left")
        table.add_column("Imputer")
        for column in columns:
            table.add_column(column, justify="right")
        by_column = {c: {r.imputer: r for r in verdict.ranks[c]} for c in columns}
        for entry in verdict.ranks[OVERALL]:
            cells = []
            for column in columns:
                mine = by_column[column].get(entry.imputer)
                if mine is None:
                    cells.append("n/a")
                    continue
                mark = {"best": " *", "tied": " =", "none": " -"}.get(mine.status, "  ")
                text = fmt_ci(mine.value, mine.ci_low, mine.ci_high) + mark
                cells.append(f"[bold]{text}[/bold]" if mine.top else text)
            table.add_row(entry.imputer, *cells)
        parts += [table, Text(recommendation(results, verdicts))]
    else:
        parts.append(Text("No dosage R² to summarise yet (metrics.csv absent or empty)."))
    parts.append(Text(f"Run folder: {run_dir}"))
    parts.append(Text(f"Next: impbench report {shlex.quote(str(run_dir))}", style="bold"))
    return Group(*parts)
