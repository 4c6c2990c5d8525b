"""Batched prediction over segments, reassembly through ``impbench.imputers.segments``, and the
``Imputation`` built from the probabilities (observed cells kept)."""

from __future__ import annotations

import numpy as np
import torch

from impbench.imputers import segments as seg
from impbench.genotypes import HOM_ALT, HOM_REF
from impbench.imputers.base import Imputation
from impbench.nn.data import SegmentData, encode, forward, genotype_probs_from_haplotypes, haplotype_codes
from impbench.nn.runtime import Precision

#: Upper bound on the per-segment probabilities held at once (bytes); samples are processed in
#: chunks below it.
CHUNK_BYTES = 256 * 2**20


def call_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Probabilities over the four call codes from logits over all six codes.

    logits : float, shape (B, 6, L). Returns float32 (B, L, 4): a softmax over the logits of
    codes 1-4 only (code 0, missing, and code 5, padding, are never predicted).
    """
    return torch.softmax(logits[:, HOM_REF : HOM_ALT + 1].float(), dim=1).transpose(1, 2)


@torch.inference_mode()
def predict_probs(
    model: torch.nn.Module,
    codes: np.ndarray,
    positions: np.ndarray,
    length: int,
    overlap: int,
    *,
    use_position: bool,
    device: torch.device,
    precision: Precision,
    batch_size: int,
    features: np.ndarray | None = None,
    progress=None,
    haplotypes: bool = False,
) -> np.ndarray:
    """Probabilities over the call codes for every cell.

    codes : uint8, shape (n_samples, n_variants), 0 where missing. positions : int64 (n_variants,).
    features : float32 (n_variants, k) or None: the per-variant channels the model was trained with.
    Returns float32, shape (n_samples, n_variants, 4): for each cell, the prediction of the
    overlapping segment most confident about it (``segments.reassemble``).
    ``progress(done, total)`` is called with samples done, when given.
    haplotypes : the model was trained on haplotypes (``NNOptions.haplotypes``): each sample's
    two haplotypes are imputed as rows of their own and combined
    (``data.genotype_probs_from_haplotypes``).
    """
    model.eval()
    codes = np.asarray(codes, dtype=np.uint8)
    n_samples, n_variants = codes.shape
    n_seg = seg.n_segments(n_variants, length, overlap)
    out = np.empty((n_samples, n_variants, 4), dtype=np.float32)
    per_sample = n_seg * length * 4 * 4
    chunk = max(1, CHUNK_BYTES // per_sample)
    if haplotypes:
        # A chunk of samples at a time: its 2 x chunk haplotype rows, then their product.
        chunk = max(1, chunk // 2)
        for first in range(0, n_samples, chunk):
            block = codes[first : first + chunk]
            hap_probs = predict_probs(
                model, haplotype_codes(block), positions, length, overlap, use_position=use_position, device=device,
                precision=precision, batch_size=batch_size, features=features,
            )
            out[first : first + len(block)] = genotype_probs_from_haplotypes(hap_probs)
            if progress is not None:
                progress(first + len(block), n_samples)
        return out
    for first in range(0, n_samples, chunk):
        block = SegmentData(codes[first : first + chunk], positions, length, overlap, device, features)
        seg_probs = np.empty((len(block), length, 4), dtype=np.float32)
        for start in range(0, len(block), batch_size):
            index = np.arange(start, min(start + batch_size, len(block)))
            batch_codes, position, batch_features = block.batch(index)
            x = encode(batch_codes, position if use_position else None, batch_features)
            with precision.autocast():
                logits = forward(model, x, torch.from_numpy(index % n_seg).to(device))
            seg_probs[start : start + len(index)] = call_probabilities(logits).cpu().numpy()
        n_block = block.n_samples
        out[first : first + n_block] = seg.reassemble(seg_probs.reshape(n_block, n_seg, length, 4), n_variants, length, overlap)
        if progress is not None:
            progress(first + n_block, n_samples)
    return out


def imputation_from_probs(observed: np.ndarray, probs: np.ndarray) -> Imputation:
    """The ``Imputation`` of a target: ``Imputation.from_probs`` (calls by dosage class, then
    phase; observed cells kept, one-hot there).

    observed : uint8, shape (n, m), 0 where missing. probs : float32 (n, m, 4) over the call codes.
    """
    return Imputation.from_probs(probs, np.asarray(observed, dtype=np.uint8))
