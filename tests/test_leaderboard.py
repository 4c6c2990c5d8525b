"""The leaderboard (impbench.report.leaderboard): ranks with ties by paired CIs and a margin, unpaired
comparison across runs, n/a and failures, scenarios that never mix across dataset hashes or
masks, and the three files."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from impbench.bench.export import run_records, write_records
from impbench.cli import cli
from impbench.errors import ImpbenchError
from impbench.report.leaderboard import build_leaderboard
from impbench.report.leaderboard.collect import Source, scenarios
from impbench.report.leaderboard.rank import rank_all, rank_task
from impbench.report.verdict import VERDICT_METRIC
from impbench.testing.synthetic import write_synthetic_run


def record(name, value, half=0.02, run="r1", paired=(), status="ok", scenario="s", dataset_hash="h" * 64,
           masks=(("0.15", 0, "m0"),), level=0.15):
    """A hand-made record: ``paired`` is (other, difference, ci_low, ci_high)."""
    return {"schema": "impbench.result", "schema_version": 1, "suite": None, "scenario": scenario,
            "run": {"id": run}, "dataset": {"name": "d", "hash": dataset_hash},
            "settings": {"scheme": "uniform"},
            "masks": [{"level": float(lv), "replicate": r, "sha256": h} for lv, r, h in masks],
            "imputer": {"name": name, "status": status, "error": None if status == "ok" else "why"},
            "estimates": [] if value is None else [{"level": level, "bin": "overall", "metric": VERDICT_METRIC,
                                                    "value": value, "ci_low": value - half, "ci_high": value + half}],
            "paired": [{"other": o, "level": level, "bin": "overall", "metric": VERDICT_METRIC, "difference": d,
                        "ci_low": lo, "ci_high": hi} for o, d, lo, hi in paired],
            "cost": {"seconds": 1.0, "peak_mb": 10.0}}


def ranks(sources, margin=0.01):
    task = rank_task(scenarios(sources)[0], 0.15, margin)
    return {e.imputer: (e.rank, e.outcome, e.state) for e in task.entries}


def test_paired_ci_excluding_zero_beats_and_covering_zero_ties():
    a = record("a", 0.90, paired=[("b", 0.05, 0.04, 0.06), ("c", 0.003, -0.001, 0.007)])
    b = record("b", 0.85, paired=[("a", -0.05, -0.06, -0.04), ("c", -0.047, -0.05, -0.04)])
    c = record("c", 0.897, paired=[("a", -0.003, -0.007, 0.001), ("b", 0.047, 0.04, 0.05)])
    got = ranks([Source(x, "x") for x in (a, b, c)])
    assert got == {"a": (1, "tied", "ranked"), "c": (1, "tied", "ranked"), "b": (3, "lost", "ranked")}


def test_the_margin_turns_a_real_but_small_difference_into_a_tie():
    a = record("a", 0.905, paired=[("b", 0.005, 0.003, 0.007)])
    b = record("b", 0.900, paired=[("a", -0.005, -0.007, -0.003)])
    sources = [Source(a, "x"), Source(b, "x")]
    assert ranks(sources, margin=0.01) == {"a": (1, "tied", "ranked"), "b": (1, "tied", "ranked")}
    assert ranks(sources, margin=0.001) == {"a": (1, "won", "ranked"), "b": (2, "lost", "ranked")}


def test_records_of_different_runs_compare_unpaired_by_separate_cis():
    a = record("a", 0.90, half=0.01, run="lab1")
    b = record("b", 0.85, half=0.01, run="lab2")
    c = record("c", 0.89, half=0.01, run="lab3")
    task = rank_task(scenarios([Source(x, "x") for x in (a, b, c)])[0], 0.15, 0.01)
    got = {e.imputer: (e.rank, e.outcome, e.paired) for e in task.entries}
    assert got == {"a": (1, "tied", False), "c": (1, "tied", False), "b": (3, "lost", False)}


def test_not_applicable_and_failed_are_shown_not_ranked_and_counted():
    a = record("a", 0.9)
    na = record("mm", None, status="not_applicable")
    failed = record("f", None, status="failed")
    tasks, standings = rank_all(scenarios([Source(x, "x") for x in (a, na, failed)]))
    states = {e.imputer: e.state for e in tasks[0].entries}
    assert states == {"a": "ranked", "mm": "n/a", "f": "failed"}
    by_name = {s.imputer: s for s in standings}
    assert by_name["mm"].not_applicable == 1 and not by_name["mm"].ranks
    assert by_name["f"].failed == 1
    assert standings[0].imputer == "a" and by_name["a"].won == 1


def test_mean_rank_and_won_tied_lost_across_scenarios():
    sources = []
    for scenario, (va, vb) in {"s1": (0.9, 0.8), "s2": (0.7, 0.8), "s3": (0.9, 0.8)}.items():
        d = va - vb
        sources += [Source(record("a", va, scenario=scenario, paired=[("b", d, d - 0.01, d + 0.01)]), scenario),
                    Source(record("b", vb, scenario=scenario, paired=[("a", -d, -d - 0.01, -d + 0.01)]), scenario)]
    tasks, standings = rank_all(scenarios(sources))
    assert len(tasks) == 3
    a, b = standings
    assert (a.imputer, a.mean_rank, a.won, a.tied, a.lost) == ("a", pytest.approx(4 / 3), 2, 0, 1)
    assert (b.imputer, b.mean_rank, b.won, b.lost) == ("b", pytest.approx(5 / 3), 1, 2)


def test_a_different_dataset_hash_is_refused_naming_the_record():
    a = Source(record("a", 0.9), "lab1.jsonl")
    b = Source(record("b", 0.8, dataset_hash="x" * 64, run="r2"), "lab2.jsonl")
    with pytest.raises(ImpbenchError) as info:
        scenarios([a, b])
    message = str(info.value)
    assert "record b from lab2.jsonl has dataset hash xxxxxxxxxxxx" in message and "a from lab1.jsonl" in message
    assert "\n" not in message


def test_different_masks_are_refused_naming_the_level_and_replicate():
    a = Source(record("a", 0.9), "lab1.jsonl")
    b = Source(record("b", 0.8, masks=(("0.15", 0, "other"),), run="r2"), "lab2.jsonl")
    with pytest.raises(ImpbenchError, match=r"record b from lab2.jsonl has masks differ.*level 0.15 replicate 0"):
        scenarios([a, b])
    c = Source(record("c", 0.8, masks=(("0.15", 0, "m0"), ("0.15", 1, "m1")), run="r3"), "lab3.jsonl")
    with pytest.raises(ImpbenchError, match="masks at other levels or replicates"):
        scenarios([a, c])


def test_the_same_imputer_from_two_runs_is_refused_but_one_result_given_twice_counts_once():
    a = record("a", 0.9)
    assert len(scenarios([Source(a, "run"), Source(copy.deepcopy(a), "export.jsonl")])[0].sources) == 1
    other = record("a", 0.8, run="r2")
    with pytest.raises(ImpbenchError, match="imputer 'a' is given twice"):
        scenarios([Source(a, "x"), Source(other, "y")])


def test_leaderboard_of_run_folders_and_records_writes_three_files(tmp_path):
    one = write_synthetic_run(tmp_path / "runs" / "sim-1kgp" / "one", imputers=("major", "knn", "beagle"),
                              tied=(("knn", "beagle"),))
    two = write_synthetic_run(tmp_path / "runs" / "sim-los" / "two", imputers=("major", "knn"), levels=(0.25,))
    write_records(run_records(two), tmp_path / "two.jsonl")
    result = CliRunner().invoke(cli, ["leaderboard", str(one), str(tmp_path / "two.jsonl"), "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    csv = pd.read_csv(tmp_path / "b" / "leaderboard.csv")
    assert set(csv.scenario) == {"sim-1kgp/one", "sim-los/two"} and len(csv) == 2 * 3 + 1 * 2
    data = json.loads((tmp_path / "b" / "leaderboard.json").read_text())
    assert data["metric"] == VERDICT_METRIC and data["margin"] == 0.01
    assert [s["imputer"] for s in data["standings"]][-1] == "major"
    html = (tmp_path / "b" / "leaderboard.html").read_text()
    assert "<script" not in html and "http" not in html.replace('http-equiv', '')
    # the written values are the runs' own estimates
    metrics = pd.read_csv(one / "metrics.csv")
    knn = metrics[(metrics.imputer == "knn") & (metrics.metric == VERDICT_METRIC) & (metrics.bin == "overall")
                  & (metrics.cohort == "all") & (metrics.protocol == "standard") & (metrics.level == 0.05)].iloc[0]
    row = csv[(csv.scenario == "sim-1kgp/one") & (csv.imputer == "knn") & (csv.level == 0.05)].iloc[0]
    assert row.value == pytest.approx(knn.value) and row.ci_low == pytest.approx(knn.ci_low)


def test_leaderboard_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(cli, ["leaderboard", str(empty), "--out", str(tmp_path / "b")])
    assert result.exit_code != 0 and "neither a run folder nor a folder of run folders" in str(result.exception)
    run = write_synthetic_run(tmp_path / "sim-1kgp" / "r")
    result = runner.invoke(cli, ["leaderboard", str(run), "--margin", "-1", "--out", str(tmp_path / "b")])
    assert "--margin -1: must be in [0, 1)" in str(result.exception)


def test_a_folder_of_suites_keeps_each_suite_s_scenarios_apart(tmp_path):
    from impbench.bench.suite import Scenario as SuiteScenario, ScenarioOutcome, Suite, write_suite_file

    for suite_name in ("quick", "mine"):
        suite = Suite(suite_name, tmp_path / f"{suite_name}.toml", "", (SuiteScenario("uniform", "sim-1kgp"),))
        suite.path.write_text("")
        run = write_synthetic_run(tmp_path / "suites" / suite_name / "sim-1kgp" / "uniform", imputers=("major", "knn"))
        write_suite_file(suite, tmp_path / "suites", [ScenarioOutcome("uniform", run, "ok")], None)
    board = build_leaderboard([tmp_path / "suites"], tmp_path / "board", formats=("csv",))
    assert sorted(s.label for s in board.scenarios) == ["mine/uniform", "quick/uniform"]


def test_an_imputer_ranked_in_fewer_tasks_is_pointed_out(tmp_path):
    run = write_synthetic_run(tmp_path / "sim-1kgp" / "r", imputers=("major", "knn", "beagle"), failed={"beagle": 2})
    board = build_leaderboard([run], tmp_path / "b", formats=("html",))
    beagle = next(s for s in board.standings if s.imputer == "beagle")
    assert len(beagle.ranks) == 1 and beagle.failed == 1
    html = board.files["html"].read_text()
    assert "beagle: ranked in fewer tasks than there are" in html
    assert "synthetic failure of beagle" in html  # the reason, once under the scenario
