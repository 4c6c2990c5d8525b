"""``impbench export``: a run's (or a suite's) result records as JSON lines."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("paths", nargs=-1, required=True, metavar="RUN_DIR...",
                type=click.Path(path_type=Path, file_okay=False, dir_okay=True))
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="The JSON-lines file. Default: RUN_DIR/records.jsonl for one folder, else records.jsonl here.")
def export_cmd(paths: tuple[Path, ...], out_file: Path | None) -> None:
    """Write result records (versioned JSON lines, one per scenario x imputer) of run folders or
    suite folders, for `impbench leaderboard` elsewhere: two labs compare without sharing data.

    \b
    Each record holds the impbench version, the dataset's hash, the scheme, levels and mask
    hashes, the imputer's name, version and options fingerprint, every headline estimate with
    its 95% CI (standard protocol, all test samples, overall and per MAF class), paired
    differences against the run's other imputers, seconds, peak memory and the machine.
    Schema: docs/results.md ("Result records").

    \b
    Examples:
      impbench export results/sim-1kgp/demo
      impbench export results/suites/quick --out quick-mylab.jsonl
      impbench leaderboard quick-mylab.jsonl quick-otherlab.jsonl
    """
    from impbench.bench.export import run_records, write_records
    from impbench.report.leaderboard.collect import run_folders

    records = []
    for path in paths:
        for run_dir in run_folders(path):
            records += run_records(run_dir)
    if out_file is None:
        out_file = (paths[0] / "records.jsonl") if len(paths) == 1 else Path("records.jsonl")
    write_records(records, out_file)
    scenarios = len({(r["suite"], r["scenario"]) for r in records})
    click.echo(f"{len(records)} records ({scenarios} scenarios) written to {out_file}")
