"""Issue 22, scoring side: the frequency-fair headline (``r2_bin_mean``), ``n_eff``,
``soft_dosage_fraction``, the two-way (samples x genomic blocks) bootstrap, cohort-own MAF rows
and the array scheme's levels and variant counts."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from impbench.bench.rundata import RunData, array_levels
from impbench.bench.unit import cohort_maf_frequency, score_unit, split_stats_key
from impbench.errors import ImpbenchError
from impbench.genotypes import GenotypeMatrix, alt_allele_frequency
from impbench.imputers.base import Imputation
from impbench.scoring.aggregate import MAF_COHORT, MAF_POOLED, aggregate
from impbench.scoring.bootstrap import (
    block_length_for,
    bootstrap_values,
    genomic_blocks,
    paired_differences,
    resample_indices,
    two_way_weights,
)
from impbench.scoring.classes import DEFAULT_MAF_CLASSES, class_bins
from impbench.scoring.metrics import DEFAULT_BIN_EDGES, bin_labels, score
from impbench.scoring.pooled import STANDARD_POOLED, r2_bin_mean
from impbench.testing.reference_metrics import ref_cells, ref_groups, ref_pooled_metrics, same

EDGES = (0, 0.05, 0.2, 0.5)


def noisy_case(seed, n_samples=8, n_variants=12, n_replicates=2, error=0.3):
    """Truth, training ALT frequencies, positions in 4 blocks of 100 bp, (mask, imputation) per replicate."""
    rng = np.random.default_rng(seed)
    freq = rng.choice([0.03, 0.1, 0.3, 0.6, 0.9, 0.97], size=n_variants)
    a0 = rng.random((n_samples, n_variants)) < freq
    a1 = rng.random((n_samples, n_variants)) < freq
    truth = (1 + a1 + 2 * a0).astype(np.uint8)
    positions = np.sort(rng.choice(400, size=n_variants, replace=False)) + 1000
    replicates = []
    for _ in range(n_replicates):
        mask = rng.random(truth.shape) < 0.6
        calls = truth.copy()
        wrong = rng.random(truth.shape) < error
        calls[wrong] = rng.integers(1, 5, size=int(wrong.sum()), dtype=np.uint8)
        dosage = np.clip(np.array([0, 0, 1, 1, 2], dtype=np.float32)[calls] + rng.normal(0, 0.3, truth.shape), 0, 2)
        replicates.append((mask, Imputation(calls=calls, dosage=dosage.astype(np.float32))))
    return truth, freq, positions, replicates


def slow_two_way(truth, freq, blocks, replicates, sample_draw, block_draw):
    """Metrics of one two-way resample by rescoring: for every drawn sample (with repeats) and
    every drawn block (with repeats), that sample's scored cells in that block, of every
    replicate. Returns {(bin, metric): value}."""
    per_replicate = [ref_cells(truth, imp.calls, imp.dosage, np.ones(truth.shape[1], bool), mask, freq, "standard")
                     for mask, imp in replicates]
    drawn = []
    for cells in per_replicate:
        for i in sample_draw:
            for k in block_draw:
                drawn += [(j, t, c, d) for s, j, t, c, d in cells if s == i and blocks[j] == k]
    out = {}
    for label, variant_set in ref_groups(freq, EDGES):
        values = ref_pooled_metrics([cell for cell in drawn if cell[0] in variant_set], "standard")
        out.update({(label, name): value for name, value in values.items()})
    return out


def stats_of(truth, freq, blocks, replicates):
    return [score(truth, imp, mask, train_alt_freq=freq, bin_edges=EDGES, blocks=blocks).sample_stats
            for mask, imp in replicates]


# --------------------------------------------------------------------------- two-way bootstrap


@pytest.mark.parametrize("seed", [0, 1])
def test_two_way_resamples_match_rescoring_drawn_samples_and_blocks(seed):
    truth, freq, positions, replicates = noisy_case(seed)
    blocks = genomic_blocks(positions, 100)
    k = int(blocks.max()) + 1
    assert k >= 3
    stats = stats_of(truth, freq, blocks, replicates)
    assert stats[0].n_blocks == k
    n_boot = 5
    pooled, point, resampled = bootstrap_values(stats, n_boot=n_boot, seed=seed)
    sample_w, block_w = two_way_weights(truth.shape[0], k, n_boot, seed)
    assert block_w is not None and (block_w.sum(axis=1) == k).all()
    # the sample draws are those of the sample-only bootstrap (same seed)
    assert np.array_equal(sample_w.sum(axis=1), np.full(n_boot, truth.shape[0]))
    samples = resample_indices(truth.shape[0], n_boot, seed)
    block_draws = np.random.default_rng([seed, 1]).integers(0, k, size=(n_boot, k))
    for b in range(n_boot):
        expected = slow_two_way(truth, freq, blocks, replicates, samples[b].tolist(), block_draws[b].tolist())
        for m, name in enumerate(STANDARD_POOLED):
            for g, label in enumerate(pooled.metric_groups):
                assert same(resampled[b, m, g], expected[(label, name)], tol=1e-9), (b, name, label)
    full = slow_two_way(truth, freq, blocks, replicates, range(truth.shape[0]), range(k))
    for m, name in enumerate(STANDARD_POOLED):
        for g, label in enumerate(pooled.metric_groups):
            assert same(point[m, g], full[(label, name)], tol=1e-9), (name, label)


def test_blocks_widen_the_ci_and_one_block_is_the_sample_bootstrap():
    truth, freq, positions, replicates = noisy_case(3, n_samples=30, n_variants=40)
    blocks = genomic_blocks(positions, 50)
    one = stats_of(truth, freq, None, replicates)
    many = stats_of(truth, freq, blocks, replicates)
    _, p_one, r_one = bootstrap_values(one, n_boot=300, seed=2)
    _, p_many, r_many = bootstrap_values(many, n_boot=300, seed=2)
    _, _, r_samples_only = bootstrap_values(many, n_boot=300, seed=2, resample_blocks=False)
    assert np.allclose(p_one, p_many, equal_nan=True)  # the point values do not depend on blocks
    assert np.allclose(r_one, r_samples_only, equal_nan=True)  # blocks summed = the sample bootstrap
    overall = STANDARD_POOLED.index("r2")
    assert np.nanstd(r_many[:, overall, -1]) > np.nanstd(r_one[:, overall, -1])


def test_genomic_blocks_and_default_block_length():
    positions = np.array([5, 10, 60, 61, 250, 251])
    assert genomic_blocks(positions, 50).tolist() == [0, 0, 1, 1, 2, 2]  # empty blocks are not numbered
    assert genomic_blocks(positions, 0).tolist() == [0] * 6
    window = np.arange(20_000_001, 21_200_000, 187)  # a sim-1kgp window: 1.2 Mb
    assert genomic_blocks(window, block_length_for(window, None)).max() + 1 >= 20
    chromosome = np.arange(1, 64_000_000, 1000)  # a long region: at most 100 blocks by default
    assert genomic_blocks(chromosome, block_length_for(chromosome, None)).max() + 1 <= 100
    assert block_length_for(window, 10_000) == 10_000
    with pytest.raises(ImpbenchError):
        block_length_for(window, -1)


def test_paired_differences_two_way_against_itself_and_shapes():
    truth, freq, positions, reps = noisy_case(5)
    blocks = genomic_blocks(positions, 100)
    a = stats_of(truth, freq, blocks, reps)
    table = paired_differences(a, a, n_boot=20, seed=1)
    defined = table["difference"].notna()
    assert (table.loc[defined, ["difference", "ci_low", "ci_high"]] == 0).all().all()


# --------------------------------------------------------------------------- headline


def _aggregate(stats_by_name, rows_by_name, cohorts, edges=DEFAULT_BIN_EDGES, classes=DEFAULT_MAF_CLASSES, **kw):
    unit_stats = {(name, 0.1, "standard"): {0: stats} for name, stats in stats_by_name.items()}
    rows = pd.concat([r.assign(imputer=name, level=0.1, replicate=0) for name, r in rows_by_name.items()],
                     ignore_index=True)
    return aggregate(unit_stats, rows, None, cohorts, edges, classes=classes, n_boot=kw.pop("n_boot", 100), **kw)


@pytest.fixture(scope="module")
def sim_1kgp():
    from impbench.data.cards import get_card
    from impbench.data.prepare import prepare

    store = prepare(get_card("sim-1kgp"))
    return store.read_split("train"), store.read_split("test")


def test_frequency_only_predictor_scores_nothing_on_the_headline(sim_1kgp):
    from impbench.bench.masking import make_mask

    train, test = sim_1kgp
    freq = alt_allele_frequency(train.codes)
    mask = make_mask(test.codes, 0.25, 1)
    blocks = genomic_blocks(test.positions, block_length_for(test.positions, None))
    answers = {
        "freq-only": np.broadcast_to(2 * freq[None, :], test.codes.shape).astype(np.float32),  # knows no individual
        "truth": np.array([0, 0, 1, 1, 2], dtype=np.float32)[test.codes],
        # constant on the minor allele (no minor allele anywhere): what ``major`` answers
        "constant": np.broadcast_to(np.where(freq > 0.5, 2.0, 0.0)[None, :], test.codes.shape).astype(np.float32),
    }
    stats, rows = {}, {}
    for name, dosage in answers.items():
        calls = np.where(dosage >= 1.5, 4, np.where(dosage >= 0.5, 2, 1)).astype(np.uint8)
        if name == "truth":
            calls = test.codes.copy()
        scores = score(test.codes, Imputation(calls=calls, dosage=dosage), mask, train_alt_freq=freq, blocks=blocks)
        stats[name], rows[name] = scores.sample_stats, scores.metrics
    out = _aggregate(stats, rows, test.cohort)
    m = out["metrics"]
    m = m[m["cohort"] == "all"].set_index(["imputer", "bin", "metric"])
    pooled = m.loc[("freq-only", "overall", "r2"), "value"]
    headline = m.loc[("freq-only", "overall", "r2_bin_mean"), "value"]
    print(f"frequency-only predictor: pooled r2 overall {pooled:.3f}, r2_bin_mean overall {headline:.4f}")
    assert pooled > 0.2  # the pooled R² rewards knowing which variants are common ...
    assert headline < 0.02  # ... the headline does not
    for label, _, _ in DEFAULT_MAF_CLASSES:
        assert m.loc[("freq-only", label, "r2_bin_mean"), "value"] < 0.02
        assert m.loc[("truth", label, "r2_bin_mean"), "value"] == pytest.approx(1.0)
        assert m.loc[("constant", label, "r2_bin_mean"), "value"] == 0.0
    assert m.loc[("truth", "overall", "r2_bin_mean"), "value"] == pytest.approx(1.0)
    assert m.loc[("constant", "overall", "r2_bin_mean"), "value"] == 0.0
    # n_eff: test samples x r2_bin_mean, CI likewise
    n_eff = m.loc[("truth", "overall", "n_eff")]
    assert n_eff["value"] == pytest.approx(test.n_samples)
    row = m.loc[("freq-only", "overall", "n_eff")]
    assert row["value"] == pytest.approx(test.n_samples * headline)
    assert row["ci_low"] == pytest.approx(test.n_samples * m.loc[("freq-only", "overall", "r2_bin_mean"), "ci_low"])
    pairs = out["pairs"]
    p = pairs[(pairs["metric"] == "r2_bin_mean") & (pairs["cohort"] == "all") & (pairs["bin"] == "overall")]
    p = p.set_index(["imputer_a", "imputer_b"])
    assert p.loc[("freq-only", "truth"), "difference"] == pytest.approx(headline - 1.0)
    assert p.loc[("freq-only", "truth"), "ci_high"] < 0


def test_headline_matches_the_slow_reference():
    truth, freq, positions, replicates = noisy_case(11, n_samples=12, n_variants=30)
    mask, imp = replicates[0]
    edges = (0, 0.05, 0.2, 0.5)
    classes = (("rare", 0.0, 0.05), ("common", 0.05, 0.5))
    scores = score(truth, imp, mask, train_alt_freq=freq, bin_edges=edges)
    out = _aggregate({"x": scores.sample_stats}, {"x": scores.metrics}, np.array(["A"] * 12), edges, classes)
    m = out["metrics"].set_index(["bin", "metric"])["value"]
    cells = [(j, t, c, d) for _, j, t, c, d in ref_cells(truth, imp.calls, imp.dosage, np.ones(30, bool), mask, freq,
                                                         "standard")]
    bin_r2 = [ref_pooled_metrics([cell for cell in cells if cell[0] in members], "standard")["r2"]
              for _, members in ref_groups(freq, edges)[:-1]]
    defined = lambda values: [v for v in values if not math.isnan(v)]  # noqa: E731
    expected = {"rare": defined(bin_r2[:1]), "common": defined(bin_r2[1:]), "overall": defined(bin_r2)}
    for label, values in expected.items():
        assert same(m[(label, "r2_bin_mean")], sum(values) / len(values) if values else math.nan), label


def test_r2_bin_mean_skips_undefined_bins():
    values = np.array([[0.5, np.nan, 0.1], [np.nan, np.nan, np.nan]])
    out = r2_bin_mean(values, [np.array([0, 1]), np.array([1]), np.arange(3)])
    assert out[0, 0] == 0.5 and math.isnan(out[0, 1]) and out[0, 2] == pytest.approx(0.3)
    assert np.isnan(out[1]).all()


def test_soft_dosage_fraction():
    truth, freq, _, replicates = noisy_case(2)
    mask, imp = replicates[0]
    hard = Imputation(calls=imp.calls, dosage=np.array([0, 0, 1, 1, 2], dtype=np.float32)[imp.calls])
    soft = imp.dosage.copy()
    soft[:, ::2] = np.rint(soft[:, ::2])  # half the variants hard
    for dosage, expected in ((hard.dosage, 0.0), (soft, float(np.mean((soft != np.rint(soft))[mask])))):
        scores = score(truth, Imputation(calls=imp.calls, dosage=dosage), mask, train_alt_freq=freq, bin_edges=EDGES)
        row = scores.metrics.set_index(["bin", "metric"]).loc[("overall", "soft_dosage_fraction")]
        assert row["value"] == pytest.approx(expected)
        out = _aggregate({"x": scores.sample_stats}, {"x": scores.metrics}, np.array(["A"] * 8), EDGES, ())
        m = out["metrics"].set_index(["bin", "metric"])["value"]
        assert m[("overall", "soft_dosage_fraction")] == pytest.approx(expected)
    assert 0.2 < expected < 0.8


# --------------------------------------------------------------------------- cohort MAF


def _two_cohorts(seed=0, n_per=20, n_variants=60):
    """Two cohorts with very different allele frequencies (some variants monomorphic in B's
    training samples); truth genotypes, training codes and cohorts."""
    rng = np.random.default_rng(seed)
    freq_a = rng.uniform(0.05, 0.5, n_variants)
    freq_b = np.where(rng.random(n_variants) < 0.3, 0.0, rng.uniform(0.002, 0.015, n_variants))

    def draw(freq, n):
        a0 = rng.random((n, n_variants)) < freq
        a1 = rng.random((n, n_variants)) < freq
        return (1 + a1 + 2 * a0).astype(np.uint8)

    train = np.concatenate([draw(freq_a, 4 * n_per), draw(freq_b, 4 * n_per)])
    train_cohort = np.array(["A"] * 4 * n_per + ["B"] * 4 * n_per)
    test = np.concatenate([draw(freq_a, n_per), draw(np.maximum(freq_b, 0.01), n_per)])
    cohort = np.array(["A"] * n_per + ["B"] * n_per)
    return train, train_cohort, test, cohort


def test_cohort_rows_bin_by_the_cohorts_own_training_maf():
    train, train_cohort, test, cohort = _two_cohorts()
    n_variants = test.shape[1]
    pooled_freq = alt_allele_frequency(train)
    own = {c: alt_allele_frequency(train[train_cohort == c]) for c in ("A", "B")}
    assert ((own["B"] == 0) | (own["B"] == 1)).sum() > 5  # monomorphic in B's training samples
    n = len(test)
    truth = GenotypeMatrix(codes=test, positions=np.arange(1, n_variants + 1) * 100, contig="1",
                           ref=np.full(n_variants, "A", dtype=object), alt=np.full(n_variants, "C", dtype=object),
                           variant_ids=np.array([f"v{j}" for j in range(n_variants)], dtype=object),
                           sample_ids=np.array([f"s{i}" for i in range(n)], dtype=object),
                           cohort=cohort.astype(object))
    rng = np.random.default_rng(1)
    mask = rng.random(test.shape) < 0.5
    dosage = np.clip(np.array([0, 0, 1, 1, 2], np.float32)[test] + rng.normal(0, 0.4, test.shape), 0, 2).astype(np.float32)
    imputation = Imputation(calls=test.copy(), dosage=dosage)
    unit = score_unit(truth, imputation, mask, pooled_freq, protocols=["standard"], bin_edges=DEFAULT_BIN_EDGES,
                      min_variant_cells=5, keys={"imputer": "x", "level": 0.1, "replicate": 0}, variant_quality=False,
                      cohort_alt_freq=own)
    assert set(unit.stats) == {"standard", "standard@A", "standard@B"}
    assert split_stats_key("standard@B") == ("standard", "B")
    unit_stats = {("x", 0.1, "standard"): {0: unit.stats["standard"]}}
    cohort_stats = {("x", 0.1, "standard", c): {0: unit.stats[f"standard@{c}"]} for c in ("A", "B")}
    rows = pd.DataFrame(unit.rows["replicates"])
    out = aggregate(unit_stats, rows, None, cohort, DEFAULT_BIN_EDGES, n_boot=50, cohort_stats=cohort_stats)
    m = out["metrics"]
    assert set(m.loc[m["cohort"] == "all", "maf_source"].dropna()) == {MAF_POOLED}
    assert set(m.loc[m["cohort"] == "B", "maf_source"].dropna()) == {MAF_COHORT}
    # B's rows are those of scoring B alone with B's own training MAF (monomorphic: in no bin)
    rows_b = cohort == "B"
    alone = score(test[rows_b], Imputation(calls=test[rows_b], dosage=dosage[rows_b]), mask[rows_b],
                  train_alt_freq=cohort_maf_frequency(own["B"]))
    expected = alone.metrics.set_index(["bin", "metric"])["value"]
    got = m[(m["cohort"] == "B") & m["bin"].isin(bin_labels(DEFAULT_BIN_EDGES) + ["overall"])
            & m["metric"].isin(["r2", "concordance"])].set_index(["bin", "metric"])["value"]
    for key, value in got.items():
        assert same(value, expected[key]), key
    # with the pooled MAF most of B's variants would be common; with its own, B has no common variant
    b_common = m[(m["cohort"] == "B") & (m["bin"] == "common (≥5%)") & (m["metric"] == "r2")]
    assert b_common["n_genotypes"].iloc[0] == 0
    b_overall = m[(m["cohort"] == "B") & (m["bin"] == "overall") & (m["metric"] == "r2")]["n_genotypes"].iloc[0]
    b_in_bins = m[(m["cohort"] == "B") & m["bin"].isin(bin_labels(DEFAULT_BIN_EDGES)) & (m["metric"] == "r2")]
    monomorphic = (own["B"] <= 0) | (own["B"] >= 1)
    assert b_overall - b_in_bins["n_genotypes"].sum() == mask[rows_b][:, monomorphic].sum()
    pooled_b_common = m[(m["cohort"] == "all") & (m["bin"] == "common (≥5%)") & (m["metric"] == "r2")]
    assert pooled_b_common["n_genotypes"].iloc[0] > 0
    assert set(out["pairs"].get("maf_source", pd.Series(dtype=str)).dropna()) <= {MAF_POOLED, MAF_COHORT}


# --------------------------------------------------------------------------- array scheme


def _settings(**kw):
    base = dict(scheme="array", levels=(0.05, 0.15, 0.25), levels_explicit=None, typed_density=None)
    base.update(kw)
    return SimpleNamespace(**base)


def test_array_levels_the_typed_sites_override_are_an_error():
    typed = np.zeros(100, dtype=bool)
    typed[::8] = True  # 13 typed: level 0.87
    data = RunData(panel=None, val=None, truth=None, full_test=None, rows=None, alt_freq=None, typed=typed)
    with pytest.raises(ImpbenchError, match=r"--levels 0.9: .* level to 0.87"):
        array_levels(_settings(levels=(0.9,), levels_explicit=True), data)
    with pytest.raises(ImpbenchError, match="--levels"):
        array_levels(_settings(levels=(0.9,)), data)  # differs from the defaults: asked for
    levels, note = array_levels(_settings(levels_explicit=False), data)
    assert levels == (0.87,) and "derived" in note and "13 typed sites" in note
    assert array_levels(_settings(levels=(0.87,), levels_explicit=True), data)[0] == (0.87,)
    with pytest.raises(ImpbenchError):
        array_levels(_settings(levels=(0.5,), levels_explicit=True, typed_density=0.2),
                     RunData(None, None, None, None, None, None))
    assert array_levels(_settings(scheme="uniform", levels=(0.9,), levels_explicit=True), data) == ((0.9,), None)


def test_n_variants_counts_scored_variants_not_typed_ones():
    rng = np.random.default_rng(0)
    truth = (1 + (rng.random((20, 10)) < 0.3) + 2 * (rng.random((20, 10)) < 0.3)).astype(np.uint8)
    typed = np.zeros(10, dtype=bool)
    typed[:4] = True
    mask = np.broadcast_to(~typed[None, :], truth.shape).copy()
    freq = np.full(10, 0.3)
    imputation = Imputation(calls=truth.copy(), dosage=np.array([0, 0, 1, 1, 2], np.float32)[truth])
    standard = score(truth, imputation, mask, train_alt_freq=freq).metrics.set_index(["bin", "metric"])
    assert standard.loc[("overall", "r2"), "n_variants"] == 6
    assert standard.loc[("30–40%", "r2"), "n_variants"] == 6
    paper = score(truth, imputation, mask, train_alt_freq=freq, protocol="paper").metrics.set_index(["bin", "metric"])
    assert paper.loc[("overall", "r2"), "n_variants"] == 10  # paper scores every cell, typed ones too


def test_mask_entry_reports_typed_variants_apart():
    from impbench.bench.rundata import Mask, mask_entry

    typed = np.zeros(10, dtype=bool)
    typed[:3] = True
    cells = np.broadcast_to(~typed[None, :], (4, 10)).copy()
    entry = mask_entry(0.7, 0, Mask(cells, "x" * 64, int(cells.sum()), typed, {"rate": 0.7, "carrier_rate": 0.7}))
    assert entry["n_typed_variants"] == 3 and entry["n_masked"] == 28
    plain = mask_entry(0.1, 0, Mask(cells, "x" * 64, int(cells.sum()), None, {"rate": 0.1, "carrier_rate": 0.1}))
    assert "n_typed_variants" not in plain


def test_run_help_names_the_new_flags():
    from click.testing import CliRunner

    from impbench.cli.run import run_cmd

    text = CliRunner().invoke(run_cmd, ["--help"]).output
    assert "--block-length" in text and "untyped fraction" in text


def test_array_run_refuses_levels_its_typed_sites_override_before_any_work(tmp_path):
    from impbench.bench.runner import Runner
    from impbench.bench.settings import RunSettings
    from impbench.data.simulate import simulate_matrix
    from impbench.testing import InMemoryStore

    sim = simulate_matrix(n_samples=40, sequence_length=60_000, seed=2)
    store = InMemoryStore(sim.take_variants(np.arange(min(sim.n_variants, 120))), name="mem")
    positions = store.read_split("test").positions
    sites = tmp_path / "typed.tsv"
    sites.write_text("".join(f"{store.contig}\t{p}\n" for p in positions[::5]))  # 1 in 5 typed
    base = dict(dataset="mem", imputers=["major"], replicates=1, out=tmp_path / "out", run_name="a", device="cpu",
                threads=1, executor="inline", scheme="array", typed_sites=sites, n_boot=20)
    with pytest.raises(ImpbenchError, match=r"^--levels 0.9: under --scheme array"):
        Runner(RunSettings(levels=(0.9,), levels_explicit=True, **base), store).run()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("manifest.json"))
    outcome = Runner(RunSettings(levels_explicit=False, **base), store).run()
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    level = manifest["settings"]["levels"][0]
    n_typed = manifest["masks"][0]["n_typed_variants"]
    assert n_typed == len(positions[::5]) and level == pytest.approx(1 - n_typed / len(positions), abs=1e-6)
    metrics = pd.read_csv(outcome.run_dir / "metrics.csv")
    overall = metrics[(metrics["bin"] == "overall") & (metrics["metric"] == "r2") & (metrics["cohort"] == "all")]
    assert overall["n_variants"].iloc[0] <= len(positions) - n_typed  # scored variants only
