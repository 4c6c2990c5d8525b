"""Demographic models of the embedded simulations (msprime/stdpopsim, imported lazily).

Each builder returns ``(demography, samples, cohort_of)``: the msprime ``Demography``,
``{population: n_samples}`` and ``{population: cohort}``.
"""

from __future__ import annotations

from impbench.errors import ImpbenchError

#: The spec's model name for populations nested in regions (``region_tree_demography``).
REGION_TREE = "region-tree"


def stdpopsim_demography(spec: dict):
    """msprime demography, samples {population: n} and cohort per population for a stdpopsim
    HomSap model, plus the optional admixture pulse of the spec."""
    import copy
    import warnings

    import stdpopsim

    species = stdpopsim.get_species("HomSap")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = species.get_demographic_model(spec["model"])
    except ValueError as exc:
        known = ", ".join(sorted(m.id for m in species.demographic_models))
        raise ImpbenchError(
            f"simulation model {spec['model']!r} is neither {REGION_TREE!r} nor a stdpopsim "
            f"HomSap model ({known})"
        ) from exc
    demography = copy.deepcopy(model.model)
    admixture = spec.get("admixture")
    if admixture:
        existing = {p.name for p in demography.populations}
        unknown = [p for p in admixture["proportions"] if p not in existing]
        if admixture["population"] in existing or unknown:
            raise ImpbenchError(
                f"simulation.admixture: population {admixture['population']!r} must be new and "
                f"its sources populations of {spec['model']!r} ({', '.join(sorted(existing))})"
            )
        demography.add_population(
            name=admixture["population"], initial_size=admixture["initial_size"]
        )
        demography.add_admixture(
            time=admixture["time"],
            derived=admixture["population"],
            ancestral=list(admixture["proportions"]),
            proportions=[float(p) for p in admixture["proportions"].values()],
        )
        demography.sort_events()
    names = {p.name for p in demography.populations}
    samples: dict[str, int] = {}
    cohort_of: dict[str, str] = {}
    for cohort, n in spec["samples"].items():
        population = spec["populations"].get(cohort, cohort)
        if population not in names:
            raise ImpbenchError(
                f"simulation: population {population!r} (cohort {cohort!r}) is not in model "
                f"{spec['model']!r} (populations: {', '.join(sorted(names))})"
            )
        samples[population] = samples.get(population, 0) + n
        cohort_of[population] = cohort
    if len(cohort_of) != len(spec["samples"]):
        raise ImpbenchError("simulation: two cohorts map to the same population")
    return demography, samples, cohort_of


def region_tree_demography(spec: dict):
    """Populations nested in regions: each region splits from one ancestral population at
    ``region_split_time``, its populations from the region at ``population_split_time``."""
    import msprime

    demography = msprime.Demography()
    n_regions = spec["regions"]
    n_pops = spec["populations_per_region"]
    region_names = [f"R{r + 1}" for r in range(n_regions)]
    samples: dict[str, int] = {}
    cohort_of: dict[str, str] = {}
    for region in region_names:
        for p in range(n_pops):
            name = f"{region}P{p + 1}"
            demography.add_population(name=name, initial_size=spec["population_size"])
            samples[name] = spec["samples_per_population"]
            cohort_of[name] = region
    for region in region_names:
        demography.add_population(name=region, initial_size=spec["population_size"])
    demography.add_population(name="ANC", initial_size=spec["ancestral_size"])
    for region in region_names:
        demography.add_population_split(
            time=spec["population_split_time"],
            derived=[f"{region}P{p + 1}" for p in range(n_pops)],
            ancestral=region,
        )
    demography.add_population_split(
        time=spec["region_split_time"], derived=region_names, ancestral="ANC"
    )
    return demography, samples, cohort_of


def default_rates(contig: str) -> tuple[float, float]:
    """Mean recombination rate and mutation rate of the stdpopsim HomSap chromosome named like
    ``contig`` ("22" or "chr22"); works offline (no genetic map is downloaded)."""
    import stdpopsim

    name = contig if contig.startswith("chr") else f"chr{contig}"
    try:
        chrom = stdpopsim.get_species("HomSap").get_contig(name, genetic_map=None)
    except ValueError as exc:
        raise ImpbenchError(
            f"simulation: contig {contig!r} is not a human chromosome; set "
            "simulation.recombination_rate and simulation.mutation_rate"
        ) from exc
    return float(chrom.recombination_map.mean_rate), float(chrom.mutation_rate)
