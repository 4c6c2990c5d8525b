"""Suites: named lists of scenarios, each one ``impbench run`` of a dataset card with its
scheme, levels, replicates and cohort settings (format: ``docs/results.md``, "Suites").

A suite is a TOML file. The shipped ones are ``impbench/suites/*.toml`` (in a checkout a link
to the repository's ``suites/``; in a wheel copies of its files); ``--suite FILE`` names any
other. ``run_suite`` runs every scenario through ``run_benchmark``, exactly as ``impbench run``
would (same executors, worker isolation, resume): scenario ``S`` of dataset ``D`` is the run
folder ``OUT/<suite>/<D>/<S>/``, and ``OUT/<suite>/suite.json`` lists the scenarios, their run
folders and how each ended. Rerunning the suite resumes every scenario. An imputer that does
not apply to a scenario (``ImputerNotApplicable``) is ``not_applicable`` there, not a failure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from impbench.bench.settings import RunSettings, plan_run
from impbench.errors import ImpbenchError
from impbench.files import write_json

#: Keys a scenario table may hold (each an ``impbench run`` flag of the same name).
SCENARIO_KEYS = ("name", "dataset", "description", "scheme", "levels", "replicates", "typed_density", "typed_sites",
                 "train_cohort", "panel_cohort", "test_cohort", "protocol")
#: Keys of a suite's ``[defaults]`` table (applied to every scenario that does not set them).
DEFAULT_KEYS = ("scheme", "levels", "replicates", "protocol")
SUITE_FILE = "suite.json"
SUITE_FORMAT = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Scenario:
    """One scenario of a suite: the ``RunSettings`` fields it sets (``settings``: key -> value,
    keys of ``SCENARIO_KEYS`` less name, dataset and description)."""

    name: str
    dataset: str
    description: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: the scheme, levels and cohort settings."""
        s = self.settings
        parts = [str(s.get("scheme", "uniform"))]
        if s.get("typed_density") is not None:
            parts.append(f"typed density {s['typed_density']:g}")
        elif s.get("scheme") == "array":
            parts.append("typed at " + (str(s["typed_sites"]) if s.get("typed_sites") else "the card's sites"))
        if s.get("scheme") != "array":
            parts.append("levels " + ",".join(f"{v:g}" for v in s.get("levels", ())))
        parts.append(f"{s.get('replicates', 3)} replicates")
        for key in ("train_cohort", "panel_cohort", "test_cohort"):
            if s.get(key):
                parts.append(f"{key.replace('_', ' ')} {s[key]}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    description: str
    scenarios: tuple[Scenario, ...]


def builtin_suite_dir() -> Path:
    """The shipped suites: ``impbench/suites`` (a link to ``suites/`` in a checkout)."""
    package = Path(__file__).resolve().parent.parent
    folder = package / "suites"
    return folder.resolve() if folder.is_dir() else package.parent / "suites"


def list_suites() -> dict[str, Path]:
    """Shipped suite name -> its file, sorted."""
    folder = builtin_suite_dir()
    return {p.stem: p for p in sorted(folder.glob("*.toml"))} if folder.is_dir() else {}


def find_suite(name_or_path: str | Path) -> Suite:
    """A shipped suite by name, or a suite file by path; ``ImpbenchError`` listing the shipped
    ones when neither."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if text.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise ImpbenchError(f"suite file {path} not found")
        return parse_suite(path)
    shipped = list_suites()
    if text not in shipped:
        raise ImpbenchError(f"unknown suite {text!r}; shipped: {', '.join(shipped) or '(none)'} "
                            "(or give a suite file: --suite FILE.toml)")
    return parse_suite(shipped[text])


def _check_value(key: str, value: Any, where: str) -> Any:
    kinds = {"levels": list, "replicates": int, "typed_density": (int, float)}
    if key in kinds and (not isinstance(value, kinds[key]) or isinstance(value, bool)):
        raise ImpbenchError(f"{where}: {key} must be {'a list of numbers' if key == 'levels' else 'a number'}")
    if key == "levels":
        if not value or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ImpbenchError(f"{where}: levels must be a non-empty list of numbers, e.g. [0.05, 0.15]")
        return tuple(float(v) for v in value)
    if key == "typed_density":
        return float(value)
    if key not in kinds and not isinstance(value, str):
        raise ImpbenchError(f"{where}: {key} must be a string")
    return value


def parse_suite(path: str | Path) -> Suite:
    """Read and check a suite file (``ImpbenchError`` naming the file and the key at fault)."""
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ImpbenchError(f"{path}: cannot read the suite file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ImpbenchError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"description", "defaults", "scenario"})
    if unknown:
        raise ImpbenchError(f"{path}: unknown key(s) {', '.join(unknown)}; a suite has description, [defaults] "
                            "and [[scenario]] tables")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ImpbenchError(f"{path}: defaults must be a table [defaults]")
    bad = sorted(set(defaults) - set(DEFAULT_KEYS))
    if bad:
        raise ImpbenchError(f"{path}: [defaults] key(s) {', '.join(bad)} unknown; valid: {', '.join(DEFAULT_KEYS)}")
    defaults = {k: _check_value(k, v, f"{path} [defaults]") for k, v in defaults.items()}
    tables = data.get("scenario", [])
    if not isinstance(tables, list) or not tables:
        raise ImpbenchError(f"{path}: no scenario; add [[scenario]] tables with name and dataset")
    scenarios: list[Scenario] = []
    for i, table in enumerate(tables, 1):
        where = f"{path} scenario {i}"
        if not isinstance(table, dict):
            raise ImpbenchError(f"{where}: must be a table [[scenario]]")
        bad = sorted(set(table) - set(SCENARIO_KEYS))
        if bad:
            raise ImpbenchError(f"{where}: unknown key(s) {', '.join(bad)}; valid: {', '.join(SCENARIO_KEYS)}")
        for key in ("name", "dataset"):
            if not isinstance(table.get(key), str) or not table[key]:
                raise ImpbenchError(f"{where}: {key} is required (a string)")
        name = table["name"]
        if not _NAME.fullmatch(name):
            raise ImpbenchError(f"{where}: name {name!r}: use letters, digits, '.', '_' and '-'")
        if name in {s.name for s in scenarios}:
            raise ImpbenchError(f"{where}: scenario name {name!r} is used twice")
        settings = dict(defaults)
        settings.update({k: _check_value(k, v, f"{where} ({name})") for k, v in table.items()
                         if k not in ("name", "dataset", "description")})
        if settings.get("typed_sites"):
            sites = Path(settings["typed_sites"]).expanduser()
            settings["typed_sites"] = sites if sites.is_absolute() else path.parent / sites
        scenarios.append(Scenario(name, table["dataset"], str(table.get("description", "")), settings))
    description = data.get("description", "")
    return Suite(path.stem, path.resolve(), str(description), tuple(scenarios))


def scenario_settings(suite: Suite, scenario: Scenario, base: RunSettings, out: Path) -> RunSettings:
    """``base`` (the flags given to ``suite run``) with the scenario's dataset and settings, its
    run folder ``out/<suite>/<dataset>/<scenario>``."""
    values = dict(scenario.settings)
    if "typed_sites" in values:
        values["typed_sites"] = Path(values["typed_sites"])
    return dataclasses.replace(base, dataset=scenario.dataset, out=Path(out) / suite.name, run_name=scenario.name,
                               **values)


@dataclass
class ScenarioOutcome:
    name: str
    run_dir: Path | None
    status: str  # ok | failed (an imputer failed) | error (the scenario could not run)
    message: str = ""


def plan_suite(suite: Suite, base: RunSettings, out: Path) -> list[tuple[Scenario, RunSettings]]:
    """Every scenario's settings, each validated and planned (cards, imputers, options) before
    anything runs; ``ImpbenchError`` naming the scenario at fault."""
    from impbench.data.cards import get_card

    planned = []
    for scenario in suite.scenarios:
        settings = scenario_settings(suite, scenario, base, out)
        try:
            card = get_card(settings.dataset, extra_dirs=list(settings.cards) or None)
            plan_run(settings, card, dataset_name=card.name)
        except ImpbenchError as exc:
            raise ImpbenchError(f"suite {suite.name}, scenario {scenario.name}: {exc}") from None
        planned.append((scenario, settings))
    return planned


def suite_dir(suite: Suite, out: Path) -> Path:
    return Path(out) / suite.name


def write_suite_file(suite: Suite, out: Path, outcomes: Sequence[ScenarioOutcome], imputers: Sequence[str] | None) -> Path:
    """``OUT/<suite>/suite.json``: the suite, its file's fingerprint and each scenario's run folder
    (relative to the suite folder) and status."""
    folder = suite_dir(suite, out)
    by_name = {o.name: o for o in outcomes}
    scenarios = []
    for scenario in suite.scenarios:
        outcome = by_name.get(scenario.name)
        run_dir = None if outcome is None or outcome.run_dir is None else outcome.run_dir
        scenarios.append({
            "name": scenario.name, "dataset": scenario.dataset, "description": scenario.description,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in scenario.settings.items()},
            "run_dir": None if run_dir is None else str(Path(run_dir).relative_to(folder)),
            "status": "not_run" if outcome is None else outcome.status,
            "message": "" if outcome is None else outcome.message,
        })
    path = folder / SUITE_FILE
    write_json(path, {"format": SUITE_FORMAT, "suite": suite.name, "description": suite.description,
                      "file": str(suite.path), "file_sha256": hashlib.sha256(suite.path.read_bytes()).hexdigest(),
                      "imputers": None if imputers is None else list(imputers),
                      "updated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "scenarios": scenarios})
    return path


def read_suite_file(folder: str | Path) -> dict | None:
    """A suite folder's ``suite.json`` (None when absent or not of this format)."""
    import json

    path = Path(folder) / SUITE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == SUITE_FORMAT else None


def run_suite(suite: Suite, base: RunSettings, out: Path, *,
              run: Callable[[RunSettings], Any], on_scenario: Callable[[Scenario, int, int], None] | None = None,
              ) -> list[ScenarioOutcome]:
    """Run every scenario with ``run`` (``run_benchmark`` with the caller's console), in order.

    Everything is planned first (a user mistake stops the suite before any work). A scenario
    that cannot run (its data missing) or whose imputers fail is recorded and the next one
    starts; ``RunInterrupted`` stops the suite (``suite.json`` is written first)."""
    from impbench.bench.exec.signals import RunInterrupted

    planned = plan_suite(suite, base, out)
    folder = suite_dir(suite, out)
    folder.mkdir(parents=True, exist_ok=True)
    previous = {s["name"]: s for s in (read_suite_file(folder) or {}).get("scenarios", [])}
    state = {name: ScenarioOutcome(name, folder / p["run_dir"] if p.get("run_dir") else None,
                                   str(p.get("status", "not_run")), str(p.get("message", "")))
             for name, p in previous.items() if name in {s.name for s in suite.scenarios}}
    outcomes: list[ScenarioOutcome] = []
    write_suite_file(suite, out, list(state.values()), base.imputers)
    for i, (scenario, settings) in enumerate(planned, 1):
        if on_scenario is not None:
            on_scenario(scenario, i, len(planned))
        try:
            result = run(settings)
        except RunInterrupted:
            state[scenario.name] = ScenarioOutcome(scenario.name, state.get(scenario.name, ScenarioOutcome("", None, "")).run_dir,
                                                   "interrupted", "interrupted")
            write_suite_file(suite, out, list(state.values()), base.imputers)
            raise
        except ImpbenchError as exc:
            outcome = ScenarioOutcome(scenario.name, None, "error", str(exc))
        else:
            failed = "; ".join(result.failures.values())
            outcome = ScenarioOutcome(scenario.name, Path(result.run_dir), "failed" if failed else "ok", failed)
        outcomes.append(outcome)
        state[scenario.name] = outcome
        write_suite_file(suite, out, list(state.values()), base.imputers)
    return outcomes
