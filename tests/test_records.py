"""The typed run records (``impbench.bench.records``) and the one serialisation of options."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from impbench.bench.records import ImputerRecord, Manifest, RunInputs, UnitRecord
from impbench.bench.results import RunFolder
from impbench.errors import ImpbenchError
from impbench.imputers.base import Imputer, options_from_json, options_to_json

#: A manifest written by landed main (67572e7: ``impbench run --dataset sim-1kgp --imputers major,knn
#: --levels 0.05,0.15 --replicates 2``), before the manifest had a typed owner.
OLD_MANIFEST = Path(__file__).parent / "data" / "manifest-67572e7.json"


def old_manifest() -> dict:
    return json.loads(OLD_MANIFEST.read_text())


def test_a_manifest_of_landed_main_loads_and_keeps_its_shape():
    data = old_manifest()
    manifest = Manifest.from_json(data, str(OLD_MANIFEST))
    assert manifest.dataset.name == "sim-1kgp" and manifest.settings.levels == [0.05, 0.15]
    knn = manifest.imputers["knn"]
    assert isinstance(knn, ImputerRecord) and knn.status == "ok" and knn.options == {"k": 5, "window": 30}
    assert all(isinstance(u, UnitRecord) and u.status == "ok" for u in knn.units) and len(knn.impute) == 4
    assert knn.fit is not None and len(knn.fit.key) == 16
    assert manifest.to_json() == data  # read and written back: the same JSON, key for key


def test_missing_fields_take_defaults_and_unknown_keys_are_kept():
    data = old_manifest()
    del data["settings"]["genetic_map"], data["masks"]
    data["settings"]["block_length"] = 7  # a field of a newer version
    manifest = Manifest.from_json(data, "m.json")
    assert manifest.settings.genetic_map is None and manifest.masks == []
    out = manifest.to_json()
    assert "masks" not in out and "genetic_map" not in out["settings"] and out["settings"]["block_length"] == 7
    manifest.masks = []  # still the default: not written
    manifest.settings.genetic_map = "map.txt"  # changed: written
    assert manifest.to_json()["settings"]["genetic_map"] == "map.txt"


def _set(data: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is KeyError:
        del node[last]
    else:
        node[int(last) if isinstance(node, list) else last] = value


@pytest.mark.parametrize("path, value, message", [
    ("imputers.knn.status", "fine", "field imputers.knn.status: expected one of 'running', 'ok'"),
    ("imputers.knn.units.0.status", "great", "field imputers.knn.units[0].status: expected one of 'ok'"),
    ("imputers.knn.units.0.status", KeyError, "field imputers.knn.units[0].status is missing"),
    ("imputers.knn.impute.1.seconds", "fast", "field imputers.knn.impute[1].seconds: expected a number or null"),
    ("imputers.knn.options", [1, 2], "field imputers.knn.options: expected an object"),
    ("imputers.major", "ok", "field imputers.major: expected an object, got 'ok'"),
    ("imputers.knn.fit.key", 12, "field imputers.knn.fit.key: expected a string, got 12"),
    ("settings.levels", "0.05", "field settings.levels: expected a list of a number"),
    ("settings.scheme", "checkerboard", "field settings.scheme: expected one of 'uniform', 'per-variant', 'array'"),
    ("settings.protocols.0", "fast", "field settings.protocols[0]: expected one of 'standard', 'paper'"),
    ("settings.bootstrap.n", True, "field settings.bootstrap.n: expected an integer, got True"),
    ("settings.write_vcf", "no", "field settings.write_vcf: expected true or false"),
    ("dataset.n_variants", 1.5, "field dataset.n_variants: expected an integer, got 1.5"),
    ("dataset.n_samples.test", "30", "field dataset.n_samples.test: expected an integer"),
    ("masks.0.replicate", "0", "field masks[0].replicate: expected an integer, got '0'"),
    ("masks.1.sha256", None, "field masks[1].sha256: expected a string, got None"),
    ("created", 20261202, "field created: expected a string or null"),
])
def test_a_wrong_field_is_one_line_naming_file_and_field(tmp_path, path, value, message):
    data = old_manifest()
    _set(data, path, value)
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ImpbenchError) as info:
        RunFolder(run).read_manifest()
    text = str(info.value)
    assert text.startswith(f"{run / 'manifest.json'}: {message}") and "\n" not in text


def test_a_manifest_that_is_not_an_object(tmp_path):
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ImpbenchError, match=r"manifest.json: top level: expected an object, got \[1, 2\]"):
        RunFolder(tmp_path).read_manifest()


def test_report_on_a_corrupt_manifest_exits_2_with_one_line(tmp_path, capsys):
    from impbench.cli import main

    data = old_manifest()
    data["imputers"]["knn"]["fit_seconds"] = "slow"
    run = tmp_path / "sim-1kgp" / "run"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(run)])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert err.count("\n") == 0 and "manifest.json: field imputers.knn.fit_seconds: expected a number or null" in err


def test_resume_on_a_corrupt_manifest_is_refused(tmp_path):
    import numpy as np

    from impbench.bench.runner import Runner
    from impbench.bench.settings import RunSettings
    from impbench.data.simulate import simulate_matrix
    from impbench.testing import InMemoryStore

    sim = simulate_matrix(n_samples=30, sequence_length=20_000, seed=1)
    store = InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 60))), name="mem")
    settings = RunSettings(dataset="mem", imputers=["major"], levels=(0.1,), replicates=1, out=tmp_path,
                           run_name="t", device="cpu", n_boot=10, executor="inline")
    outcome = Runner(settings, store).run()
    path = outcome.run_dir / "manifest.json"
    data = json.loads(path.read_text())
    assert Manifest.from_json(data, str(path)).to_json() == data  # what the runner writes, it reads back
    data["imputers"]["major"]["units"][0]["replicate"] = "zero"
    path.write_text(json.dumps(data))
    with pytest.raises(ImpbenchError, match=r"cannot read the manifest of the run to resume: .*field "
                                            r"imputers\.major\.units\[0\]\.replicate: expected an integer"):
        Runner(settings, store).run()
    inputs = json.loads((outcome.run_dir / "work" / "inputs.json").read_text())
    record = RunInputs.from_json(inputs, "inputs.json")
    assert record.imputers["major"].plugin == "impbench.imputers.baselines" and record.store is None
    broken = copy.deepcopy(inputs)
    broken["scoring"]["min_variant_cells"] = "5"
    with pytest.raises(ImpbenchError, match=r"inputs.json: field scoring.min_variant_cells: expected an integer"):
        RunInputs.from_json(broken, "inputs.json")


# ---------------------------------------------------------------------------- options
@dataclass
class CheckedOptions:
    k: int = 3
    rate: float = 0.5
    mode: str = "fast"

    def check(self) -> None:
        if self.k < 1:
            raise ImpbenchError(f"option k={self.k}: must be at least 1")


class Checked(Imputer):
    name = "checked"
    Options = CheckedOptions

    def fit(self, panel, val, ctx):
        pass

    def impute(self, target, ctx):
        raise NotImplementedError


def test_options_round_trip_through_their_json_and_are_checked():
    options = CheckedOptions(k=5, rate=0.25, mode="slow")
    data = options_to_json(options)
    assert data == {"k": 5, "rate": 0.25, "mode": "slow"} and json.loads(json.dumps(data)) == data
    assert options_from_json(CheckedOptions, data, "checked") == options
    with pytest.raises(ImpbenchError, match="option k=0: must be at least 1"):  # check() runs on a rebuild
        options_from_json(CheckedOptions, {**data, "k": 0}, "checked")
    with pytest.raises(ImpbenchError, match="unknown option.*depth.*valid: k, mode, rate"):
        options_from_json(CheckedOptions, {**data, "depth": 2}, "checked")


def test_options_that_do_not_survive_json_fail_at_planning():
    from impbench.bench.settings import check_options_travel

    check_options_travel("checked", Checked, CheckedOptions())
    # JSON has no infinity: rebuilt, the value is null, which the typed option conversion refuses
    with pytest.raises(ImpbenchError, match="imputer 'checked': its options cannot be rebuilt from their JSON "
                                            "\\(option checked.rate: must be a number"):
        check_options_travel("checked", Checked, CheckedOptions(rate=float("inf")))  # JSON has no infinity


def test_a_done_marker_with_a_wrong_field_is_not_done(tmp_path):
    from impbench.bench.records import DoneMarker

    folder = RunFolder(tmp_path)
    marker = DoneMarker(imputer="knn", mask_sha256="a" * 64, n_masked=10, fit_key="f" * 16, unit_key="u" * 16,
                        level=0.05, replicate=1, seconds=0.5, replicates=[{"imputer": "knn", "value": 0.9}])
    folder.write_marker(marker)
    path = folder.marker_path("knn", 0.05, 1)
    assert folder.read_marker("knn", 0.05, 1) == marker and json.loads(path.read_text())["format"] == 1
    data = json.loads(path.read_text())
    data["replicates"] = {"imputer": "knn"}  # rows must be a list of objects
    path.write_text(json.dumps(data))
    assert folder.read_marker("knn", 0.05, 1) is None and list(folder.markers()) == []
