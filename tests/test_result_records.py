"""Result records (impbench.bench.export): built from a run folder, written as JSON lines, read
back unchanged; a record of an unknown schema version, or not a record, is refused in one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from impbench.bench.export import SCHEMA, SCHEMA_VERSION, fingerprint, read_records, run_records, write_records
from impbench.bench.results import RunFolder
from impbench.bench.suite import Scenario, ScenarioOutcome, Suite, write_suite_file
from impbench.cli import cli
from impbench.errors import ImpbenchError
from impbench.scoring.classes import DEFAULT_MAF_CLASSES
from impbench.testing.synthetic import write_synthetic_run


@pytest.fixture()
def run_dir(tmp_path):
    return write_synthetic_run(tmp_path / "sim-1kgp" / "demo", imputers=("major", "knn", "beagle"), levels=(0.05, 0.15),
                               failed={"beagle": 2})


def test_one_record_per_imputer_with_the_headline_estimates_and_masks(run_dir):
    records = run_records(run_dir)
    manifest = RunFolder(run_dir).read_manifest().to_json()
    assert [r["imputer"]["name"] for r in records] == ["major", "knn", "beagle"]
    metrics = RunFolder(run_dir).read_table("metrics")
    for record in records:
        assert record["schema"] == SCHEMA and record["schema_version"] == SCHEMA_VERSION
        assert record["scenario"] == "sim-1kgp/demo" and record["suite"] is None
        assert record["dataset"]["hash"] == manifest["dataset"]["hash"]
        assert [m["sha256"] for m in record["masks"]] == [m["sha256"] for m in manifest["masks"]]
        assert record["imputer"]["options_sha256"] == fingerprint(manifest["imputers"][record["imputer"]["name"]]["options"])
        name = record["imputer"]["name"]
        expected = metrics[(metrics.imputer == name) & (metrics.protocol == "standard") & (metrics.cohort == "all")
                           & metrics["bin"].isin(["overall", *(label for label, _, _ in DEFAULT_MAF_CLASSES)])]
        assert len(record["estimates"]) == len(expected) > 0
        got = {(e["level"], e["bin"], e["metric"]): e["value"] for e in record["estimates"]}
        for row in expected.itertuples():
            value = got[(row.level, row.bin, row.metric)]
            assert (value is None and pd.isna(row.value)) or value == pytest.approx(row.value)
    assert records[2]["imputer"]["status"] == "failed"
    fit = manifest["imputers"]["knn"]
    cost = records[1]["cost"]
    assert cost["fit_seconds"] == fit["fit_seconds"]
    assert cost["impute_seconds"] == pytest.approx(sum(u["seconds"] for u in fit["impute"]))
    assert cost["peak_mb"] == max([fit["fit_peak_mb"]] + [u["peak_mb"] for u in fit["impute"]])


def test_paired_differences_are_this_imputer_minus_the_other(run_dir):
    pairs = RunFolder(run_dir).read_table("pairs")
    row = pairs[(pairs.metric == "r2") & (pairs.bin == "overall") & (pairs.cohort == "all") & (pairs.level == 0.05)].iloc[0]
    records = {r["imputer"]["name"]: r for r in run_records(run_dir)}
    a, b = records[row.imputer_a], records[row.imputer_b]

    def find(record, other):
        return next(p for p in record["paired"] if p["other"] == other and p["metric"] == "r2" and p["bin"] == "overall"
                    and p["level"] == 0.05)

    forward, backward = find(a, row.imputer_b), find(b, row.imputer_a)
    assert forward["difference"] == pytest.approx(row.difference)
    assert (forward["ci_low"], forward["ci_high"]) == pytest.approx((row.ci_low, row.ci_high))
    assert backward["difference"] == pytest.approx(-row.difference)
    assert (backward["ci_low"], backward["ci_high"]) == pytest.approx((-row.ci_high, -row.ci_low))


def test_records_round_trip_through_json_lines(run_dir, tmp_path):
    records = run_records(run_dir)
    path = write_records(records, tmp_path / "out.jsonl")
    back = read_records(path)
    assert back == json.loads(json.dumps(records))
    assert len(path.read_text().splitlines()) == len(records)


def test_unknown_schema_version_is_refused_in_one_line(run_dir, tmp_path):
    record = run_records(run_dir)[0]
    record["schema_version"] = SCHEMA_VERSION + 1
    path = tmp_path / "future.jsonl"
    path.write_text("\n" + json.dumps(record) + "\n")
    with pytest.raises(ImpbenchError) as info:
        read_records(path)
    message = str(info.value)
    assert f"{path}:2: result record schema version {SCHEMA_VERSION + 1} is not supported" in message
    assert "\n" not in message
    result = CliRunner().invoke(cli, ["leaderboard", str(path), "--out", str(tmp_path / "board")])
    assert result.exit_code != 0


@pytest.mark.parametrize("line, message", [
    ("{not json", "not valid JSON"),
    ('{"schema": "something.else"}', "not an impbench result record"),
    ('[1, 2]', "not an impbench result record"),
])
def test_a_line_that_is_not_a_record_is_refused_naming_it(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ImpbenchError, match=message) as info:
        read_records(path)
    assert str(info.value).startswith(f"{path}:1:")


def test_export_cli_writes_records_next_to_the_run(run_dir):
    result = CliRunner().invoke(cli, ["export", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "3 records (1 scenarios)" in result.output
    assert len(read_records(run_dir / "records.jsonl")) == 3


def test_a_suite_scenario_takes_its_suite_and_scenario_names(tmp_path):
    suite = Suite("quick", tmp_path / "quick.toml", "", (Scenario("uniform", "sim-1kgp"),))
    suite.path.write_text("")
    run = write_synthetic_run(tmp_path / "out" / "quick" / "sim-1kgp" / "uniform")
    write_suite_file(suite, tmp_path / "out", [ScenarioOutcome("uniform", run, "ok")], ["major", "knn"])
    records = run_records(run)
    assert {(r["suite"], r["scenario"]) for r in records} == {("quick", "uniform")}
