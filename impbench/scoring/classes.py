"""MAF classes: unions of MAF bins that the verdict ranks on (rare, low-frequency, common by
default), their parsing from ``--maf-classes`` and the bins each one unites."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from impbench.errors import ImpbenchError

#: The MAF classes of the report's verdict: (label, lo, hi), ``[lo, hi)`` (the last closed). The
#: runner writes rows with these ``bin`` labels to metrics.csv and pairs.csv besides the MAF bins,
#: pooling the bins' statistics, so the report ranks imputers per class with CIs.
DEFAULT_MAF_CLASSES: tuple[tuple[str, float, float], ...] = (
    ("rare (<1%)", 0.0, 0.01), ("low-frequency (1–5%)", 0.01, 0.05), ("common (≥5%)", 0.05, 0.5))


def parse_maf_classes(text: str) -> tuple[tuple[str, float, float], ...]:
    """``"0.01,0.05"`` -> classes [0, 0.01), [0.01, 0.05), [0.05, 0.5] labelled by their range."""
    try:
        cuts = sorted({float(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise ImpbenchError(f"--maf-classes {text!r}: give MAF cut points, e.g. 0.01,0.05") from None
    if not cuts or cuts[0] <= 0 or cuts[-1] >= 0.5:
        raise ImpbenchError(f"--maf-classes {text!r}: cut points must lie in (0, 0.5)")
    edges = [0.0, *cuts, 0.5]
    return tuple((f"{lo * 100:g}–{hi * 100:g}%", lo, hi) for lo, hi in zip(edges[:-1], edges[1:]))


def class_bins(bin_edges: Sequence[float], classes: Sequence[tuple[str, float, float]]) -> list[np.ndarray]:
    """For each class, the indices of the MAF bins it unites; ``ImpbenchError`` when a class
    boundary is not a bin edge."""
    edges = np.asarray(bin_edges, dtype=float)
    out = []
    for label, lo, hi in classes:
        if not (np.isclose(edges, lo).any() and np.isclose(edges, hi).any()):
            raise ImpbenchError(f"MAF class {label!r} ({lo:g}-{hi:g}) does not fall on the bin edges {', '.join(f'{e:g}' for e in edges)}")
        out.append(np.flatnonzero((edges[:-1] >= lo - 1e-12) & (edges[1:] <= hi + 1e-12)))
    return out
