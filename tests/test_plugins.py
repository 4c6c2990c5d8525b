"""The plugin manager: lazy single loading, IMPBENCH_LOAD_PLUGINS, registration by hand."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from impbench import hookimpl
from impbench.imputers import registry as plugins
from impbench.imputers.baselines import KnnImputer, MajorImputer
from impbench.errors import ImpbenchError
from impbench.imputers.base import Imputation, Imputer


@pytest.fixture(autouse=True)
def fresh_manager():
    plugins.reset()
    yield
    plugins.reset()


@dataclass
class _Opts:
    alpha: float = 0.5
    label: str = "x"


def _imputer_class(name: str) -> type[Imputer]:
    class Fake(Imputer):
        reference_free = False
        Options = _Opts
        description = f"fake {name}"

        def fit(self, panel, val, ctx):
            pass

        def impute(self, target, ctx):
            return Imputation(calls=target.codes, dosage=target.codes.astype("float32"))

    Fake.name = name
    return Fake


class _PluginModule:
    """Stands in for a plugin module: one ``register_imputers`` hookimpl."""

    def __init__(self, *classes):
        self.classes = classes

    @hookimpl
    def register_imputers(self, register):
        for cls in self.classes:
            register(cls)


class _FakeDist:
    def __init__(self, name, version):
        self.metadata = {"Name": name}
        self.version = version


class _FakeEntryPoint:
    """An entry point whose ``load`` is counted."""

    loads: dict[str, int] = {}

    def __init__(self, name, module, dist_name, fail=False):
        self.name = name
        self.module = module
        self.dist = _FakeDist(dist_name, "9.9")
        self.fail = fail

    def load(self):
        _FakeEntryPoint.loads[self.name] = _FakeEntryPoint.loads.get(self.name, 0) + 1
        if self.fail:
            raise ImportError("No module named 'missing_dependency'")
        return self.module


@pytest.fixture
def fake_entry_points(monkeypatch):
    _FakeEntryPoint.loads = {}
    eps = [
        _FakeEntryPoint("alpha", _PluginModule(_imputer_class("alpha-imp")), "impbench-alpha"),
        _FakeEntryPoint("beta", _PluginModule(_imputer_class("beta-imp")), "impbench-beta"),
        _FakeEntryPoint("broken", None, "impbench-broken", fail=True),
    ]
    calls = []

    def entry_points(group):
        calls.append(group)
        return list(eps) if group == "impbench" else []

    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", entry_points)
    monkeypatch.delenv(plugins.LOAD_PLUGINS_ENV, raising=False)
    return calls


def test_builtins_registered_through_the_hook():
    imputers = plugins.get_imputers()
    assert imputers["major"].cls is MajorImputer and imputers["knn"].cls is KnnImputer
    assert imputers["major"].distribution == "impbench" and imputers["major"].plugin == plugins.BUILTIN
    assert list(imputers)[:3] == ["major", "knn", "allele-freq"]


def test_entry_points_load_lazily_and_once(fake_entry_points):
    plugins.reset()
    assert fake_entry_points == [] and _FakeEntryPoint.loads == {}
    first = plugins.get_imputers()
    plugins.get_imputers()
    plugins.get_imputer("alpha-imp")
    plugins.get_plugin_manager()
    assert fake_entry_points == ["impbench"]
    assert _FakeEntryPoint.loads == {"alpha": 1, "beta": 1, "broken": 1}
    assert first["alpha-imp"].distribution == "impbench-alpha" and first["alpha-imp"].version == "9.9"
    assert first["beta-imp"].plugin == "beta"


def test_broken_plugin_is_skipped_and_reported(fake_entry_points):
    imputers = plugins.get_imputers()
    assert "major" in imputers and "alpha-imp" in imputers
    assert plugins.load_errors() == {"broken": "ImportError: No module named 'missing_dependency'"}


def test_load_plugins_env_restricts(fake_entry_points, monkeypatch):
    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, "beta, impbench-broken-not-this")
    imputers = plugins.get_imputers()
    assert set(imputers) == {"major", "knn", "allele-freq", "beta-imp"}
    assert _FakeEntryPoint.loads == {"beta": 1}


def test_load_plugins_env_by_distribution_name(fake_entry_points, monkeypatch):
    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, "impbench-alpha")
    assert set(plugins.get_imputers()) == {"major", "knn", "allele-freq", "alpha-imp"}


def test_load_plugins_env_empty_loads_none(fake_entry_points, monkeypatch):
    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, "")
    assert set(plugins.get_imputers()) == {"major", "knn", "allele-freq"}
    assert _FakeEntryPoint.loads == {}


def test_register_by_hand(fake_entry_points, monkeypatch):
    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, "")
    assert "mine" not in plugins.get_imputers()
    module = _PluginModule(_imputer_class("mine"))
    plugins.register_plugin(module, "my-plugin", distribution="my-dist", version="1.2")
    plugins.register_plugin(module, "my-plugin")  # the same again: no-op
    info = plugins.get_imputers()["mine"]
    assert (info.plugin, info.distribution, info.version) == ("my-plugin", "my-dist", "1.2")
    with pytest.raises(ImpbenchError, match="already registered"):
        plugins.register_plugin(_PluginModule(), "my-plugin")
    plugins.unregister_plugin("my-plugin")
    assert "mine" not in plugins.get_imputers()


def test_two_plugins_with_one_imputer_name_is_an_error(fake_entry_points, monkeypatch):
    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, "")
    plugins.register_plugin(_PluginModule(_imputer_class("same")), "p1")
    plugins.register_plugin(_PluginModule(_imputer_class("same")), "p2")
    with pytest.raises(ImpbenchError, match="two plugins register an imputer named 'same'"):
        plugins.get_imputers()


def test_register_rejects_non_imputer(fake_entry_points, monkeypatch):
    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, "")
    plugins.register_plugin(_PluginModule(dict), "bad")
    with pytest.raises(ImpbenchError, match="plugin 'bad': register\\(\\) takes an Imputer subclass"):
        plugins.get_imputers()


def test_unknown_imputer_lists_the_valid_names(fake_entry_points, monkeypatch):
    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, "")
    with pytest.raises(ImpbenchError, match=r"unknown imputer 'nope'; available: major, knn, allele-freq"):
        plugins.get_imputer("nope")


def test_plugins_command_lists_name_distribution_version_and_options(fake_entry_points, capsys):
    from impbench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["plugins", "--json"])
    assert exit_info.value.code == 0
    listing = json.loads(capsys.readouterr().out)
    rows = {row["name"]: row for row in listing["imputers"]}
    assert rows["knn"]["options"] == {"k": 5, "window": 30} and rows["knn"]["reference_free"] is True
    assert rows["alpha-imp"]["distribution"] == "impbench-alpha" and rows["alpha-imp"]["version"] == "9.9"
    assert rows["alpha-imp"]["reference_free"] is False and rows["alpha-imp"]["options"] == {"alpha": 0.5, "label": "x"}
    assert "broken" in listing["load_errors"]


def test_plugins_command_table(fake_entry_points, capsys, monkeypatch):
    from impbench.cli import main

    monkeypatch.setenv("COLUMNS", "300")
    with pytest.raises(SystemExit):
        main(["plugins"])
    out = capsys.readouterr().out
    for text in ("major", "knn", "k=5, window=30", "alpha-imp", "impbench-alpha", "9.9", "alpha=0.5, label='x'",
                 "failed to load"):
        assert text in out
