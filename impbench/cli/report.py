"""``impbench report``: tables, figures and one self-contained HTML page from a run folder."""

from __future__ import annotations

from pathlib import Path

import click

from impbench.errors import ImpbenchError
from impbench.progress import console_status
from impbench.report import parse_formats, write_compare, write_report
from impbench.report.verdict import DEFAULT_MARGIN, check_margin


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR [RUN_B ...]",
                type=click.Path(path_type=Path, file_okay=True, dir_okay=True))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Output folder. Default: RUN_DIR/report (with --compare: "
                   "RUN_A/report/compare-<dataset B>-<run B>, one per run compared; with --compare and more "
                   "than two runs, OUT/compare-<dataset>-<run> each).")
@click.option("--format", "formats", default="md,csv,html,png", show_default=True,
              help="Comma-separated outputs: md (report.md), csv (summary.csv, runtime.csv), "
                   "html (one self-contained report.html), png (figure files).")
@click.option("--compare", is_flag=True,
              help="Compare runs: per-sample dosage R² of RUN_B (and of each further run) against RUN_A, "
                   "paired differences with a 95% CI and a Wilcoxon signed-rank p-value; warns when the masks differ.")
@click.option("--margin", type=float, default=DEFAULT_MARGIN, show_default=True,
              help="R² by which one imputer must beat another to be called better: the lower bound of the "
                   "paired 95% CI of the difference must exceed it (otherwise they are tied).")
def report_cmd(run_dirs: tuple[Path, ...], out_dir: Path | None, formats: str, compare: bool, margin: float) -> None:
    """Turn a run folder written by `impbench run` into tables, figures and an HTML page.

    \b
    Opens with the answer: one recommendation sentence per MAF class (headline R²: the
    mean of the per-MAF-bin dosage R²; better only beyond --margin; cost in seconds and
    peak memory), then one table across masking levels (CIs, n_eff, soft or hard dosages),
    then the notes, collapsed (failures, budget-stopped training, lower coverage, off-target
    masks, what the rare class covers). Then per level the rankings with paired differences,
    a forest plot, per-cohort rankings, each metric per level, overall and per MAF bin
    (paper protocol beside standard, never bolded), calibration, time and memory.
    The HTML embeds everything and loads nothing.

    \b
    Examples:
      impbench report results/sim-1kgp/demo
      impbench report results/sim-1kgp/demo --format html --out /tmp/report
      impbench report --compare results/sim-los/all results/sim-los/aa-only
      impbench report --compare results/sim-los/all results/sim-los/aa-only results/sim-los/ca-to-aa
    """
    from rich.console import Console


    parse_formats(formats)
    check_margin(margin)
    console = Console(stderr=True)
    if compare:
        if len(run_dirs) < 2:
            raise ImpbenchError(f"--compare takes two or more run folders (RUN_A RUN_B ...), got {len(run_dirs)}")
        if len(set(p.resolve() for p in run_dirs)) != len(run_dirs):
            raise ImpbenchError("--compare: a run folder is given twice")
        from impbench.report.load import load_run
        from impbench.report.model import safe_file_name

        paths = []
        for run_b in run_dirs[1:]:
            out = out_dir
            if out_dir is not None and len(run_dirs) > 2:
                loaded = load_run(run_b)
                out = out_dir / safe_file_name(f"compare-{loaded.dataset_name}-{loaded.name}")
            with console_status(console, f"comparing per-sample R² of {run_b} against {run_dirs[0]}"):
                paths.append(write_compare(run_dirs[0], run_b, out, formats))
        for path in paths[:-1]:
            console.print(f"comparison written to {path.parent if path.suffix else path}", highlight=False)
            click.echo(str(path))
        path = paths[-1]
    else:
        if len(run_dirs) != 1:
            raise ImpbenchError(f"report takes one run folder, got {len(run_dirs)} "
                                "(use --compare RUN_A RUN_B to compare two runs)")
        with console_status(console, "writing report") as say:  # timestamped lines without a terminal
            path = write_report(run_dirs[0], out_dir, formats, progress=say, margin=margin)
    console.print(f"report written to {path.parent if path.suffix else path}", highlight=False)
    click.echo(str(path))
