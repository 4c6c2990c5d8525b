"""Suites (impbench.bench.suite): the shipped files name real cards, cohorts and flags; a bad suite
file is one line; a suite runs every scenario through the runner (resumable, an imputer that does
not apply is n/a, a scenario that cannot run does not stop the others)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from impbench.bench import suite as suites
from impbench.bench.runner import Runner
from impbench.bench.settings import RunSettings
from impbench.cli import cli
from impbench.data.cards import get_card
from impbench.data.simulate import simulate_matrix
from impbench.errors import ImpbenchError, ImputerNotApplicable
from impbench.imputers.baselines import MajorImputer
from impbench import hookimpl
from impbench.imputers import registry
from impbench.testing import InMemoryStore


def test_shipped_suites_are_listed_and_parse():
    shipped = suites.list_suites()
    assert {"standard", "quick"} <= set(shipped)
    quick = suites.find_suite("quick")
    assert len(quick.scenarios) == 2
    standard = suites.find_suite("standard")
    names = {s.name for s in standard.scenarios}
    assert {"sim-1kgp-uniform", "sim-1kgp-array", "1kgp-chr20-array", "sim-los-aa", "sim-los-ca-to-aa", "sim-sgdp",
            "sim-1kgp-ceu-to-yri"} == names


@pytest.mark.parametrize("name", ["standard", "quick"])
def test_every_shipped_scenario_names_a_card_its_cohorts_and_valid_flags(name):
    suite = suites.find_suite(name)
    base = RunSettings(dataset="", imputers=["major", "knn"], device="cpu")
    planned = suites.plan_suite(suite, base, out=Path("/nonexistent-out"))
    assert len(planned) == len(suite.scenarios)
    for scenario, settings in planned:
        card = get_card(scenario.dataset)
        cohorts = set((card.simulation or {}).get("samples", {}))
        for key in ("train_cohort", "panel_cohort", "test_cohort"):
            value = getattr(settings, key)
            if value is not None:
                assert value in cohorts, f"{name}/{scenario.name}: {key} {value} not a cohort of {card.name}"
        if settings.scheme == "array":
            assert settings.typed_density is not None or card.typed_sites, scenario.name


def test_standard_has_the_issue_scenarios():
    by_name = {s.name: s.settings for s in suites.find_suite("standard").scenarios}
    assert by_name["sim-1kgp-uniform"]["levels"] == (0.05, 0.15, 0.25)
    assert by_name["sim-1kgp-array"]["scheme"] == "array" and by_name["sim-1kgp-array"]["typed_density"] == 0.12
    assert by_name["sim-los-ca-to-aa"]["panel_cohort"] == "CA" and by_name["sim-los-ca-to-aa"]["test_cohort"] == "AA"
    assert by_name["sim-1kgp-ceu-to-yri"]["panel_cohort"] == "CEU"


@pytest.mark.parametrize("text, message", [
    ('[[scenario]]\nname = "a"\n', "dataset is required"),
    ('[[scenario]]\nname = "a"\ndataset = "sim-1kgp"\nlevel = [0.1]\n', "unknown key(s) level"),
    ('[[scenario]]\nname = "a"\ndataset = "sim-1kgp"\n[[scenario]]\nname = "a"\ndataset = "sim-1kgp"\n', "used twice"),
    ('[[scenario]]\nname = "a"\ndataset = "sim-1kgp"\nlevels = 0.1\n', "levels must be"),
    ('description = "x"\n', "no scenario"),
    ('[[scenario\n', "not valid TOML"),
])
def test_bad_suite_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ImpbenchError) as info:
        suites.find_suite(str(path))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_suite_and_bad_imputer_are_refused_before_any_work(tmp_path):
    with pytest.raises(ImpbenchError, match="unknown suite 'nope'; shipped: .*quick"):
        suites.find_suite("nope")
    base = RunSettings(dataset="", imputers=["major", "no-such-imputer"])
    with pytest.raises(ImpbenchError, match="scenario sim-1kgp-uniform: unknown imputer"):
        suites.run_suite(suites.find_suite("quick"), base, tmp_path, run=lambda s: pytest.fail("ran"))
    assert not (tmp_path / "quick").exists()


def test_suite_cli_list_and_show():
    runner = CliRunner()
    listed = runner.invoke(cli, ["suite", "list"])
    assert listed.exit_code == 0 and "standard" in listed.output and "quick" in listed.output
    shown = runner.invoke(cli, ["suite", "show", "standard"])
    assert shown.exit_code == 0 and "sim-los-ca-to-aa" in shown.output and "panel cohort CA" in shown.output


# ------------------------------------------------------------------ running a suite (tiny, in memory)
class PanelOnlyMajor(MajorImputer):
    """``major``, but not applicable without a panel cohort (to see "n/a" in a suite)."""

    name = "panel-only"

    def fit(self, panel, val, ctx):
        if len(set(panel.cohort)) > 1:
            raise ImputerNotApplicable("panel-only", ctx.scheme, "needs a one-cohort panel")
        return super().fit(panel, val, ctx)


@pytest.fixture()
def tiny():
    class PanelOnlyPlugin:
        @hookimpl
        def register_imputers(self, register):
            register(PanelOnlyMajor)

    registry.register_plugin(PanelOnlyPlugin(), "panel-only-plugin")
    sim = simulate_matrix(n_samples=90, sequence_length=100_000, seed=8)
    sim = dataclasses.replace(sim, cohort=np.array(["YRI", "CEU", "CHB"] * 30, dtype=object))
    yield InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 200))), name="sim-1kgp")
    registry.unregister_plugin("panel-only-plugin")


def test_suite_runs_every_scenario_resumes_and_marks_not_applicable(tiny, tmp_path):
    suite = suites.find_suite("quick")
    base = RunSettings(dataset="", imputers=["major", "knn", "panel-only"], device="cpu", threads=1, n_boot=50,
                       executor="inline", replicates=1)
    calls = []

    def run(settings):
        calls.append(settings)
        return Runner(settings, tiny).run()

    outcomes = suites.run_suite(suite, base, tmp_path, run=run)
    assert [o.name for o in outcomes] == ["sim-1kgp-uniform", "sim-1kgp-ceu-to-yri"]
    assert [o.status for o in outcomes] == ["ok", "ok"], [o.message for o in outcomes]  # n/a is not a failure
    assert calls[1].panel_cohort == "CEU" and calls[1].test_cohort == "YRI" and calls[1].levels == (0.15,)
    run_dirs = [o.run_dir for o in outcomes]
    assert run_dirs == [tmp_path / "quick" / "sim-1kgp" / s.name for s in suite.scenarios]
    first = json.loads((run_dirs[0] / "manifest.json").read_text())
    assert first["imputers"]["panel-only"]["status"] == "not_applicable"
    assert first["imputers"]["knn"]["status"] == "ok"
    assert first["machine"]["cores"] == os.cpu_count() and "host" not in first["machine"]
    second = json.loads((run_dirs[1] / "manifest.json").read_text())
    assert second["imputers"]["panel-only"]["status"] == "ok"  # the CEU panel is one cohort
    written = suites.read_suite_file(tmp_path / "quick")
    assert [s["status"] for s in written["scenarios"]] == ["ok", "ok"]
    assert written["scenarios"][0]["run_dir"] == "sim-1kgp/sim-1kgp-uniform"

    again = suites.run_suite(suite, base, tmp_path, run=lambda s: Runner(s, tiny).run())
    assert [o.status for o in again] == ["ok", "ok"]  # resumed: every unit was already done


def test_a_scenario_that_cannot_run_is_recorded_and_the_next_runs(tiny, tmp_path):
    suite = suites.find_suite("quick")
    base = RunSettings(dataset="", imputers=["major"], device="cpu", threads=1, n_boot=50, executor="inline",
                       replicates=1)

    def run(settings):
        if settings.run_name == "sim-1kgp-uniform":
            raise ImpbenchError("dataset files missing")
        return Runner(settings, tiny).run()

    outcomes = suites.run_suite(suite, base, tmp_path, run=run)
    assert [(o.status, o.message) for o in outcomes] == [("error", "dataset files missing"), ("ok", "")]
    assert [s["status"] for s in suites.read_suite_file(tmp_path / "quick")["scenarios"]] == ["error", "ok"]


@pytest.mark.parametrize("argv, needle", [
    (["suite", "run", "--help"], "Resumable"), (["suite", "--help"], "suite list"),
    (["leaderboard", "--help"], "--margin"), (["export", "--help"], "Schema"), (["doctor", "--help"], "Beagle"),
])
def test_help_of_the_new_commands(argv, needle):
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0 and needle in result.output
