"""``impbench report``: tables, figures and one self-contained HTML page from a run folder."""

from __future__ import annotations

from pathlib import Path

import click

from impbench.errors import ImpbenchError
from impbench.progress import console_status
from impbench.report import parse_formats, write_compare, write_report


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR [RUN_B]",
                type=click.Path(path_type=Path, file_okay=True, dir_okay=True))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Output folder. Default: RUN_DIR/report (with --compare: "
                   "RUN_A/report/compare-<dataset B>-<run B>).")
@click.option("--format", "formats", default="md,csv,html,png", show_default=True,
              help="Comma-separated outputs: md (report.md), csv (summary.csv, runtime.csv), "
                   "html (one self-contained report.html), png (figure files).")
@click.option("--compare", is_flag=True,
              help="Compare two runs: per-sample dosage R² of RUN_B against RUN_A, paired differences "
                   "with a 95% CI and a Wilcoxon signed-rank p-value; warns when the masks differ.")
def report_cmd(run_dirs: tuple[Path, ...], out_dir: Path | None, formats: str, compare: bool) -> None:
    """Turn a run folder written by `impbench run` into tables, figures and an HTML page.

    \b
    Opens with the Verdict: per masking level, imputers ranked by dosage R² with 95%
    bootstrap CIs, overall and per MAF class, ties by paired CIs, one sentence per level, a
    forest plot, per-cohort rankings and warnings (budget-stopped training, lower coverage,
    off-target masks). Then each metric per level, overall and per MAF bin (value [95% CI],
    bold only where a paired CI excludes the others), calibration, time and memory.
    The HTML embeds everything and loads nothing.

    \b
    Examples:
      impbench report results/sim-1kgp/demo
      impbench report results/sim-1kgp/demo --format html --out /tmp/report
      impbench report --compare results/sim-los/all results/sim-los/aa-only
    """
    from rich.console import Console


    parse_formats(formats)
    console = Console(stderr=True)
    if compare:
        if len(run_dirs) != 2:
            raise ImpbenchError(f"--compare takes two run folders (RUN_A RUN_B), got {len(run_dirs)}")
        with console_status(console, "comparing per-sample R²"):
            path = write_compare(run_dirs[0], run_dirs[1], out_dir, formats)
    else:
        if len(run_dirs) != 1:
            raise ImpbenchError(f"report takes one run folder, got {len(run_dirs)} "
                                "(use --compare RUN_A RUN_B to compare two runs)")
        with console_status(console, "writing report") as say:  # timestamped lines without a terminal
            path = write_report(run_dirs[0], out_dir, formats, progress=say)
    console.print(f"report written to {path.parent if path.suffix else path}", highlight=False)
    click.echo(str(path))
