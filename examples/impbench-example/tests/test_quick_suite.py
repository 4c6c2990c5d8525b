"""The plugin author's path (docs/writing-plugins.md, section 6): run the example plugin on the
``quick`` suite beside the baselines and read the leaderboard. Slow: it prepares sim-1kgp (once
per cache) and runs two scenarios x 2 replicates for three imputers."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from impbench.cli import main
from impbench.report.verdict import VERDICT_METRIC

pytestmark = pytest.mark.slow


def _impbench(argv):
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code


def test_example_plugin_on_the_quick_suite_and_the_leaderboard(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _impbench(["suite", "run", "quick", "--imputers", "major,knn,allele-freq", "--no-progress",
                      "--bootstrap", "200"]) == 0
    suite_dir = tmp_path / "results" / "suites" / "quick"
    written = json.loads((suite_dir / "suite.json").read_text())
    assert [s["status"] for s in written["scenarios"]] == ["ok", "ok"]
    assert _impbench(["leaderboard", str(suite_dir), "--out", "board"]) == 0
    board = pd.read_csv(tmp_path / "board" / "leaderboard.csv")
    assert set(board.scenario) == {"sim-1kgp-uniform", "sim-1kgp-ceu-to-yri"}
    assert set(board.imputer) == {"major", "knn", "allele-freq"} and (board.state == "ranked").all()
    # the leaderboard's numbers are the runs' own estimates
    for s in written["scenarios"]:
        metrics = pd.read_csv(suite_dir / s["run_dir"] / "metrics.csv", keep_default_na=False, na_values=[""])
        row = metrics[(metrics.imputer == "allele-freq") & (metrics.metric == VERDICT_METRIC) & (metrics["bin"] == "overall")
                      & (metrics.cohort == "all") & (metrics.protocol == "standard")].iloc[0]
        got = board[(board.scenario == s["name"]) & (board.imputer == "allele-freq")].iloc[0]
        assert got.value == pytest.approx(row.value, rel=1e-5)
    standings = json.loads((tmp_path / "board" / "leaderboard.json").read_text())["standings"]
    assert {s["imputer"] for s in standings} == {"major", "knn", "allele-freq"}
    assert all(s["tasks_ranked"] == 2 and s["won"] + s["tied"] + s["lost"] == 2 for s in standings)
    html = (tmp_path / "board" / "leaderboard.html").read_text()
    assert html.index("Standings") < html.index("Per scenario") and "allele-freq" in html
    # records made here are read back by a leaderboard elsewhere
    assert _impbench(["export", str(suite_dir), "--out", "mine.jsonl"]) == 0
    assert _impbench(["leaderboard", "mine.jsonl", "--out", "board2"]) == 0
    again = pd.read_csv(tmp_path / "board2" / "leaderboard.csv")
    assert list(again["value"]) == pytest.approx(list(board["value"]))
