"""The data one run uses, read once: training panel, validation and test splits, the typed
sites of an array scheme, and the masks every imputer shares.

Cohorts: ``--panel-cohort``/``--train-cohort`` select the training panel (and validation
split) from one cohort; ``--test-cohort`` scores one cohort's test samples. Masks are always
drawn on the *full* test split and then restricted to the scored rows, so a cohort run scores
exactly the cells the full run scores for that cohort.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from impbench.bench.masking import achieved_rate, array_typed_variants, make_mask, mask_sha256, rate_warning, replicate_seed
from impbench.errors import ImpbenchError
from impbench.genotypes import MISSING, GenotypeMatrix, alt_allele_frequency
from impbench.io.sites import match_typed_sites, read_typed_sites


@dataclass
class RunData:
    """The splits a run uses.

    panel, val : the training panel and validation split (of the training cohort when set).
    truth : the scored test samples (one cohort's rows of the full test split, or all).
    full_test : uint8 codes (n_all_test, n_variants) of the full test split (masks are drawn there).
    rows : int64 indices of ``truth``'s samples in the full test split.
    alt_freq : float64 (n_variants,), ALT frequency of the training panel's truth.
    typed : bool (n_variants,) of the array scheme's typed sites, or None (drawn per level).
    """

    panel: GenotypeMatrix
    val: GenotypeMatrix | None
    truth: GenotypeMatrix
    full_test: np.ndarray
    rows: np.ndarray
    alt_freq: np.ndarray
    typed: np.ndarray | None = None
    typed_note: str | None = None


def read_run_data(store: Any, train_cohort: str | None, test_cohort: str | None, *,
                  panel_flag: str = "--train-cohort") -> RunData:
    """Training, validation and test splits from a ``DatasetStore`` (cohort subsets when asked)."""
    cohorts = list(store.cohorts())
    for flag, cohort in ((panel_flag, train_cohort), ("--test-cohort", test_cohort)):
        if cohort is not None and cohort not in cohorts:
            raise ImpbenchError(f"{flag} {cohort!r}: dataset {store.name} has cohorts {', '.join(map(str, cohorts))}")
    panel = store.read_split("train", cohort=train_cohort)
    val = store.read_split("val", cohort=train_cohort)
    full = store.read_split("test")
    rows = np.arange(full.n_samples) if test_cohort is None else np.flatnonzero(full.cohort == test_cohort)
    truth = full if test_cohort is None else full.take_samples(rows)
    for split, matrix, cohort in (("train", panel, train_cohort), ("test", truth, test_cohort)):
        if matrix.n_samples == 0:
            raise ImpbenchError(f"dataset {store.name}: the {split} split has no samples"
                                + (f" of cohort {cohort!r}" if cohort else ""))
    if val is not None and val.n_samples == 0:
        val = None
    return RunData(panel=panel, val=val, truth=truth, full_test=full.codes, rows=rows,
                   alt_freq=alt_allele_frequency(panel.codes))


def resolve_typed(data: RunData, store: Any, typed_sites: Path | None) -> None:
    """Set ``data.typed`` from a typed-sites file (VCF, or a contig/position table)."""
    if typed_sites is None:
        return
    sites = read_typed_sites(typed_sites)
    match = match_typed_sites(sites, str(store.contig), data.truth.positions)
    data.typed = match.typed
    data.typed_note = match.describe()


def array_levels(settings: Any, data: RunData) -> tuple[float, ...]:
    """The levels a run masks at: ``--levels``, except under ``--scheme array`` with typed
    sites (one level: the hidden fraction) or ``--typed-density D`` (level ``1 - D``)."""
    if settings.scheme == "array" and data.typed is not None:
        return (round(float((~data.typed).mean()), 6),)
    if settings.scheme == "array" and settings.typed_density is not None:
        return (round(1.0 - float(settings.typed_density), 6),)
    return tuple(float(level) for level in settings.levels)


@dataclass
class Mask:
    """One (level, replicate) mask of the scored rows: ``cells`` bool (n_scored, n_variants),
    ``sha256`` of the full test split's mask (the same in a cohort run), ``n_masked`` scored
    cells, ``typed`` the array scheme's typed sites (else None), and the achieved rate."""

    cells: np.ndarray
    sha256: str
    n_masked: int
    typed: np.ndarray | None
    rate: dict


def build_mask(data: RunData, dataset_hash: str, level: float, replicate: int, scheme: str) -> Mask:
    """The shared mask of a unit (seeded from the dataset hash, level and replicate)."""
    seed = replicate_seed(dataset_hash, level, replicate)
    typed = None
    if scheme == "array":
        typed = array_typed_variants(data.full_test.shape[1], level, seed, data.typed)
    full = np.asarray(make_mask(data.full_test, level, seed, scheme, typed=typed), dtype=bool)
    cells = full[data.rows]
    rate = achieved_rate(data.truth.codes, cells)
    if int(cells.sum()) == 0:
        raise ImpbenchError(
            f"masking level {level:g} ({scheme}) masks no cell of the {data.truth.n_samples} test samples; "
            "use a larger level"
        )
    return Mask(cells, mask_sha256(full), int(cells.sum()), typed, rate)


def masked_target(truth: GenotypeMatrix, mask: np.ndarray) -> GenotypeMatrix:
    """``truth`` with the masked cells set to missing (code 0)."""
    codes = truth.codes.copy()
    codes[mask] = MISSING
    return truth.with_codes(codes)


def mask_entry(level: float, replicate: int, mask: Mask) -> dict:
    """The manifest's record of a mask."""
    achieved = float(mask.rate["rate"])
    return {"level": level, "replicate": replicate, "sha256": mask.sha256, "n_masked": mask.n_masked,
            "achieved_rate": round(achieved, 6), "carrier_rate": round(float(mask.rate["carrier_rate"]), 6),
            "warning": rate_warning(level, achieved)}
