"""Simulated genotypes (msprime / stdpopsim) for the embedded datasets and for tests.

``simulate_matrix`` is the quick in-memory generator that tests and plugin test suites use;
the embedded dataset cards (``sim-1kgp``, ``sim-los``, ``sim-sgdp``) write a bgzipped VCF and a
sample sheet that then go through the same ingest path as real data.
"""

from __future__ import annotations

import numpy as np

from .genotypes import GenotypeMatrix, codes_from_alleles


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
