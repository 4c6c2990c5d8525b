"""Impossible imputer options fail when the run is planned, before any dataset is prepared."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from impbench.cli import main
from impbench.data import prepare as prepare_module
from impbench.data.simulate import simulate_matrix
from impbench.errors import ImpbenchError
from impbench.imputers import registry as plugins
from impbench.imputers.base import make_options
from impbench.imputers.baselines import KnnOptions, MajorOptions
from impbench.io.vcf_write import write_vcf


@pytest.fixture(scope="module")
def cards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cards")
    write_vcf(simulate_matrix(n_samples=30, sequence_length=30_000, seed=2), folder / "tiny.vcf.gz")
    (folder / "tiny.toml").write_text('description = "tiny"\nvcf = "tiny.vcf.gz"\n')
    return folder


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IMPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, "")
    plugins.reset()
    yield
    plugins.reset()


@pytest.mark.parametrize("value, message", [
    ({"k": "0"}, "option knn.k must be at least 1, got 0"),
    ({"k": "-3"}, "option knn.k must be at least 1, got -3"),
    ({"window": "-1"}, "option knn.window must be at least 0, got -1"),
])
def test_make_options_calls_check(value, message):
    with pytest.raises(ImpbenchError, match=message.replace(".", r"\.")):
        make_options(KnnOptions, value, "knn")


def test_make_options_without_check_and_with_good_values():
    assert make_options(MajorOptions, {}, "major") == MajorOptions()
    assert make_options(KnnOptions, {"k": "1", "window": "0"}, "knn") == KnnOptions(k=1, window=0)


def test_check_sees_the_preset_applied():
    @dataclass
    class Preset:
        preset: str = "a"
        size: int = 1

        @classmethod
        def from_preset(cls, name):
            return cls(preset=name, size={"a": 1, "zero": 0}[name])

        def check(self):
            if self.size < 1:
                raise ImpbenchError(f"size must be at least 1 (preset {self.preset})")

    assert make_options(Preset, {"preset": "a"}).size == 1
    with pytest.raises(ImpbenchError, match="preset zero"):
        make_options(Preset, {"preset": "zero"})


@pytest.mark.parametrize("opt, message", [
    ("knn.k=0", "option knn.k must be at least 1, got 0"),
    ("knn.window=-2", "option knn.window must be at least 0, got -2"),
])
def test_run_fails_before_any_prepare(opt, message, cards, tmp_path, capsys, monkeypatch):
    def no_prepare(*args, **kwargs):
        raise AssertionError("prepare was called before the options were checked")

    monkeypatch.setattr(prepare_module, "prepare", no_prepare)
    monkeypatch.setattr(prepare_module, "resolve_source", no_prepare)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--dataset", "tiny", "--cards", str(cards), "--out", str(tmp_path / "out"), "--imputers", "knn",
              "--levels", "0.1", "--replicates", "1", "--device", "cpu", "--no-progress", "--opt", opt])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.strip().splitlines() == [f"impbench: error: {message}"]
    assert not (tmp_path / "cache" / "stores").exists()
