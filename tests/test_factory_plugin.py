"""A plugin whose imputer and options classes are built in a function runs like any other.

pickle cannot name such a class (its qualified name holds ``<locals>``), so a worker may only find
it through its entry point; the run's inputs name classes (``impbench.bench.exec.inputs``) and
the fitted imputer travels with its classes left as references. The plugin is installed as a real
distribution with an ``impbench`` entry point on a folder added to ``sys.path``, as ``pip install``
would, and run through worker processes (``--jobs 1``) and inline. Before classes were named,
writing the run's inputs failed on them (``AttributeError: Can't pickle local object`` for the
first, ``PicklingError`` for the second) before any imputer started.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impbench.bench.runner import Runner
from impbench.bench.settings import RunSettings
from impbench.imputers import registry

PLUGIN = '''
from dataclasses import dataclass

import numpy as np

from impbench import hookimpl
from impbench.genotypes import MISSING
from impbench.imputers.base import Imputation, Imputer


def make_imputer(name, default_fill):
    """An imputer class and its options class, both made here (pickle cannot name them)."""

    @dataclass
    class FillOptions:
        fill: int = default_fill

    class Fill(Imputer):
        Options = FillOptions

        def fit(self, panel, val, ctx):
            self.n_variants = panel.n_variants  # fitted state that must reach the unit workers

        def impute(self, target, ctx):
            assert target.n_variants == self.n_variants
            calls = np.where(target.codes == MISSING, self.options.fill, target.codes).astype(np.uint8)
            return Imputation(calls=calls, dosage=np.zeros(calls.shape, dtype=np.float32))

    Fill.name = name
    return Fill


RENAMED = make_imputer("factory-renamed", 2)
RENAMED.__qualname__ = RENAMED.__name__ = "Renamed"  # names a module attribute that does not exist
RENAMED.Options.__qualname__ = "RenamedOptions"


@hookimpl
def register_imputers(register):
    register(make_imputer("factory-fill", 1))
    register(RENAMED)
'''


@pytest.fixture()
def factory_plugin(tmp_path, monkeypatch):
    """``factory_plugin`` installed as distribution ``factory-plugin`` with entry point ``factory``."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "factory_plugin.py").write_text(PLUGIN)
    dist = site / "factory_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: factory-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[impbench]\nfactory = factory_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    monkeypatch.setenv(registry.LOAD_PLUGINS_ENV, "factory")
    registry.reset()
    yield
    registry.reset()


@pytest.fixture(scope="module")
def store():
    from impbench.data.simulate import simulate_matrix
    from impbench.testing import InMemoryStore

    sim = simulate_matrix(n_samples=40, sequence_length=40_000, seed=3)
    return InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 120))), name="mem")


def test_the_plugin_classes_cannot_be_pickled(factory_plugin):
    import pickle

    cls = registry.get_imputer("factory-fill")
    assert "<locals>" in cls.__qualname__ and registry.get_imputers()["factory-fill"].plugin == "factory"
    with pytest.raises(AttributeError, match="Can't pickle local object"):
        pickle.dumps(cls)
    with pytest.raises(pickle.PicklingError):
        pickle.dumps(registry.get_imputer("factory-renamed"))


@pytest.mark.parametrize("executor", ["local", "inline"])
def test_factory_built_plugin_runs_like_any_other(factory_plugin, store, tmp_path, executor):
    settings = RunSettings(dataset="mem", imputers=["factory-fill", "factory-renamed", "major"], levels=(0.1,), replicates=2,
                           out=tmp_path, run_name="t", device="cpu", n_boot=20, executor=executor, jobs=1)
    outcome = Runner(settings, store).run()
    assert outcome.failures == {} and outcome.units_done == 6
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    entry = manifest["imputers"]["factory-fill"]
    assert entry["status"] == "ok" and entry["distribution"] == "factory-plugin" and entry["options"] == {"fill": 1}
    assert [u["status"] for u in entry["units"]] == ["ok", "ok"]
    assert manifest["imputers"]["factory-renamed"]["status"] == "ok"
    assert manifest["imputers"]["factory-renamed"]["options"] == {"fill": 2}
    metrics = pd.read_csv(outcome.run_dir / "metrics.csv")
    concordance = metrics[(metrics.imputer == "factory-fill") & (metrics.bin == "overall")
                          & (metrics.metric == "concordance") & (metrics.cohort == "all")]
    assert len(concordance) == 1 and 0.0 <= concordance.value.iloc[0] <= 1.0
    if executor == "local":  # the work ran in worker processes, and found the class by its entry point
        inputs = json.loads((outcome.run_dir / "work" / "inputs.json").read_text())
        ref = inputs["imputers"]["factory-fill"]
        assert ref["plugin"] == "factory" and "<locals>" in ref["qualname"]
        assert inputs["imputers"]["factory-renamed"]["qualname"] == "Renamed"
        results = [json.loads(p.read_text()) for p in outcome.run_dir.glob("models/factory-fill/attempts/*/result.json")]
        assert len(results) == 3 and {r["status"] for r in results} == {"ok"}
        import os

        assert all(r["pid"] != os.getpid() for r in results)
