"""Beagle by region: overlapping windows along the chromosome, one Beagle call each, merged.

The target's span [first, last] position is cut into cores of ``chunk_bp``; each window is its
core widened by ``overlap_bp`` on both sides (clipped to the span when given to Beagle, as
``chrom=contig:start-end``). Cores that hold no variant are dropped. Each variant is taken from
the window where it lies furthest from an edge (distances to the unclipped edges: the ends of
the chromosome are not edges that cost Beagle context); with ``overlap_bp < chunk_bp / 2`` that
is the window of its core.

The windows run in parallel threads (``parallel.run_parallel``), each waiting on its own Beagle
process (``run_beagle``, which kills the process group on a time-out or error); when one fails
or the caller is interrupted the others are stopped through a shared ``threading.Event``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from impbench.genotypes import GenotypeMatrix

from .output import BeagleOutput


@dataclass(frozen=True)
class Window:
    """One region: ``start``..``end`` (1-based, inclusive, clipped to the target's span) is what
    Beagle imputes; ``edge_start``..``edge_end`` the unclipped window used for the distance rule;
    ``variants`` int64 (n,) the target's variant indices inside ``start``..``end``; ``owned``
    int64 (m,) those taken from this window."""

    index: int
    start: int
    end: int
    edge_start: int
    edge_end: int
    variants: np.ndarray
    owned: np.ndarray


def plan_windows(positions: np.ndarray, chunk_bp: int, overlap_bp: int) -> list[Window]:
    """Windows over sorted ``positions`` (int (n_variants,)); every variant is owned by exactly one."""
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size == 0:
        return []
    if chunk_bp <= 0 or overlap_bp < 0:
        raise ValueError("chunk_bp must be > 0 and overlap_bp >= 0")
    first, last = int(positions.min()), int(positions.max())
    core_of = (positions - first) // chunk_bp
    kept = np.unique(core_of)  # cores holding at least one variant
    edge_start = first + kept * chunk_bp - overlap_bp
    edge_end = first + (kept + 1) * chunk_bp - 1 + overlap_bp
    # each variant goes to the window where its distance to the nearer (unclipped) edge is largest
    best = np.full(positions.size, -1, dtype=np.int64)
    best_distance = np.full(positions.size, -1, dtype=np.int64)
    for w in range(kept.size):
        distance = np.minimum(positions - edge_start[w], edge_end[w] - positions)
        better = distance > best_distance  # ties go to the earlier window
        best[better] = w
        best_distance[better] = distance[better]
    windows = []
    for w in range(kept.size):
        start, end = max(first, int(edge_start[w])), min(last, int(edge_end[w]))
        inside = np.flatnonzero((positions >= start) & (positions <= end))
        windows.append(Window(w, start, end, int(edge_start[w]), int(edge_end[w]), inside, np.flatnonzero(best == w)))
    return windows


def merge_outputs(target: GenotypeMatrix, parts: list[tuple[Window, BeagleOutput]]) -> BeagleOutput:
    """One ``BeagleOutput`` on the whole target from each window's output on its own variants
    (``parts``: (window, output read against ``target.take_variants(window.variants)``))."""
    n_samples, n_variants = target.codes.shape
    covered = np.zeros(n_variants, dtype=bool)
    calls = np.zeros((n_samples, n_variants), dtype=np.uint8)
    ds = np.full((n_samples, n_variants), np.nan, dtype=np.float32)
    dr2 = np.full(n_variants, np.nan, dtype=np.float32)
    imputed = np.zeros(n_variants, dtype=bool)
    allele_probs: dict[int, np.ndarray] = {}
    genotype_probs: dict[int, np.ndarray] = {}
    any_ds = False
    n_records = n_ignored = n_duplicated = 0
    for window, out in parts:
        local = np.searchsorted(window.variants, window.owned)  # owned variants' columns in this window
        glob = window.owned
        covered[glob] = out.covered[local]
        calls[:, glob] = out.calls[:, local]
        if out.ds is not None:
            any_ds = True
            ds[:, glob] = out.ds[:, local]
        if out.dr2 is not None:
            dr2[glob] = out.dr2[local]
        if out.imputed is not None:
            imputed[glob] = out.imputed[local]
        owned_local = set(local.tolist())
        for source, sink in ((out.allele_probs, allele_probs), (out.genotype_probs, genotype_probs)):
            for j, values in source.items():
                if j in owned_local:
                    sink[int(window.variants[j])] = values
        n_records += out.n_records
        n_ignored += out.n_ignored
        n_duplicated += out.n_duplicated
    return BeagleOutput(covered=covered, calls=calls, ds=ds if any_ds else None, allele_probs=allele_probs,
                        genotype_probs=genotype_probs, dr2=dr2, imputed=imputed, n_records=n_records,
                        n_ignored=n_ignored, n_duplicated=n_duplicated)
