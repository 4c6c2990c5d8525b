"""Embedded simulated datasets: spec validation, determinism, cohorts/sexes, admixture,
the tree-sequence -> codes conversion against a slow reference, and the written files."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import shutil
from collections import Counter

import numpy as np
import pytest

from impbench.data.cards import get_card
from impbench.errors import ImpbenchError
from impbench.genotypes import ALLELES_CODE
from impbench.data.simulate import (
    REGION_TREE,
    _haplotypes_to_codes,
    parse_simulation,
    simulate_dataset,
    simulate_genotypes,
)

def simulate_card(card, out_dir):
    return simulate_dataset(parse_simulation(card.simulation, str(card.path)), card.name, out_dir)


#: Small versions of the built-in simulated cards (same models, fewer samples, short window).
SMALL = {
    "sim-1kgp": {"samples": {"YRI": 10, "CEU": 10, "CHB": 10}, "length": 100_000},
    "sim-los": {"samples": {"AA": 20, "CA": 10}, "length": 100_000},
    "sim-sgdp": {"regions": 3, "populations_per_region": 4, "samples_per_population": 3,
                 "length": 100_000},
}


def small_card(name: str, **overrides):
    card = get_card(name)
    simulation = {**card.simulation, **SMALL[name], **overrides}
    return dataclasses.replace(card, simulation=simulation)


def vcf_text_hash(path) -> str:
    with gzip.open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


# --- spec validation ----------------------------------------------------------------------


def test_parse_fills_defaults_and_keeps_the_input_unchanged():
    spec = {"model": "OutOfAfrica_3G09", "samples": {"YRI": 3},
            "admixture": {"population": "X", "time": 5, "proportions": {"YRI": 0.5, "CEU": 0.5}}}
    before = json.dumps(spec, sort_keys=True)
    parsed = parse_simulation(spec)
    assert json.dumps(spec, sort_keys=True) == before
    assert parsed["contig"] == "22" and parsed["seed"] == 1 and parsed["length"] > 0
    assert parsed["admixture"]["time"] == 5.0 and parsed["admixture"]["initial_size"] > 0


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"samples": {"YRI": 2}}, "needs a 'model'"),
        ({"model": "OutOfAfrica_3G09", "samples": {"YRI": 2}, "lenght": 5}, "unknown key simulation.lenght"),
        ({"model": "OutOfAfrica_3G09"}, "simulation.samples"),
        ({"model": "OutOfAfrica_3G09", "samples": {"YRI": 0}}, "positive integer"),
        ({"model": "OutOfAfrica_3G09", "samples": {"YRI": 2}, "length": "1Mb"}, "must be int"),
        ({"model": "OutOfAfrica_3G09", "samples": {"YRI": 2}, "mutation_rate": 0}, "must be > 0"),
        ({"model": "OutOfAfrica_3G09", "samples": {"AA": 2},
          "admixture": {"population": "AA", "time": 5, "proportions": {"YRI": 0.8, "CEU": 0.3}}},
         "sum to 1"),
        ({"model": "OutOfAfrica_3G09", "samples": {"AA": 2},
          "admixture": {"population": "AA", "time": 5, "proportions": {"YRI": "most", "CEU": 0.2}}},
         "proportions.YRI must be a number"),
        ({"model": REGION_TREE, "samples": {"A": 2}}, "unknown key simulation.samples"),
        ({"model": REGION_TREE, "population_split_time": 5000}, "below region_split_time"),
    ],
)
def test_bad_specs_fail_with_the_file_named(spec, message):
    with pytest.raises(ImpbenchError, match=message) as info:
        parse_simulation(spec, "cards/x.toml")
    assert str(info.value).startswith("cards/x.toml")


def test_unknown_model_and_population_are_user_errors():
    with pytest.raises(ImpbenchError, match="nor a stdpopsim HomSap model"):
        simulate_genotypes({"model": "NoSuchModel_1X00", "samples": {"A": 2}, "length": 1000})
    with pytest.raises(ImpbenchError, match="population 'XYZ'"):
        simulate_genotypes({"model": "OutOfAfrica_3G09", "samples": {"XYZ": 2}, "length": 1000})
    admixed = {"model": "OutOfAfrica_3G09", "samples": {"AA": 2}, "length": 1000,
               "admixture": {"population": "AA", "time": 5, "proportions": {"YRI": 0.5, "EUR": 0.5}}}
    with pytest.raises(ImpbenchError, match="sources populations"):
        simulate_genotypes(admixed)


# --- the genotypes ------------------------------------------------------------------------


def _slow_codes(ts):
    """Plain reference: per site and individual, the code of (left, right) haplotype alleles."""
    kept_codes, kept_pos = [], []
    for variant in ts.variants():
        if len(variant.alleles) != 2 or variant.alleles[1] is None:
            continue
        g = variant.genotypes
        row = [int(ALLELES_CODE[g[2 * i], g[2 * i + 1]]) for i in range(len(g) // 2)]
        kept_codes.append(row)
        kept_pos.append(int(variant.site.position))
    return np.array(kept_codes, dtype=np.uint8).T, np.array(kept_pos, dtype=np.int64)


@pytest.mark.parametrize("chunk", [7, 4096])
def test_codes_match_a_slow_reference(chunk):
    import msprime

    ts = msprime.sim_ancestry(8, population_size=1000, sequence_length=20_000,
                              recombination_rate=1e-8, random_seed=5)
    # A high rate so that multiallelic sites occur and are dropped.
    ts = msprime.sim_mutations(ts, rate=5e-6, random_seed=5)
    codes, positions, ref, alt, n_sites, n_multi = _haplotypes_to_codes(ts, chunk=chunk)
    expected_codes, expected_pos = _slow_codes(ts)
    assert n_multi > 0 and n_sites == ts.num_sites
    assert codes.shape == expected_codes.shape == (8, n_sites - n_multi)
    np.testing.assert_array_equal(codes, expected_codes)
    np.testing.assert_array_equal(positions, expected_pos)
    assert all(r != a for r, a in zip(ref, alt))


@pytest.mark.parametrize("name", list(SMALL))
def test_same_seed_same_vcf_different_seed_different_vcf(name, tmp_path):
    card = small_card(name)
    vcf_a, sheet_a = simulate_card(card, tmp_path / "a")
    vcf_b, sheet_b = simulate_card(card, tmp_path / "b")
    assert vcf_text_hash(vcf_a) == vcf_text_hash(vcf_b)
    assert sheet_a.read_bytes() == sheet_b.read_bytes()
    other = small_card(name, seed=card.simulation["seed"] + 100)
    vcf_c, _ = simulate_card(other, tmp_path / "c")
    assert vcf_text_hash(vcf_c) != vcf_text_hash(vcf_a)


def _sheet(path):
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def _strata(rows):
    return Counter((row["cohort"], row["sex"]) for row in rows)


def test_sim_1kgp_cohorts_and_sexes(tmp_path):
    _, sheet = simulate_card(small_card("sim-1kgp"), tmp_path)
    rows = _sheet(sheet)
    assert list(rows[0]) == ["sample", "cohort", "sex", "population"]
    assert _strata(rows) == {(c, s): 5 for c in ("YRI", "CEU", "CHB") for s in ("female", "male")}
    assert len({row["sample"] for row in rows}) == 30


def test_sim_los_cohorts_and_sexes(tmp_path):
    _, sheet = simulate_card(small_card("sim-los"), tmp_path)
    rows = _sheet(sheet)
    assert Counter(row["cohort"] for row in rows) == {"AA": 20, "CA": 10}
    assert _strata(rows) == {("AA", "female"): 10, ("AA", "male"): 10,
                             ("CA", "female"): 5, ("CA", "male"): 5}
    assert {row["population"] for row in rows if row["cohort"] == "CA"} == {"CEU"}


def test_sim_sgdp_many_populations_few_samples(tmp_path):
    _, sheet = simulate_card(small_card("sim-sgdp"), tmp_path)
    rows = _sheet(sheet)
    per_population = Counter(row["population"] for row in rows)
    assert len(per_population) == 12 and set(per_population.values()) == {3}
    assert Counter(row["cohort"] for row in rows) == {"R1": 12, "R2": 12, "R3": 12}
    for (cohort, _), n in _strata(rows).items():
        assert n == 6
    # Every population belongs to one region (its cohort).
    assert all(row["population"].startswith(row["cohort"] + "P") for row in rows)


def test_odd_cohort_sizes_split_sexes_within_one():
    data = simulate_genotypes({"model": "OutOfAfrica_3G09", "samples": {"YRI": 7, "CEU": 1},
                               "length": 5_000})
    counts = Counter(zip(data.matrix.cohort, data.matrix.sex))
    assert abs(counts[("YRI", "female")] - counts[("YRI", "male")]) == 1
    assert counts[("CEU", "female")] + counts[("CEU", "male")] == 1


def test_admixed_cohort_is_about_80_percent_african():
    """AA allele frequencies ~ a * YRI + (1 - a) * CEU; least squares gives a near 0.8."""
    spec = {
        "model": "OutOfAfrica_3G09",
        "samples": {"AA": 150, "YRI": 75, "CEU": 75},
        "length": 3_000_000,
        "seed": 11,
        "admixture": {"population": "AA", "time": 10, "proportions": {"YRI": 0.8, "CEU": 0.2}},
    }
    data = simulate_genotypes(spec)
    m = data.matrix
    dosage = (m.codes >= 2).astype(float) + (m.codes == 4)
    freq = {c: dosage[m.cohort == c].mean(axis=0) / 2 for c in ("AA", "YRI", "CEU")}
    x = freq["YRI"] - freq["CEU"]
    y = freq["AA"] - freq["CEU"]
    informative = np.abs(x) > 0.1
    alpha = float(x[informative] @ y[informative] / (x[informative] @ x[informative]))
    assert 0.7 < alpha < 0.9, alpha


def test_written_vcf_holds_the_simulated_genotypes(tmp_path):
    from cyvcf2 import VCF

    card = small_card("sim-los")
    vcf, sheet = simulate_card(card, tmp_path)
    data = simulate_genotypes(card.simulation)
    reader = VCF(str(vcf))
    assert list(reader.samples) == list(data.matrix.sample_ids)
    rows = []
    positions = []
    for record in reader:
        gt = record.genotype.array()  # (n_samples, 3): allele0, allele1, phased
        assert gt[:, 2].all()
        rows.append(ALLELES_CODE[gt[:, 0], gt[:, 1]])
        positions.append(record.POS)
    np.testing.assert_array_equal(np.array(rows).T, data.matrix.codes)
    np.testing.assert_array_equal(positions, data.matrix.positions)
    assert positions[0] > card.simulation["start"]
    info = json.loads((tmp_path / f"{card.name}.simulation.json").read_text())
    assert info["n_variants"] == data.matrix.n_variants and info["n_samples"] == 30
    if shutil.which("tabix"):
        assert (tmp_path / f"{card.name}.vcf.gz.tbi").exists()


def test_rates_default_to_stdpopsim_chr22_offline():
    data = simulate_genotypes({"model": "OutOfAfrica_3G09", "samples": {"YRI": 2}, "length": 1000})
    assert data.mutation_rate == pytest.approx(1.29e-8)
    assert 1e-8 < data.recombination_rate < 3e-8


def test_non_human_contig_needs_explicit_rates():
    spec = {"model": "OutOfAfrica_3G09", "samples": {"YRI": 2}, "length": 1000, "contig": "scaffold1"}
    with pytest.raises(ImpbenchError, match="recombination_rate"):
        simulate_genotypes(spec)
    data = simulate_genotypes({**spec, "recombination_rate": 1e-8, "mutation_rate": 1e-8})
    assert data.matrix.contig == "scaffold1"
