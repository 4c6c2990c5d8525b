"""Segmentation of genotype sequences and reassembly of predictions (shared by neural plugins).

Length ``L``, overlap ``O``, stride ``L - O``; ``n_seg = max(1, ceil((N - O) / (L - O)))``;
the tail is padded with code 5 (PAD). API (implemented by the evaluation-core work):

- ``n_segments(n_variants, length, overlap) -> int``
- ``segment_starts(n_variants, length, overlap) -> int64 (n_seg,)``
- ``segment_codes(codes, length, overlap) -> uint8 (n_samples, n_seg, length)``
- ``positional_channel(positions, length, overlap) -> float32 (n_seg, length)``: positions
  min-max normalised within each segment, padding excluded (0 there), constant segment -> 0.
- ``reassemble(probs, n_variants, length, overlap) -> float32 (n_samples, n_variants, C)``:
  for each cell, the probability vector of the overlapping segment whose maximum probability
  is highest. ``probs``: float32 (n_samples, n_seg, length, C).
- ``keep_observed(observed, calls) -> uint8``: ``calls`` with every non-zero observed code kept.

Also:

- ``segment_index(n_variants, length, overlap) -> (int64 (n_seg, length), bool (n_seg, length))``:
  the variant index behind every segment position and whether it is a real variant (False in
  the padded tail).
- ``keep_observed_probs(observed, probs) -> float32``: probabilities over the four call codes
  with observed cells replaced by a one-hot vector of their code (so that calls, dosage and
  probabilities of an ``Imputation`` agree at observed cells).

Coverage: segment ``s`` covers variants ``s*(L-O) .. s*(L-O)+L-1``. Since
``(n_seg - 1)(L - O) + L = n_seg (L - O) + O >= N``, every variant lies in at least one
segment; a dataset with ``N <= L`` is one segment, padded when ``N < L``. A variant lies in up
to ``ceil(L / (L - O))`` segments (2 for the usual ``O <= L/2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import PAD, is_call

__all__ = [
    "n_segments",
    "segment_starts",
    "segment_index",
    "segment_codes",
    "positional_channel",
    "reassemble",
    "keep_observed",
    "keep_observed_probs",
]


@dataclass(frozen=True)
class SegmentLayout:
    """How a dataset is cut into segments: ``length`` variants each, consecutive segments
    sharing ``overlap`` variants (stride ``length - overlap``). A dataset card's setting,
    handed to imputers as ``RunContext.segment_layout``."""

    length: int = 128
    overlap: int = 16

    def __post_init__(self) -> None:
        if self.length < 1 or not 0 <= self.overlap < self.length:
            raise ImpbenchError(f"segment layout: need length >= 1 and 0 <= overlap < length (got {self.length}, {self.overlap})")


def _check(n_variants: int, length: int, overlap: int) -> tuple[int, int, int]:
    """Validate the segmentation settings; ``ImpbenchError`` (a user's card/option mistake) if wrong."""
    n_variants, length, overlap = int(n_variants), int(length), int(overlap)
    if n_variants < 1:
        raise ImpbenchError(f"segmentation needs at least one variant, got n_variants={n_variants}")
    if not (length > overlap >= 0):
        raise ImpbenchError(f"segment length and overlap must satisfy length > overlap >= 0, got length={length}, overlap={overlap}")
    return n_variants, length, overlap


def n_segments(n_variants: int, length: int, overlap: int) -> int:
    """Number of segments: ``max(1, ceil((N - O) / (L - O)))``."""
    n_variants, length, overlap = _check(n_variants, length, overlap)
    stride = length - overlap
    return max(1, -(-(n_variants - overlap) // stride))


def segment_starts(n_variants: int, length: int, overlap: int) -> np.ndarray:
    """First variant index of each segment: ``s * (L - O)``; int64 shape (n_seg,)."""
    n_seg = n_segments(n_variants, length, overlap)
    return np.arange(n_seg, dtype=np.int64) * (int(length) - int(overlap))


def segment_index(n_variants: int, length: int, overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """Variant index at every segment position, and whether it is real.

    Returns ``index`` int64 (n_seg, length), clipped to ``N - 1`` in the padded tail, and
    ``valid`` bool (n_seg, length), False in the padded tail.
    """
    starts = segment_starts(n_variants, length, overlap)
    index = starts[:, None] + np.arange(int(length), dtype=np.int64)[None, :]
    valid = index < int(n_variants)
    return np.minimum(index, int(n_variants) - 1), valid


def segment_codes(codes: np.ndarray, length: int, overlap: int) -> np.ndarray:
    """Cut each sample's sequence into overlapping segments.

    codes : uint8, shape (n_samples, n_variants).
    Returns uint8, shape (n_samples, n_seg, length), a new C-contiguous array; positions past
    the last variant hold PAD (5).
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D (n_samples, n_variants), got shape {codes.shape}")
    n_samples, n_variants = codes.shape
    n_seg = n_segments(n_variants, length, overlap)
    stride = int(length) - int(overlap)
    padded_width = (n_seg - 1) * stride + int(length)
    padded = np.full((n_samples, padded_width), PAD, dtype=np.uint8)
    padded[:, :n_variants] = codes
    windows = np.lib.stride_tricks.sliding_window_view(padded, int(length), axis=1)[:, ::stride]
    return np.ascontiguousarray(windows)


def positional_channel(positions: np.ndarray, length: int, overlap: int) -> np.ndarray:
    """Segment-local min-max normalised base-pair positions.

    positions : integer, shape (n_variants,).
    Returns float32, shape (n_seg, length): ``(p - min) / (max - min)`` over the segment's
    real positions, so values lie in [0, 1]; 0 at padded positions, and 0 throughout a segment
    whose real positions are all equal (including a one-variant segment).
    """
    positions = np.asarray(positions)
    if positions.ndim != 1:
        raise ValueError(f"positions must be 1-D, got shape {positions.shape}")
    index, valid = segment_index(len(positions), length, overlap)
    seg_pos = positions.astype(np.float64)[index]
    lo = np.where(valid, seg_pos, np.inf).min(axis=1, keepdims=True)
    hi = np.where(valid, seg_pos, -np.inf).max(axis=1, keepdims=True)
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(span > 0, (seg_pos - lo) / np.where(span > 0, span, 1.0), 0.0)
    scaled[~valid] = 0.0
    return scaled.astype(np.float32)


def reassemble(probs: np.ndarray, n_variants: int, length: int, overlap: int) -> np.ndarray:
    """Per-cell probabilities from overlapping segment predictions.

    probs : float, shape (n_samples, n_seg, length, C); values at padded positions are ignored.
    Returns float32, shape (n_samples, n_variants, C): for each cell, the probability vector of
    the segment (among those covering the variant) whose maximum probability there is highest;
    on a tie, the earlier segment. Work is vectorised over cells: one pass per overlap layer,
    at most ``ceil(L / (L - O))`` passes, independent of the number of segments.
    """
    n_variants, length, overlap = _check(n_variants, length, overlap)
    probs = np.asarray(probs)
    n_seg = n_segments(n_variants, length, overlap)
    if probs.ndim != 4 or probs.shape[1] != n_seg or probs.shape[2] != length:
        raise ValueError(
            f"probs must have shape (n_samples, {n_seg}, {length}, C) for n_variants={n_variants}, "
            f"length={length}, overlap={overlap}; got {probs.shape}"
        )
    n_samples = probs.shape[0]
    stride = length - overlap
    confidence = probs.max(axis=3)  # (n_samples, n_seg, length)
    variant = np.arange(n_variants, dtype=np.int64)
    # Segments covering variant j: s*stride <= j <= s*stride + L - 1.
    first = np.maximum(0, -(-(variant - length + 1) // stride))
    last = np.minimum(n_seg - 1, variant // stride)
    best_seg = np.broadcast_to(first, (n_samples, n_variants)).copy()
    best_conf = confidence[:, first, variant - first * stride]
    n_layers = int((last - first).max()) + 1
    for layer in range(1, n_layers):
        seg = first + layer
        present = seg <= last
        cols = np.flatnonzero(present)
        seg_cols = seg[cols]
        conf = confidence[:, seg_cols, cols - seg_cols * stride]
        better = conf > best_conf[:, cols]  # strict: ties keep the earlier segment
        best_conf[:, cols] = np.where(better, conf, best_conf[:, cols])
        best_seg[:, cols] = np.where(better, seg_cols[None, :], best_seg[:, cols])
    rows = np.arange(n_samples, dtype=np.int64)[:, None]
    out = probs[rows, best_seg, variant[None, :] - best_seg * stride]
    return np.asarray(out, dtype=np.float32)


def keep_observed(observed: np.ndarray, calls: np.ndarray) -> np.ndarray:
    """``calls`` with every observed genotype kept.

    observed : uint8 (n_samples, n_variants), the imputer's input (0 where masked).
    calls : uint8 (n_samples, n_variants), predicted codes 1-4.
    Returns a new uint8 array: ``observed`` where it holds a genotype call (1-4), else ``calls``.
    """
    observed = np.asarray(observed)
    calls = np.asarray(calls)
    if observed.shape != calls.shape:
        raise ValueError(f"observed shape {observed.shape} != calls shape {calls.shape}")
    return np.where(is_call(observed), observed, calls).astype(np.uint8)


def keep_observed_probs(observed: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Probabilities over the four call codes with observed cells made certain.

    observed : uint8 (n_samples, n_variants). probs : float (n_samples, n_variants, 4) ordered
    as codes 1, 2, 3, 4. Returns a new float32 array where every observed cell (code 1-4) is the
    one-hot vector of its code and every other cell is ``probs`` unchanged.
    """
    observed = np.asarray(observed)
    probs = np.asarray(probs)
    if probs.shape != observed.shape + (4,):
        raise ValueError(f"probs shape {probs.shape} != observed shape {observed.shape} + (4,)")
    out = np.array(probs, dtype=np.float32, copy=True)
    seen = is_call(observed)
    one_hot = np.eye(4, dtype=np.float32)[np.clip(observed.astype(np.int64) - 1, 0, 3)]
    out[seen] = one_hot[seen]
    return out
