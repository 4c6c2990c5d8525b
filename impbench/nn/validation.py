"""Model selection on the imputation task, scored exactly as the benchmark scores it.

Every epoch the model imputes the validation split under a fixed seeded mask, through the real
prediction path (``predict.predict_probs``: segments, forward, reassembly) and the same
``Imputation.from_probs`` the imputers return (calls by dosage class, then phase: not argmax).
The imputation is scored by ``impbench.scoring.metrics.score`` (standard protocol, minor allele
of the training split), and the validation R² is the benchmark's overall masked-cell
minor-allele dosage R² (``impbench.scoring.pooled.Moments.r2``: 0 for a constant prediction),
the validation concordance its overall concordance.

Under DDP each rank scores its own slice of the validation samples; a rank's ``summary`` (the
pooled moments and the 4x4 truth x call table of its scored cells) is gathered from every rank
and pooled by ``scores_from_summaries`` (moments merge exactly, tables add).
"""

from __future__ import annotations

import numpy as np

from impbench.genotypes import HOM_ALT, HOM_REF, alt_allele_frequency
from impbench.imputers.base import Imputation
from impbench.nn.options import MASK_MODES
from impbench.scoring.metrics import score
from impbench.scoring.pooled import Moments, pooled_values

#: Length of a ``summary``: the six ``Moments`` fields (n, mean_x, mean_y, m2_x, m2_y, c_xy) of
#: the (true, imputed) minor-allele dosages, then the 16 counts of the minor-allele-oriented
#: truth code x call code table (row-major, codes 1-4).
SUMMARY_SIZE = 6 + 16


def seeded_mask(codes: np.ndarray, rate: float, seed: int, mode: str = "cells") -> np.ndarray:
    """A fixed mask over the calls (codes 1-4) of ``codes`` (uint8 (n, m)); bool (n, m).

    cells : each call hidden independently with probability ``rate``.
    variants : each variant hidden in every sample with probability ``rate`` (an array-like
        scheme: untyped variants are hidden in every target sample).
    """
    if mode not in MASK_MODES:
        raise ValueError(f"mask mode {mode!r}: must be one of {', '.join(MASK_MODES)}")
    codes = np.asarray(codes, dtype=np.uint8)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7A11D]))
    if mode == "cells":
        hide = rng.random(codes.shape) < rate
    else:
        hide = np.broadcast_to(rng.random(codes.shape[1]) < rate, codes.shape)
    return hide & (codes >= HOM_REF) & (codes <= HOM_ALT)


def summary(truth: np.ndarray, imputation: Imputation, mask: np.ndarray, train_alt_freq: np.ndarray) -> np.ndarray:
    """The pooled statistics of one imputation's scored cells, float64 (``SUMMARY_SIZE``,).

    truth : uint8 (n, m) true codes; imputation : the ``Imputation`` of the masked truth;
    mask : bool (n, m), the scored cells; train_alt_freq : float (m,) ALT frequency of the
    training rows (NaN allowed). Computed by ``impbench.scoring.metrics.score`` (standard
    protocol), so the pooled values are the benchmark's.
    """
    truth = np.asarray(truth, dtype=np.uint8)
    if truth.shape[0] == 0 or not np.asarray(mask).any():
        return np.concatenate([np.zeros(6), np.zeros(16)])
    stats = score(truth, imputation, mask, train_alt_freq=train_alt_freq, protocol="standard").sample_stats
    # every sample, genomic block and bin slot pooled (moments (S, [K,] bins+1), tables (..., 4, 4))
    pooled = Moments(*(np.asarray(a).reshape(-1) for a in stats.moments)).total(axis=0)
    table = np.asarray(stats.tables).reshape(-1, 4, 4).sum(axis=0).reshape(-1)
    return np.concatenate([np.array([float(a) for a in pooled]), table.astype(np.float64)])


def scores_from_summaries(summaries: np.ndarray) -> tuple[float, float]:
    """(dosage R², concordance) of the union of the cells behind ``summaries`` (float64
    (n_ranks, ``SUMMARY_SIZE``) or one summary): ``pooled.Moments.r2`` and the standard
    concordance; NaN where undefined (no masked cells, or a constant truth)."""
    rows = np.atleast_2d(np.asarray(summaries, dtype=np.float64))
    moments = Moments(*(rows[:, i] for i in range(6))).total(axis=0)
    table = np.rint(rows[:, 6:].sum(axis=0)).astype(np.int64).reshape(1, 4, 4)
    values = pooled_values("standard", table, Moments(*(np.atleast_1d(a) for a in moments)))
    return float(values["r2"][0]), float(values["concordance"][0])


class ValidationSet:
    """The validation split under a fixed mask, for scoring a model every epoch.

    truth : uint8 (n, m) true codes; masked : uint8 (n, m), ``truth`` with ``mask`` cells set
    to 0; mask : bool (n, m); train_alt_freq : float64 (m,) ALT frequency of the training rows
    (the benchmark's orientation); positions : int64 (m,); features : float32 (m, k) or None
    (the per-variant channels).
    """

    def __init__(self, truth, masked, mask, train_alt_freq, positions, features=None):
        self.truth = np.asarray(truth, dtype=np.uint8)
        self.masked = np.asarray(masked, dtype=np.uint8)
        self.mask = np.asarray(mask, dtype=bool)
        self.train_alt_freq = np.asarray(train_alt_freq, dtype=np.float64)
        self.positions = np.asarray(positions, dtype=np.int64)
        self.features = features

    @classmethod
    def build(
        cls, val_codes: np.ndarray, train_codes: np.ndarray, positions: np.ndarray, rate: float, seed: int,
        mode: str = "cells", features: np.ndarray | None = None,
    ) -> "ValidationSet":
        truth = np.asarray(val_codes, dtype=np.uint8)
        mask = seeded_mask(truth, rate, seed, mode)
        masked = np.where(mask, np.uint8(0), truth).astype(np.uint8)
        return cls(truth, masked, mask, alt_allele_frequency(np.asarray(train_codes, dtype=np.uint8)), positions, features)

    def __len__(self) -> int:
        return int(self.truth.shape[0])

    @property
    def n_masked(self) -> int:
        return int(self.mask.sum())

    def imputation(self, model, rows: np.ndarray, **predict) -> Imputation:
        """``model``'s ``Imputation`` of the masked validation ``rows`` (int array), as an
        imputer returns it; ``predict``: the keyword arguments of ``predict.predict_probs``
        after the layout (length, overlap, use_position, device, precision, batch_size,
        haplotypes)."""
        from impbench.nn.predict import imputation_from_probs, predict_probs

        rows = np.asarray(rows, dtype=np.int64)
        length, overlap = predict.pop("length"), predict.pop("overlap")
        probs = predict_probs(model, self.masked[rows], self.positions, length, overlap, features=self.features, **predict)
        return imputation_from_probs(self.masked[rows], probs)

    def summary(self, model, rows: np.ndarray, **predict) -> np.ndarray:
        """``summary`` of ``model``'s imputation of the validation ``rows`` (a rank's slice);
        float64 (``SUMMARY_SIZE``,), zeros for no rows."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.zeros(SUMMARY_SIZE, dtype=np.float64)
        return summary(self.truth[rows], self.imputation(model, rows, **predict), self.mask[rows], self.train_alt_freq)
