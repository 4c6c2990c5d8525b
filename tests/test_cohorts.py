"""Per-cohort scores from one run, cohort runs that score the same cells, and the panel cohort
(population mismatch) with its bad inputs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from impbench.bench.runner import Runner
from impbench.bench.settings import RunSettings
from impbench.data.simulate import simulate_matrix
from impbench.errors import ImpbenchError
from impbench.testing import InMemoryStore


@pytest.fixture(scope="module")
def store():
    sim = simulate_matrix(n_samples=90, sequence_length=100_000, seed=8)
    cohort = np.array(["AFR", "EUR", "EAS"] * 30, dtype=object)
    sim = dataclasses.replace(sim, cohort=cohort)
    return InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 300))), name="coh")


def run(store, tmp_path, name, **kw):
    settings = RunSettings(dataset="coh", imputers=["major", "knn"], levels=(0.2,), replicates=2, out=tmp_path,
                           run_name=name, device="cpu", threads=1, n_boot=200, **kw)
    return Runner(settings, store).run()


def read(outcome, table):
    return pd.read_csv(outcome.run_dir / f"{table}.csv", keep_default_na=False, na_values=[""])


def test_store_has_three_test_cohorts(store):
    assert set(store.read_split("test").cohort) == {"AFR", "EUR", "EAS"}


def test_one_run_scores_every_cohort_and_a_cohort_run_scores_the_same_cells(store, tmp_path):
    full = run(store, tmp_path, "full")
    metrics = read(full, "metrics")
    assert set(metrics.cohort) == {"all", "AFR", "EUR", "EAS"}
    pairs = read(full, "pairs")
    assert set(pairs.cohort) == {"all", "AFR", "EUR", "EAS"}

    eur = run(store, tmp_path, "eur", test_cohort="EUR")
    masks_full = {(m["level"], m["replicate"]): m["sha256"] for m in json.loads((full.run_dir / "manifest.json").read_text())["masks"]}
    masks_eur = {(m["level"], m["replicate"]): m["sha256"] for m in json.loads((eur.run_dir / "manifest.json").read_text())["masks"]}
    assert masks_full == masks_eur  # the same mask, restricted to the cohort's rows

    per_full = read(full, "per_sample")
    per_eur = read(eur, "per_sample")
    keys = ["imputer", "level", "replicate", "sample_id"]
    merged = per_full[per_full.cohort == "EUR"].merge(per_eur, on=keys, suffixes=("_full", "_eur"))
    assert len(merged) == len(per_eur) > 0
    np.testing.assert_allclose(merged["r2_full"], merged["r2_eur"], equal_nan=True)
    assert (merged["n_genotypes_full"] == merged["n_genotypes_eur"]).all()

    # the cohort rows of the full run equal the cohort run's cohort rows, CIs included (same
    # samples, same seed, both binned by EUR's own training MAF)
    cols = ["imputer", "level", "protocol", "bin", "metric"]
    a = metrics[(metrics.cohort == "EUR") & metrics.ci_low.notna()]
    assert set(a.maf_source) == {"cohort training split"}
    b = read(eur, "metrics")
    assert set(b.cohort) == {"all", "EUR"}
    assert set(b.loc[b.cohort == "all", "maf_source"].dropna()) == {"pooled training split"}
    b = b[(b.cohort == "EUR") & b.ci_low.notna()]
    joined = a.merge(b, on=cols, suffixes=("_full", "_eur"))
    assert len(joined) == len(a) > 0
    for column in ("value", "ci_low", "ci_high", "n_genotypes"):
        np.testing.assert_allclose(joined[f"{column}_full"], joined[f"{column}_eur"], equal_nan=True)


def test_panel_cohort_takes_the_training_set_from_one_cohort(store, tmp_path):
    outcome = run(store, tmp_path, "mismatch", panel_cohort="EUR", test_cohort="AFR")
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    assert manifest["dataset"]["panel_cohort"] == "EUR" and manifest["dataset"]["train_cohort"] == "EUR"
    assert manifest["dataset"]["n_samples"]["train"] == len(store.read_split("train", cohort="EUR").sample_ids)
    assert manifest["maf_source"] == "training split truth (cohort EUR)"


@pytest.mark.parametrize("kw, message", [
    ({"panel_cohort": "XYZ"}, "--panel-cohort 'XYZ': dataset coh has cohorts"),
    ({"panel_cohort": "EUR", "train_cohort": "AFR", "test_cohort": "EUR"}, "--panel-cohort 'EUR' and --train-cohort 'AFR' disagree"),
    ({"test_cohort": "XYZ"}, "--test-cohort 'XYZ'"),
])
def test_bad_cohorts_are_one_line_errors(store, tmp_path, kw, message):
    with pytest.raises(ImpbenchError) as info:
        run(store, tmp_path, "bad", **kw)
    assert message in str(info.value) and "\n" not in str(info.value)
