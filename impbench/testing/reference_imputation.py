"""The slow reference of ``Imputation.from_probs``: the whole (n, m, 4) array converted at once,
with whole-array temporaries (several times the answer's size). Tests and
``benchmarks/memory.py`` compare the blocked conversion with it; nothing else should call it."""

from __future__ import annotations

import numpy as np

from impbench.genotypes import HET_01, HET_10, HOM_ALT, HOM_REF, is_call
from impbench.imputers.base import PROBABILITY_TIE, Imputation


def reference_from_probs(probs: np.ndarray, target_codes: np.ndarray, covered: np.ndarray | None = None) -> Imputation:
    """``Imputation.from_probs`` in one unblocked pass (the definition it must equal bit for bit).

    probs : float (n_samples, n_variants, 4); target_codes : uint8 (n_samples, n_variants).
    """
    target_codes = np.asarray(target_codes)
    probs = np.asarray(probs)
    observed = is_call(target_codes)
    one_hot = np.eye(4, dtype=np.float32)[np.clip(target_codes.astype(np.int64) - 1, 0, 3)]
    probs = np.where(observed[..., None], one_hot, probs).astype(np.float32)
    class_probs = np.stack([probs[..., 0], probs[..., 1] + probs[..., 2], probs[..., 3]], axis=-1)
    best = class_probs.max(axis=-1, keepdims=True)
    dosage_class = np.argmax(class_probs >= best - PROBABILITY_TIE, axis=-1)
    het_code = np.where(probs[..., 2] > probs[..., 1] + PROBABILITY_TIE, HET_10, HET_01)
    calls = np.choose(dosage_class, [np.uint8(HOM_REF), het_code, np.uint8(HOM_ALT)]).astype(np.uint8)
    calls = np.where(observed, target_codes, calls).astype(np.uint8)
    # probs @ (0, 1, 1, 2) in the order BLAS sums a whole array (the result of earlier versions)
    p0, p1, p2, p3 = (probs[..., i] for i in range(4))
    dosage = np.clip((p0 * np.float32(0) + p1) + (p2 + p3 * np.float32(2)), 0.0, 2.0).astype(np.float32)
    return Imputation(calls=calls, dosage=dosage, probs=probs, covered=covered)
