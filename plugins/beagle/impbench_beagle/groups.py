"""Soft dosages for sporadic masking: target samples grouped by their masked markers.

Beagle 5.4 fills a missing genotype at a marker that is in the target VCF while it phases, and
writes a hard call there (no GP; a whole-number DS). Only markers absent from the target VCF
are imputed from the reference panel, with DS, AP1/AP2 and GP. So to get probabilities for
every masked cell, each sample must be imputed from a target VCF that leaves out exactly the
markers masked in that sample: its own observed markers all stay in (nothing it knows is
withheld), the markers it lacks are imputed as untyped markers of the panel.

Samples whose sets of masked markers are identical can share one target VCF and one Beagle
run (a group); samples whose sets differ cannot, without withholding some observed genotypes
of one of them. Under the ``array`` scheme every test sample has the same masked markers: one
group, one run. Under ``uniform`` or ``per-variant`` masking two samples almost never have the
same set (two samples with 6,000 markers at 5% share about 15 masked markers, and differ at
about 570), so every sample is a group of its own. A marker masked in every sample of a group
is still imputed: the reference panel holds every marker.

``hard`` mode (``beagle.sporadic=hard``) is the one-run alternative: all samples in one
target VCF holding every marker observed in at least one sample (``hard_group``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from impbench.genotypes import GenotypeMatrix, is_call

from .output import BeagleOutput


@dataclass(frozen=True)
class SampleGroup:
    """Target samples imputed by one Beagle run.

    index : the group's number (0, 1, ...; names its files). samples : int64 (n,), the target's
    sample indices, ascending. written : bool (n_variants,), the variants written to its target
    VCF (all others are imputed from the panel).
    """

    index: int
    samples: np.ndarray
    written: np.ndarray


def plan_sample_groups(codes: np.ndarray) -> list[SampleGroup]:
    """Groups of samples with identical masked markers, ordered by their first sample.

    codes : uint8 (n_samples, n_variants), 0 (or any non-call) where masked. Each group's
    ``written`` variants are those its samples observe. Every sample is in exactly one group.
    """
    masked = ~is_call(np.asarray(codes))
    if masked.shape[0] == 0:
        return []
    packed = np.packbits(masked, axis=1)  # one row of bytes per sample's set of masked markers
    _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    order = np.argsort(first, kind="stable")  # groups in order of their first sample
    groups = []
    for number, unique_row in enumerate(order.tolist()):
        samples = np.flatnonzero(inverse == unique_row).astype(np.int64)
        groups.append(SampleGroup(number, samples, ~masked[samples[0]]))
    return groups


def hard_group(codes: np.ndarray) -> SampleGroup:
    """Every sample in one group; written: the variants observed in at least one sample (those
    masked in every sample are imputed from the panel, the sporadic cells filled as hard calls)."""
    codes = np.asarray(codes)
    return SampleGroup(0, np.arange(codes.shape[0], dtype=np.int64), is_call(codes).any(axis=0))


def merge_group_outputs(target: GenotypeMatrix, parts: list[tuple[SampleGroup, BeagleOutput]]) -> BeagleOutput:
    """One ``BeagleOutput`` on the whole target from each group's output (read against
    ``target.take_samples(group.samples)``, all variants).

    Per-sample fields are laid onto the group's rows; ``allele_probs`` / ``genotype_probs`` hold
    NaN in the rows of groups whose record had none. A variant is covered when every group's
    output covered it (the panel decides coverage, so the groups agree unless a record repeats).
    ``imputed``: flagged ``IMP`` in at least one group. ``dr2``: the group's DR2 when there is
    one group; NaN with several (each group's DR2 describes its own few samples; the imputer
    recomputes the quality over all masked cells).
    """
    n_samples, n_variants = target.codes.shape
    covered = np.ones(n_variants, dtype=bool)
    calls = np.zeros((n_samples, n_variants), dtype=np.uint8)
    ds = np.full((n_samples, n_variants), np.nan, dtype=np.float32)
    imputed = np.zeros(n_variants, dtype=bool)
    allele_probs: dict[int, np.ndarray] = {}
    genotype_probs: dict[int, np.ndarray] = {}
    any_ds = False
    n_records = n_ignored = n_duplicated = 0
    for group, out in parts:
        rows = group.samples
        covered &= out.covered
        calls[rows] = out.calls
        if out.ds is not None:
            any_ds = True
            ds[rows] = out.ds
        if out.imputed is not None:
            imputed |= out.imputed
        for source, sink, width in ((out.allele_probs, allele_probs, 2), (out.genotype_probs, genotype_probs, 3)):
            for j, values in source.items():
                if j not in sink:
                    sink[j] = np.full((n_samples, width), np.nan, dtype=np.float32)
                sink[j][rows] = values
        n_records += out.n_records
        n_ignored += out.n_ignored
        n_duplicated = max(n_duplicated, out.n_duplicated)
    for sink in (allele_probs, genotype_probs):
        for j in [j for j in sink if not covered[j]]:
            del sink[j]
    if len(parts) == 1 and parts[0][1].dr2 is not None:
        dr2 = parts[0][1].dr2.copy()
    else:
        dr2 = np.full(n_variants, np.nan, dtype=np.float32)
    dr2[~covered] = np.nan
    return BeagleOutput(covered=covered, calls=calls, ds=ds if any_ds else None, allele_probs=allele_probs,
                        genotype_probs=genotype_probs, dr2=dr2, imputed=imputed & covered, n_records=n_records,
                        n_ignored=n_ignored, n_duplicated=n_duplicated)
