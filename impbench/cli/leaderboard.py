"""``impbench leaderboard``: one ranked page across runs, suites and result records."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("leaderboard")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...",
                type=click.Path(path_type=Path, exists=False))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("leaderboard"),
              show_default=True, help="Output folder of leaderboard.html, leaderboard.csv and leaderboard.json.")
@click.option("--margin", default=0.01, show_default=True, type=float,
              help="A difference smaller than this is a tie even when its paired CI excludes 0.")
@click.option("--format", "formats", default="html,csv,json", show_default=True, help="Comma list of html, csv, json.")
def leaderboard_cmd(paths: tuple[Path, ...], out_dir: Path, margin: float, formats: str) -> None:
    """Rank imputers across scenarios: PATH is a run folder, a suite folder (from `impbench suite
    run`) or a JSON-lines file of result records (from `impbench export`, made anywhere).

    \b
    A task is one scenario at one masking level, scored on the report's headline metric with its
    95% CI; imputers are ranked per task with ties by paired CIs (--margin), then across tasks
    by mean rank with the tasks won, tied and lost; seconds and peak memory per imputer per
    scenario. Records of one scenario scored on other data or other masks are refused, in one
    line naming the record. Results first: the page opens with the standings.

    \b
    Examples:
      impbench leaderboard results/suites/quick
      impbench leaderboard results/suites/standard --out /tmp/board --margin 0.005
      impbench leaderboard mylab.jsonl otherlab.jsonl
    """
    from impbench.report.leaderboard import build_leaderboard, parse_formats

    board = build_leaderboard(paths, out_dir, margin, parse_formats(formats))
    for position, s in enumerate(board.standings, 1):
        mean = f"{s.mean_rank:.2f}" if s.ranks else "–"
        click.echo(f"{position:>2}. {s.imputer:<14} mean rank {mean:>5}  won {s.won}, tied {s.tied}, lost {s.lost}"
                   f" of {len(board.tasks)} tasks" + (f", n/a {s.not_applicable}" if s.not_applicable else "")
                   + (f", failed {s.failed}" if s.failed else ""))
    for path in board.files.values():
        click.echo(str(path))
