"""Built-in baseline imputers (``allele-freq``, ``major``, ``knn``), registered through the plugin hook.

They are the floor every model must clear:

``allele-freq``  the frequency-only floor: each missing cell gets the Hardy-Weinberg
           probabilities ``(1-f)^2, (1-f)f, f(1-f), f^2`` of the variant's ALT frequency ``f``
           in the panel, so its dosage is exactly ``2 f`` and it knows nothing about the
           individual; the call is ``Imputation.from_probs``'s. Any score it reaches is what
           knowing allele frequencies alone is worth (pooled R² over many MAF bins rewards that;
           the per-bin scores do not).
``major``  the most frequent code of each variant in the panel (ties: the lower code).
``knn``    for each missing cell (sample t, variant v), the ``k`` panel samples nearest to t
           by Hamming distance over t's observed codes in the window ``v - window .. v + window``
           vote; the probabilities are the vote fractions over the four codes and the call is
           ``Imputation.from_probs``'s: the most voted dosage class (the two het codes summed;
           ties: the lower class), then the more voted phase (ties: 0|1). Equal distances are broken towards the
           lower panel index, so the result is exact and deterministic.

Both keep every observed code and answer with one-hot probabilities there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from impbench.errors import ImpbenchError, ImputerError
from impbench.genotypes import CALL_CODES, MISSING, N_CALL_CODES, GenotypeMatrix, alt_allele_frequency, is_call
from impbench.imputers.hookspecs import hookimpl
from impbench.imputers.base import Imputation, Imputer, RunContext, require_same_variants

#: Elements (target rows x panel rows x variants) held at once by ``knn``'s match counts.
KNN_CHUNK_ELEMENTS = 1 << 24


def _one_hot(codes: np.ndarray) -> np.ndarray:
    """float32 (..., 4) one-hot over the call codes 1-4; all zero for any other code."""
    return (np.asarray(codes)[..., None] == CALL_CODES).astype(np.float32)


def _finish(target: GenotypeMatrix, probs: np.ndarray, *, overwrite: bool = False) -> Imputation:
    """``Imputation.from_probs``: calls by dosage class then phase, observed codes kept
    (one-hot there). probs : float32 (n_samples, n_variants, 4), read where the target is missing;
    with ``overwrite`` it becomes the answer's probs (no copy)."""
    return Imputation.from_probs(probs, target.codes, overwrite=overwrite)


def _check_panel(name: str, panel: GenotypeMatrix) -> None:
    if panel.n_samples == 0:
        raise ImputerError(name, "the panel has no samples")
    if not is_call(panel.codes).all():
        raise ImputerError(name, "the panel holds missing or padding codes; it must be fully observed")


def major_codes(codes: np.ndarray, block_elements: int = KNN_CHUNK_ELEMENTS) -> np.ndarray:
    """uint8 (n_variants,): the most frequent code 1-4 of each variant (column) of ``codes``
    (uint8 (n_samples, n_variants)); ties to the lower code. Counted a block of variants at a
    time, so the temporaries stay within ``block_elements`` booleans."""
    n_samples, n_variants = codes.shape
    major = np.empty(n_variants, dtype=np.uint8)
    step = max(1, block_elements // max(1, n_samples))
    for start in range(0, n_variants, step):
        block = codes[:, start : start + step]
        counts = np.stack([np.count_nonzero(block == code, axis=0) for code in CALL_CODES], axis=1)
        major[start : start + step] = CALL_CODES[np.argmax(counts, axis=1)]
    return major


@dataclass
class MajorOptions:
    """``major`` has no settings."""


class MajorImputer(Imputer):
    """Fills each missing cell with the variant's most frequent code in the panel."""

    name: ClassVar[str] = "major"
    reference_free: ClassVar[bool] = True
    Options: ClassVar[type] = MajorOptions
    description: ClassVar[str] = "most frequent code per variant in the panel (baseline)"

    def fit(self, panel: GenotypeMatrix, val: GenotypeMatrix | None, ctx: RunContext) -> None:
        _check_panel(self.name, panel)
        self._panel = panel.take_samples(np.zeros(0, dtype=np.int64))  # the variants, for the check
        self._major_probs = _one_hot(major_codes(panel.codes))  # (n_variants, 4)

    def impute(self, target: GenotypeMatrix, ctx: RunContext) -> Imputation:
        require_same_variants(self.name, self._panel, target)
        # a read-only view (no memory); from_probs fills the answer's probs from it block by block
        probs = np.broadcast_to(self._major_probs, target.codes.shape + (N_CALL_CODES,))
        return _finish(target, probs)


@dataclass
class AlleleFreqOptions:
    """``allele-freq`` has no settings."""


def hardy_weinberg_probs(alt_freq: np.ndarray) -> np.ndarray:
    """float32 (n_variants, 4): probabilities of the codes 0|0, 0|1, 1|0, 1|1 under Hardy-Weinberg
    proportions for ALT frequencies ``alt_freq`` float (n_variants,) in [0, 1]."""
    f = np.asarray(alt_freq, dtype=np.float64)
    return np.stack([(1 - f) ** 2, (1 - f) * f, f * (1 - f), f ** 2], axis=1).astype(np.float32)


class AlleleFreqImputer(Imputer):
    """The frequency-only floor: dosage 2 x the panel's ALT frequency, probabilities from
    Hardy-Weinberg, the same answer for every sample."""

    name: ClassVar[str] = "allele-freq"
    reference_free: ClassVar[bool] = True
    Options: ClassVar[type] = AlleleFreqOptions
    description: ClassVar[str] = "dosage 2 x training allele frequency, Hardy-Weinberg probabilities (floor)"

    def fit(self, panel: GenotypeMatrix, val: GenotypeMatrix | None, ctx: RunContext) -> None:
        _check_panel(self.name, panel)
        self._panel = panel.take_variants(np.arange(panel.n_variants))  # for the variant check
        self._panel.codes = np.empty((0, panel.n_variants), dtype=np.uint8)
        self._probs = hardy_weinberg_probs(alt_allele_frequency(panel.codes))  # (n_variants, 4)

    def impute(self, target: GenotypeMatrix, ctx: RunContext) -> Imputation:
        require_same_variants(self.name, self._panel, target)
        probs = np.broadcast_to(self._probs, target.codes.shape + (N_CALL_CODES,))
        return _finish(target, probs)


@dataclass
class KnnOptions:
    """k : panel samples that vote; window : variants on each side of a cell that the distance
    is computed over (the window is cut at the ends of the contig)."""

    k: int = 5
    window: int = 30

    def check(self) -> None:
        """``ImpbenchError`` for an impossible value (called by ``make_options``)."""
        if self.k < 1:
            raise ImpbenchError(f"option knn.k must be at least 1, got {self.k}")
        if self.window < 0:
            raise ImpbenchError(f"option knn.window must be at least 0, got {self.window}")


def knn_vote_probs(panel_codes: np.ndarray, target_codes: np.ndarray, k: int, window: int,
                   chunk_elements: int = KNN_CHUNK_ELEMENTS) -> np.ndarray:
    """Vote fractions of the ``k`` nearest panel samples at every missing target cell.

    panel_codes : uint8 (n_panel, n_variants), codes 1-4.
    target_codes : uint8 (n_target, n_variants), 0 where missing.
    Returns float32 (n_target, n_variants, 4); rows of observed cells are zero. Besides that
    array, memory holds one chunk of match counts (``chunk_elements``) at a time.

    The number of matching observed codes over a window equals the window's sum of per-variant
    one-hot dot products; it is computed for all (target, panel) pairs of a block of variants at
    once from cumulative sums, so every cell gets its own exact window. Nearest = most matches
    (the window's observed count is the same for every panel sample), ties to the lower index.
    """
    n_panel, n_variants = panel_codes.shape
    n_target = target_codes.shape[0]
    k = int(min(k, n_panel))
    probs = np.zeros((n_target, n_variants, N_CALL_CODES), dtype=np.float32)
    if n_target == 0 or n_variants == 0:
        return probs
    block = min(n_variants, max(256, 4 * window))
    # counts fit int16 when a block's extended window does; keys fit int32 when small enough
    count_dtype = np.int16 if block + 2 * window < np.iinfo(np.int16).max else np.int32
    key_dtype = np.int32 if (2 * window + 2) * n_panel < np.iinfo(np.int32).max else np.int64
    # unique sort key per panel sample: more matches first, then the lower index
    tie_break = np.arange(n_panel - 1, -1, -1, dtype=key_dtype)
    rows_per_chunk = max(1, chunk_elements // max(1, n_panel * (block + 2 * window)))
    for start in range(0, n_variants, block):
        stop = min(n_variants, start + block)
        lo_ext, hi_ext = max(0, start - window), min(n_variants, stop + window)
        panel_ext = panel_codes[:, lo_ext:hi_ext]
        for row0 in range(0, n_target, rows_per_chunk):
            row1 = min(n_target, row0 + rows_per_chunk)
            missing = target_codes[row0:row1, start:stop] == MISSING
            cell_rows, cell_cols = np.nonzero(missing)
            if cell_rows.size == 0:
                continue
            target_ext = target_codes[row0:row1, lo_ext:hi_ext]
            matches = (target_ext[:, None, :] == panel_ext[None, :, :])  # missing never matches 1-4
            cumulative = np.zeros(matches.shape[:2] + (matches.shape[2] + 1,), dtype=count_dtype)
            np.cumsum(matches, axis=2, dtype=count_dtype, out=cumulative[:, :, 1:])
            variant = cell_cols + start
            lo = np.maximum(variant - window, 0) - lo_ext
            hi = np.minimum(variant + window + 1, n_variants) - lo_ext
            in_window = cumulative[cell_rows, :, hi] - cumulative[cell_rows, :, lo]  # (n_cells, n_panel)
            key = in_window.astype(key_dtype) * key_dtype(n_panel) + tie_break
            nearest = np.argpartition(key, n_panel - k, axis=1)[:, n_panel - k:]  # (n_cells, k)
            votes = panel_codes[nearest, variant[:, None]]  # (n_cells, k)
            counts = (votes[..., None] == CALL_CODES).sum(axis=1, dtype=np.int32)
            probs[cell_rows + row0, variant] = counts.astype(np.float32) / np.float32(k)
    return probs


class KnnImputer(Imputer):
    """k nearest panel samples by windowed Hamming distance vote at each missing cell."""

    name: ClassVar[str] = "knn"
    reference_free: ClassVar[bool] = True
    Options: ClassVar[type] = KnnOptions
    description: ClassVar[str] = "k nearest panel samples by windowed Hamming distance vote (baseline)"

    def fit(self, panel: GenotypeMatrix, val: GenotypeMatrix | None, ctx: RunContext) -> None:
        self.options.check()  # options built without make_options
        _check_panel(self.name, panel)
        self._panel = panel.with_codes(panel.codes.copy())  # a private copy of the codes

    def impute(self, target: GenotypeMatrix, ctx: RunContext) -> Imputation:
        require_same_variants(self.name, self._panel, target)
        probs = knn_vote_probs(self._panel.codes, target.codes, self.options.k, self.options.window)
        return _finish(target, probs, overwrite=True)  # the votes become the answer's probs


@hookimpl
def register_imputers(register):
    register(MajorImputer)
    register(KnnImputer)
    register(AlleleFreqImputer)
