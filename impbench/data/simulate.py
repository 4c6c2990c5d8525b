"""Simulated genotypes (msprime / stdpopsim) for the embedded datasets and for tests.

``simulate_matrix`` is the quick in-memory generator that tests and plugin test suites use;
the embedded dataset cards (``sim-1kgp``, ``sim-los``, ``sim-sgdp``) write a bgzipped VCF and a
sample sheet that then go through the same ingest path as real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from impbench.errors import ImpbenchError
from impbench.files import atomic_write
from impbench.genotypes import ALLELES_CODE, GenotypeMatrix, codes_from_alleles
from impbench.data.demography import REGION_TREE, default_rates, region_tree_demography, stdpopsim_demography
from impbench.io.vcf_write import write_vcf


def simulate_matrix(
    n_samples: int = 100,
    sequence_length: float = 200_000,
    seed: int = 1,
    population_size: float = 10_000,
    recombination_rate: float = 1e-8,
    mutation_rate: float = 1.5e-8,
    contig: str = "22",
) -> GenotypeMatrix:
    """A small phased, biallelic ``GenotypeMatrix`` from a single-population coalescent.

    Deterministic given ``seed``. Sites with more than two alleles are dropped, and so are
    repeated positions (msprime's discrete genome can put two sites at one position only when
    they are the same site, so positions are unique). Two cohorts ("A", "B") and random sexes
    are assigned alternately / by the seed so that stratified code paths are exercised.

    Returns codes uint8 of shape (n_samples, n_variants).
    """
    import msprime

    ts = msprime.sim_ancestry(
        samples=n_samples,
        population_size=population_size,
        sequence_length=sequence_length,
        recombination_rate=recombination_rate,
        random_seed=seed,
    )
    ts = msprime.sim_mutations(ts, rate=mutation_rate, random_seed=seed)
    haplotypes = ts.genotype_matrix()  # (n_sites, 2 * n_samples), int32 allele indices
    n_alleles = np.array([len(site.mutations) for site in ts.sites()], dtype=np.int64)
    biallelic = haplotypes.max(axis=1) <= 1
    keep = biallelic & (n_alleles >= 1)
    haplotypes = haplotypes[keep]
    positions = ts.tables.sites.position[keep].astype(np.int64) + 1
    codes = codes_from_alleles(haplotypes[:, 0::2].T, haplotypes[:, 1::2].T)
    rng = np.random.default_rng(seed)
    n_variants = codes.shape[1]
    return GenotypeMatrix(
        codes=np.ascontiguousarray(codes),
        positions=positions,
        contig=contig,
        ref=np.full(n_variants, "A", dtype=object),
        alt=np.full(n_variants, "G", dtype=object),
        variant_ids=np.array([f"{contig}:{p}" for p in positions], dtype=object),
        sample_ids=np.array([f"s{i:04d}" for i in range(n_samples)], dtype=object),
        cohort=np.array(["A" if i % 2 == 0 else "B" for i in range(n_samples)], dtype=object),
        sex=rng.choice(np.array(["male", "female"], dtype=object), size=n_samples),
    )


# ---------------------------------------------------------------------------------------------
# Embedded datasets: a simulation spec (a card's [simulation] table) -> VCF + sample sheet
# ---------------------------------------------------------------------------------------------

#: Bump when the genotypes written for a given spec change, so cached simulations are redone.
SIMULATION_VERSION = 1

#: The built-in model that is not a stdpopsim model: populations nested in regions.

_COMMON_KEYS = {
    "model": str,
    "contig": str,
    "start": int,
    "length": int,
    "recombination_rate": float,
    "mutation_rate": float,
    "seed": int,
}
_STDPOPSIM_KEYS = {"samples": dict, "populations": dict, "admixture": dict}
_REGION_TREE_KEYS = {
    "regions": int,
    "populations_per_region": int,
    "samples_per_population": int,
    "population_size": float,
    "ancestral_size": float,
    "region_split_time": float,
    "population_split_time": float,
}
_ADMIXTURE_KEYS = {"population": str, "time": float, "proportions": dict, "initial_size": float}
_DEFAULTS = {
    "contig": "22",
    "start": 20_000_000,
    "length": 1_000_000,
    "seed": 1,
    # region-tree defaults
    "regions": 5,
    "populations_per_region": 4,
    "samples_per_population": 5,
    "population_size": 5_000.0,
    "ancestral_size": 10_000.0,
    "region_split_time": 3_000.0,
    "population_split_time": 400.0,
}


#: Bounds of a simulation (a card is shared like a data file: a typo must not exhaust the
#: machine). Samples in all: 100,000 diploids (far past any public panel's 3,202 of 1000
#: Genomes at high coverage). Length: the longest human chromosome (chr1, 248.96 Mb), and the
#: last position must fit a tabix index (2**29 - 1). Rates per bp per generation: 1e-5 is three orders
#: above human rates. Seeds: numpy's SeedSequence takes any non-negative integer; 2**63 - 1 keeps
#: them JSON- and HDF5-safe.
MAX_SAMPLES = 100_000
MAX_LENGTH = 250_000_000
MAX_POSITION = 2**29 - 1  # the largest position a tabix (.tbi) index stores
MAX_RATE = 1e-5
MAX_SEED = 2**63 - 1
#: Effective sizes and times (generations) beyond this are not a benchmark's demography.
MAX_SIZE = 1e9


def _check_type(value, expected: type, key: str, where: str):
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, bool):
        raise ImpbenchError(f"{where}: simulation.{key} must be an integer, not {value!r}")
    if not isinstance(value, expected):
        raise ImpbenchError(
            f"{where}: simulation.{key} must be {expected.__name__}, not {value!r}"
        )
    return value


def parse_simulation(spec: dict, where: str = "simulation") -> dict:
    """Validate a card's ``[simulation]`` table and fill in the defaults.

    ``where`` names the card file in error messages. Returns a new dict (the normalised spec
    that identifies the simulation; its hash names the cache folder). Raises ``ImpbenchError``
    on an unknown key, a wrong type or an impossible value. Does not import msprime/stdpopsim.
    """
    import copy

    if not isinstance(spec, dict) or "model" not in spec:
        raise ImpbenchError(f"{where}: [simulation] needs a 'model' key")
    spec = copy.deepcopy(spec)  # the card's table stays as written
    model = _check_type(spec["model"], str, "model", where)
    allowed = dict(_COMMON_KEYS)
    allowed.update(_REGION_TREE_KEYS if model == REGION_TREE else _STDPOPSIM_KEYS)
    out: dict = {}
    for key, value in spec.items():
        if key not in allowed:
            raise ImpbenchError(
                f"{where}: unknown key simulation.{key} for model {model!r} "
                f"(known: {', '.join(sorted(allowed))})"
            )
        out[key] = _check_type(value, allowed[key], key, where)
    for key in allowed:
        if key not in out and key in _DEFAULTS:
            out[key] = _DEFAULTS[key]
    for key in ("length", "start", "seed"):
        if out[key] < (1 if key == "length" else 0):
            raise ImpbenchError(f"{where}: simulation.{key} must be positive, not {out[key]}")
    _at_most(out["length"], MAX_LENGTH, "length", where, "bp (the longest human chromosome is 249 Mb)")
    _at_most(out["start"] + out["length"], MAX_POSITION, "start + length", where, "(the largest position a tabix index holds)")
    _at_most(out["seed"], MAX_SEED, "seed", where)
    for key in ("recombination_rate", "mutation_rate"):
        if key in out and not out[key] > 0:
            raise ImpbenchError(f"{where}: simulation.{key} must be > 0, not {out[key]}")
        if key in out:
            _at_most(out[key], MAX_RATE, key, where, "per bp per generation")
    if model == REGION_TREE:
        for key in _REGION_TREE_KEYS:
            if not out[key] > 0:
                raise ImpbenchError(f"{where}: simulation.{key} must be > 0, not {out[key]}")
            _at_most(out[key], MAX_SIZE, key, where)
        total = out["regions"] * out["populations_per_region"] * out["samples_per_population"]
        _at_most(total, MAX_SAMPLES, "regions x populations_per_region x samples_per_population", where, "samples")
        if out["population_split_time"] >= out["region_split_time"]:
            raise ImpbenchError(
                f"{where}: simulation.population_split_time must be below region_split_time"
            )
        return out
    samples = out.get("samples")
    if not samples:
        raise ImpbenchError(
            f"{where}: simulation.samples must name cohorts and their sizes, e.g. "
            "samples = { YRI = 100, CEU = 100 }"
        )
    for cohort, n in samples.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ImpbenchError(f"{where}: simulation.samples.{cohort} must be a positive integer, not {n!r}")
    _at_most(sum(samples.values()), MAX_SAMPLES, "samples", where, "samples in all")
    populations = out.setdefault("populations", {})
    for cohort, population in populations.items():
        if cohort not in samples or not isinstance(population, str):
            raise ImpbenchError(
                f"{where}: simulation.populations.{cohort} must map a cohort of "
                "simulation.samples to a population name"
            )
    if "admixture" in out:
        admixture = out["admixture"]
        for key, value in admixture.items():
            if key not in _ADMIXTURE_KEYS:
                raise ImpbenchError(
                    f"{where}: unknown key simulation.admixture.{key} "
                    f"(known: {', '.join(sorted(_ADMIXTURE_KEYS))})"
                )
            admixture[key] = _check_type(value, _ADMIXTURE_KEYS[key], f"admixture.{key}", where)
        for key in ("population", "time", "proportions"):
            if key not in admixture:
                raise ImpbenchError(f"{where}: simulation.admixture needs {key!r}")
        proportions = admixture["proportions"]
        for source, fraction in proportions.items():
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
                raise ImpbenchError(
                    f"{where}: simulation.admixture.proportions.{source} must be a number in (0, 1]"
                )
        total = sum(float(v) for v in proportions.values())
        if len(proportions) < 2 or abs(total - 1.0) > 1e-9:
            raise ImpbenchError(
                f"{where}: simulation.admixture.proportions must name two or more source "
                f"populations whose proportions sum to 1 (they sum to {total:g})"
            )
        admixture.setdefault("initial_size", 10_000.0)
    return out


def _at_most(value: float, bound: float, key: str, where: str, unit: str = "") -> None:
    if not value <= bound:  # nan too
        raise ImpbenchError(f"{where}: simulation.{key} is {value:,g}; at most {bound:,g}{' ' + unit if unit else ''}")


def _seeds(seed: int, n: int) -> list[int]:
    """``n`` independent seeds in 1..2**31-1 (msprime's range) derived from one card seed."""
    states = np.random.SeedSequence(seed).generate_state(n, dtype=np.uint32)
    return [int(s) % (2**31 - 1) + 1 for s in states]


@dataclass
class SimulatedDataset:
    """What a simulation spec produces.

    matrix : the phased biallelic genotypes; ``cohort`` and ``sex`` filled per sample.
    population : str (object), shape (n_samples,): the model population of each sample.
    n_sites : number of simulated sites; n_multiallelic : sites dropped for >2 alleles.
    recombination_rate, mutation_rate : the rates used (defaults resolved).
    """

    matrix: GenotypeMatrix
    population: np.ndarray
    n_sites: int
    n_multiallelic: int
    recombination_rate: float
    mutation_rate: float


def _balanced_sexes(cohort: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sexes assigned at random but balanced within each cohort: a random half of each cohort
    is female (a coin decides the odd one out), so every cohort x sex stratum holds about half
    of its cohort. Returns str (object) "male"/"female", shape (n_samples,)."""
    sex = np.empty(cohort.shape[0], dtype=object)
    both = np.array(["female", "male"], dtype=object)
    for label in dict.fromkeys(cohort):
        members = np.flatnonzero(cohort == label)
        labels = both[(np.arange(members.size) + rng.integers(2)) % 2]
        sex[members] = labels[rng.permutation(members.size)]
    return sex


def _haplotypes_to_codes(ts, progress=None, chunk: int = 4096):
    """Phased codes of the biallelic sites of a tree sequence, streamed per chunk of sites.

    Returns (codes uint8 (n_samples, n_kept), positions int64 (0-based), ref, alt, n_sites,
    n_multiallelic). Individuals are the consecutive haplotype pairs of ``ts.samples()``.
    """
    n_sites = ts.num_sites
    n_haps = ts.num_samples
    n_samples = n_haps // 2
    # A site's alleles are its ancestral state and its mutations' derived states (what
    # Variant.alleles lists), so the biallelic sites are counted without decoding genotypes
    # and the codes are allocated once at their final size.
    n_biallelic = sum(
        1
        for site in ts.sites()
        if len({site.ancestral_state, *(m.derived_state for m in site.mutations)}) == 2
    )
    codes = np.empty((n_samples, n_biallelic), dtype=np.uint8)
    positions = np.empty(n_biallelic, dtype=np.int64)
    ref = np.empty(n_biallelic, dtype=object)
    alt = np.empty(n_biallelic, dtype=object)
    block = np.empty((chunk, n_haps), dtype=np.int8)
    n_kept = 0
    n_block = 0
    block_start = 0

    def flush():
        nonlocal n_block, block_start
        if n_block:
            haps = block[:n_block]
            codes[:, block_start : block_start + n_block] = ALLELES_CODE[haps[:, 0::2], haps[:, 1::2]].T
            block_start += n_block
            n_block = 0

    for index, variant in enumerate(ts.variants(copy=False)):
        if variant.num_alleles != 2:
            continue
        block[n_block] = variant.genotypes
        positions[n_kept] = int(variant.site.position)
        ref[n_kept] = variant.alleles[0]
        alt[n_kept] = variant.alleles[1]
        n_kept += 1
        n_block += 1
        if n_block == chunk:
            flush()
            if progress is not None:
                progress("genotypes", index + 1, n_sites)
    flush()
    if progress is not None:
        progress("genotypes", n_sites, n_sites)
    assert n_kept == n_biallelic, (n_kept, n_biallelic)
    return codes, positions, ref, alt, n_sites, n_sites - n_kept


def simulate_genotypes(spec: dict, progress=None) -> SimulatedDataset:
    """Simulate the genotypes a (parsed or raw) ``[simulation]`` spec describes.

    Deterministic given the spec (its ``seed``). Multiallelic sites are dropped and counted;
    REF is the ancestral allele. Positions are 1-based, offset by ``start``. Sample IDs are
    ``<cohort><index>`` (``YRI0001``); sexes are random with the seed but balanced within each
    cohort. ``progress(stage, done, total)`` is called as work proceeds.
    """
    import msprime

    spec = parse_simulation(spec)
    if spec["model"] == REGION_TREE:
        demography, samples, cohort_of = region_tree_demography(spec)
    else:
        demography, samples, cohort_of = stdpopsim_demography(spec)
    recombination_rate = spec.get("recombination_rate")
    mutation_rate = spec.get("mutation_rate")
    if recombination_rate is None or mutation_rate is None:
        default_rec, default_mut = default_rates(spec["contig"])
        recombination_rate = recombination_rate or default_rec
        mutation_rate = mutation_rate or default_mut
    ancestry_seed, mutation_seed, sex_seed = _seeds(spec["seed"], 3)
    if progress is not None:
        progress("simulate", 0, 1)
    ts = msprime.sim_ancestry(
        samples=samples,
        demography=demography,
        sequence_length=spec["length"],
        recombination_rate=recombination_rate,
        random_seed=ancestry_seed,
    )
    ts = msprime.sim_mutations(ts, rate=mutation_rate, random_seed=mutation_seed)
    if progress is not None:
        progress("simulate", 1, 1)
    codes, positions, ref, alt, n_sites, n_multiallelic = _haplotypes_to_codes(ts, progress)
    # Individuals in sample order (msprime lists them population by population as requested).
    individual_population = ts.tables.nodes.population[ts.samples()[0::2]]
    population_names = np.array([p.name for p in demography.populations], dtype=object)
    population = population_names[individual_population]
    cohort = np.array([cohort_of[p] for p in population], dtype=object)
    # IDs name the cohort (YRI_0001), or the population where cohorts hold several (R1P2_0003).
    id_labels = population if spec["model"] == REGION_TREE else cohort
    counters: dict[str, int] = {}
    sample_ids = []
    for label in id_labels:
        counters[label] = counters.get(label, 0) + 1
        sample_ids.append(f"{label}_{counters[label]:04d}")
    positions = positions + spec["start"] + 1
    contig = spec["contig"]
    matrix = GenotypeMatrix(
        codes=codes,
        positions=positions,
        contig=contig,
        ref=ref,
        alt=alt,
        variant_ids=np.array([f"{contig}:{p}" for p in positions], dtype=object),
        sample_ids=np.array(sample_ids, dtype=object),
        cohort=cohort,
        sex=_balanced_sexes(cohort, np.random.default_rng(sex_seed)),
    )
    return SimulatedDataset(
        matrix=matrix,
        population=population,
        n_sites=n_sites,
        n_multiallelic=n_multiallelic,
        recombination_rate=float(recombination_rate),
        mutation_rate=float(mutation_rate),
    )


#: Sample sheet columns of a simulated dataset (what the simulated cards' sample_columns name).
SHEET_COLUMNS = {"id": "sample", "cohort": "cohort", "sex": "sex"}


def write_sample_sheet(data: SimulatedDataset, path) -> None:
    """Write the tab-separated sample sheet (``sample cohort sex population``) of ``data``,
    under a temporary name renamed when complete."""
    from pathlib import Path

    path = Path(path)
    matrix = data.matrix
    lines = ["\t".join(["sample", "cohort", "sex", "population"])]
    lines += [
        "\t".join(map(str, row))
        for row in zip(matrix.sample_ids, matrix.cohort, matrix.sex, data.population)
    ]
    atomic_write(path, "\n".join(lines) + "\n")


def simulate_dataset(spec: dict, name: str, out_dir, progress=None):
    """Simulate a dataset from a normalised spec (``parse_simulation``) and write
    ``<name>.vcf.gz`` (bgzipped, tabix-indexed when ``tabix`` is installed),
    ``<name>.samples.tsv`` and ``<name>.simulation.json`` into ``out_dir``.

    A finished simulation of the same spec there is reused. Files appear complete or not at
    all (written under temporary names, then renamed; the JSON, written last, marks a complete
    simulation). Returns ``(vcf_path, sheet_path)``.
    """
    import json
    from pathlib import Path

    out_dir = Path(out_dir)
    vcf_path = out_dir / f"{name}.vcf.gz"
    sheet_path = out_dir / f"{name}.samples.tsv"
    info_path = out_dir / f"{name}.simulation.json"
    if info_path.exists() and vcf_path.exists() and sheet_path.exists():
        try:
            if json.loads(info_path.read_text()).get("spec") == spec:
                return vcf_path, sheet_path
        except (OSError, ValueError):
            pass
    out_dir.mkdir(parents=True, exist_ok=True)
    info_path.unlink(missing_ok=True)  # written last: marks a complete simulation
    data = simulate_genotypes(spec, progress=progress)
    if progress is not None:
        progress("write VCF", 0, 1)
    write_vcf(data.matrix, vcf_path)
    if progress is not None:
        progress("write VCF", 1, 1)
    write_sample_sheet(data, sheet_path)
    info = {
        "dataset": name,
        "spec": spec,
        "simulation_version": SIMULATION_VERSION,
        "n_samples": int(data.matrix.n_samples),
        "n_sites": int(data.n_sites),
        "n_multiallelic_dropped": int(data.n_multiallelic),
        "n_variants": int(data.matrix.n_variants),
        "recombination_rate": data.recombination_rate,
        "mutation_rate": data.mutation_rate,
    }
    atomic_write(info_path, json.dumps(info, indent=2) + "\n")
    return vcf_path, sheet_path
