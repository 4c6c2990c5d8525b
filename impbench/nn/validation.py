"""Model selection on the imputation task: masked-cell minor-allele dosage R² and concordance
on the validation split under a fixed seeded mask.

The numpy part (masks, orientation, sufficient statistics, scores) imports no torch and is
checked against a slow reference in the tests. ``ValidationSet.statistics`` runs the model
through the real prediction path (``predict.predict_probs``: segments, forward, reassembly).

Scores are computed from per-rank sufficient statistics (float64 (8,)) so that under DDP each
rank scores its own slice of the validation samples and the sums are added over ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from impbench.nn.options import MASK_MODES
from impbench.genotypes import CODE_DOSAGE, CODE_DOSAGE_CLASS, HOM_ALT, HOM_REF, alt_allele_frequency, probs_calls, probs_dosage

#: Order of ``sufficient_statistics``.
STAT_NAMES = ("n", "sum_true", "sum_pred", "sum_true2", "sum_pred2", "sum_cross", "concordant", "n_calls")


def minor_is_ref(train_codes: np.ndarray) -> np.ndarray:
    """bool (n_variants,): True where the training panel's minor allele is REF (ALT frequency
    above 0.5); a variant with no calls keeps ALT as its minor allele."""
    freq = alt_allele_frequency(np.asarray(train_codes, dtype=np.uint8))
    return np.nan_to_num(freq, nan=0.0) > 0.5


def minor_dosage(alt_dosage: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Minor-allele dosage from ALT dosage (float (..., n_variants)) and ``minor_is_ref`` (bool
    (n_variants,)): ``2 - d`` where the minor allele is REF, else ``d``."""
    alt_dosage = np.asarray(alt_dosage, dtype=np.float64)
    return np.where(flip, 2.0 - alt_dosage, alt_dosage)


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


def sufficient_statistics(truth: np.ndarray, dosage: np.ndarray, calls: np.ndarray, mask: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Sums over the masked cells that give dosage R² and concordance (float64 (8,), in the
    order of ``STAT_NAMES``).

    truth : uint8 true codes (n, m); dosage : float imputed ALT dosage (n, m); calls : uint8
    imputed codes 1-4 (n, m); mask : bool (n, m), the scored cells; flip : ``minor_is_ref``.
    R² is taken on minor-allele dosage; concordance compares dosage classes (0, 1, 2) of the
    hard calls with the truth (orientation does not change it).
    """
    mask = np.asarray(mask, dtype=bool)
    true_d = minor_dosage(CODE_DOSAGE[truth].astype(np.float64), flip)[mask]
    pred_d = minor_dosage(np.asarray(dosage, dtype=np.float64), flip)[mask]
    concordant = CODE_DOSAGE_CLASS[truth][mask] == CODE_DOSAGE_CLASS[calls][mask]
    return np.array(
        [true_d.size, true_d.sum(), pred_d.sum(), (true_d**2).sum(), (pred_d**2).sum(), (true_d * pred_d).sum(), concordant.sum(), true_d.size],
        dtype=np.float64,
    )


def scores_from_statistics(stats: np.ndarray) -> tuple[float, float]:
    """(dosage R², concordance) from ``sufficient_statistics`` (summed over ranks); NaN where
    undefined (no masked cells, or no variance in truth or prediction)."""
    n, st, sp, stt, spp, stp, conc, n_calls = (float(v) for v in stats)
    if n < 2:
        return math.nan, (conc / n_calls if n_calls else math.nan)
    var_t = stt - st * st / n
    var_p = spp - sp * sp / n
    cov = stp - st * sp / n
    r2 = cov * cov / (var_t * var_p) if var_t > 1e-12 and var_p > 1e-12 else math.nan
    return float(r2), float(conc / n_calls)


@dataclass
class ValidationSet:
    """The validation split under a fixed mask, for scoring a model every epoch.

    truth : uint8 (n, m) true codes; masked : uint8 (n, m), ``truth`` with ``mask`` cells set
    to 0; mask : bool (n, m); flip : bool (m,) ``minor_is_ref`` of the training panel;
    positions : int64 (m,); features : float32 (m, k) or None (the per-variant channels).
    """

    truth: np.ndarray
    masked: np.ndarray
    mask: np.ndarray
    flip: np.ndarray
    positions: np.ndarray
    features: np.ndarray | None = None

    @classmethod
    def build(
        cls, val_codes: np.ndarray, train_codes: np.ndarray, positions: np.ndarray, rate: float, seed: int,
        mode: str = "cells", features: np.ndarray | None = None,
    ) -> "ValidationSet":
        truth = np.asarray(val_codes, dtype=np.uint8)
        mask = seeded_mask(truth, rate, seed, mode)
        masked = np.where(mask, np.uint8(0), truth).astype(np.uint8)
        return cls(truth, masked, mask, minor_is_ref(train_codes), np.asarray(positions, dtype=np.int64), features)

    def __len__(self) -> int:
        return int(self.truth.shape[0])

    @property
    def n_masked(self) -> int:
        return int(self.mask.sum())

    def statistics(
        self, model, rows: np.ndarray, *, length: int, overlap: int, use_position: bool, device, precision, batch_size: int,
        haplotypes: bool = False,
    ) -> np.ndarray:
        """``sufficient_statistics`` of ``model``'s imputation of the validation ``rows`` (int
        array; a rank's slice) through the real prediction path (``haplotypes``: a haplotype
        model, see ``predict.predict_probs``)."""
        from impbench.nn.predict import predict_probs

        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.zeros(len(STAT_NAMES), dtype=np.float64)
        probs = predict_probs(
            model, self.masked[rows], self.positions, length, overlap, use_position=use_position, device=device,
            precision=precision, batch_size=batch_size, features=self.features, haplotypes=haplotypes,
        )
        return sufficient_statistics(self.truth[rows], probs_dosage(probs), probs_calls(probs), self.mask[rows], self.flip)
