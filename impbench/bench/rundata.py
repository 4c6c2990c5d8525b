"""The data one run uses, read once: training panel, validation and test splits, the typed
sites of an array scheme, and the masks every imputer shares.

Cohorts: ``--panel-cohort``/``--train-cohort`` select the training panel (and validation
split) from one cohort; ``--test-cohort`` scores one cohort's test samples. Masks are always
drawn on the *full* test split and then restricted to the scored rows, so a cohort run scores
exactly the cells the full run scores for that cohort.

Cohort MAF: when the scored test samples hold several cohorts (or ``--test-cohort`` picks one),
``cohort_alt_freq`` holds each cohort's training-split ALT frequency (that cohort's training
samples), by which its cohort rows are binned and oriented (``impbench.bench.unit``); the rows
over all scored samples (cohort "all") keep ``alt_freq``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from impbench.bench.masking import DEFAULT_LEVELS, achieved_rate, array_typed_variants, make_mask, mask_sha256, rate_warning, replicate_seed
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
    cohort_alt_freq : cohort -> float64 (n_variants,) ALT frequency of that cohort's training
        samples (the test samples' cohorts, when there are several or one was asked for), else None.
    """

    panel: GenotypeMatrix
    val: GenotypeMatrix | None
    truth: GenotypeMatrix
    full_test: np.ndarray
    rows: np.ndarray
    alt_freq: np.ndarray
    typed: np.ndarray | None = None
    typed_note: str | None = None
    cohort_alt_freq: dict[str, np.ndarray] | None = None

    def cohort_maf_summary(self) -> dict[str, dict[str, int]]:
        """Per cohort of ``cohort_alt_freq``: its training samples and the variants monomorphic
        in them (in no MAF bin of that cohort's rows)."""
        out = {}
        for cohort, freq in (self.cohort_alt_freq or {}).items():
            out[cohort] = {"n_train_samples": int(np.sum(self.panel.cohort == cohort)) if self.panel is not None else 0,
                           "n_monomorphic": int(np.sum((freq <= 0) | (freq >= 1) | np.isnan(freq)))}
        return out


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
    cohort_alt_freq = None
    test_cohorts = sorted({str(c) for c in truth.cohort})
    if len(test_cohorts) > 1 or test_cohort is not None:
        train_all = panel if train_cohort is None else store.read_split("train")
        cohort_alt_freq = {}
        for cohort in test_cohorts:
            own = train_all.cohort == cohort
            if own.any():  # a cohort without training samples keeps the pooled MAF
                cohort_alt_freq[cohort] = alt_allele_frequency(train_all.codes[own])
    return RunData(panel=panel, val=val, truth=truth, full_test=full.codes, rows=rows,
                   alt_freq=alt_allele_frequency(panel.codes), cohort_alt_freq=cohort_alt_freq)


def resolve_typed(data: RunData, store: Any, typed_sites: Path | None) -> None:
    """Set ``data.typed`` from a typed-sites file (VCF, or a contig/position table)."""
    if typed_sites is None:
        return
    sites = read_typed_sites(typed_sites)
    match = match_typed_sites(sites, str(store.contig), data.truth.positions)
    data.typed = match.typed
    data.typed_note = match.describe()


def array_levels(settings: Any, data: RunData) -> tuple[tuple[float, ...], str | None]:
    """The levels a run masks at and a note when they are derived: ``--levels``, except under
    ``--scheme array`` with typed sites (one level: the hidden fraction) or ``--typed-density D``
    (level ``1 - D``). Asked-for levels (``settings.levels_explicit``; None: levels other than
    the defaults) that differ from the derived level raise ``ImpbenchError`` before the run."""
    derived, source = None, None
    if settings.scheme == "array" and data.typed is not None:
        derived, source = round(float((~data.typed).mean()), 6), f"{int(data.typed.sum())} typed sites"
    elif settings.scheme == "array" and settings.typed_density is not None:
        derived, source = round(1.0 - float(settings.typed_density), 6), f"--typed-density {settings.typed_density:g}"
    if derived is None:
        return tuple(float(level) for level in settings.levels), None
    explicit = settings.levels_explicit
    if explicit is None:
        explicit = tuple(float(v) for v in settings.levels) != tuple(DEFAULT_LEVELS)
    asked = [float(v) for v in settings.levels]
    if explicit and any(abs(v - derived) > 5e-7 for v in asked):
        raise ImpbenchError(
            f"--levels {','.join(f'{v:g}' for v in asked)}: under --scheme array the {source} set the level "
            f"to {derived:g} (the untyped fraction); drop --levels or give --levels {derived:g}")
    return (derived,), f"level {derived:g} derived from the {source} (the untyped fraction of the variants)"


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
    typed = {} if mask.typed is None else {"n_typed_variants": int(np.sum(mask.typed))}
    return {"level": level, "replicate": replicate, "sha256": mask.sha256, "n_masked": mask.n_masked, **typed,
            "achieved_rate": round(achieved, 6), "carrier_rate": round(float(mask.rate["carrier_rate"]), 6),
            "warning": rate_warning(level, achieved)}
