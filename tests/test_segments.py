"""Segmentation and reassembly: property tests against plainly written slow references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impbench.errors import ImpbenchError
from impbench.genotypes import PAD
from impbench.imputers.segments import (
    keep_observed,
    keep_observed_probs,
    n_segments,
    positional_channel,
    reassemble,
    segment_codes,
    segment_index,
    segment_starts,
)


@st.composite
def layouts(draw, max_variants=300):
    """(n_variants, length, overlap) with length > overlap >= 0."""
    n_variants = draw(st.integers(1, max_variants))
    length = draw(st.integers(1, 40))
    overlap = draw(st.integers(0, length - 1))
    return n_variants, length, overlap


def slow_covering_segments(n_variants, length, overlap):
    """For each variant, the list of (segment, offset) that hold it; plain loops."""
    stride = length - overlap
    n_seg = max(1, math.ceil((n_variants - overlap) / stride))
    holders = [[] for _ in range(n_variants)]
    for s in range(n_seg):
        for k in range(length):
            j = s * stride + k
            if j < n_variants:
                holders[j].append((s, k))
    return n_seg, holders


@given(layouts())
def test_segment_count_and_starts(layout):
    n_variants, length, overlap = layout
    n_seg, holders = slow_covering_segments(n_variants, length, overlap)
    assert n_segments(n_variants, length, overlap) == n_seg
    starts = segment_starts(n_variants, length, overlap)
    assert starts.dtype == np.int64
    assert starts.tolist() == [s * (length - overlap) for s in range(n_seg)]
    # every variant in at least one segment; no segment wholly padding
    assert all(holders)
    assert starts[-1] < n_variants


@given(layouts(), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_segment_codes_values_and_pad_tail(layout, n_samples, seed):
    n_variants, length, overlap = layout
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 5, size=(n_samples, n_variants), dtype=np.uint8)
    segs = segment_codes(codes, length, overlap)
    n_seg = n_segments(n_variants, length, overlap)
    assert segs.shape == (n_samples, n_seg, length)
    assert segs.dtype == np.uint8 and segs.flags.c_contiguous
    stride = length - overlap
    for s in range(n_seg):
        for k in range(length):
            j = s * stride + k
            expected = codes[:, j] if j < n_variants else np.full(n_samples, PAD)
            assert np.array_equal(segs[:, s, k], expected)
    index, valid = segment_index(n_variants, length, overlap)
    assert np.all(segs[:, ~valid] == PAD)
    assert np.array_equal(segs[:, valid], codes[:, index[valid]])


@given(layouts(), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_round_trip_of_one_hot_codes_is_exact(layout, n_samples, seed):
    n_variants, length, overlap = layout
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 5, size=(n_samples, n_variants), dtype=np.uint8)
    segs = segment_codes(codes, length, overlap)
    one_hot = np.eye(6, dtype=np.float32)[segs]  # (n, n_seg, L, 6)
    back = reassemble(one_hot, n_variants, length, overlap)
    assert back.shape == (n_samples, n_variants, 6) and back.dtype == np.float32
    assert np.array_equal(back.argmax(axis=-1), codes)
    assert np.array_equal(back, np.eye(6, dtype=np.float32)[codes])


def slow_reassemble(probs, n_variants, length, overlap):
    n_seg, holders = slow_covering_segments(n_variants, length, overlap)
    n_samples, _, _, n_classes = probs.shape
    out = np.zeros((n_samples, n_variants, n_classes), dtype=np.float32)
    for i in range(n_samples):
        for j in range(n_variants):
            best = None
            for s, k in holders[j]:  # ascending segment order
                conf = max(probs[i, s, k])
                if best is None or conf > best[0]:
                    best = (conf, s, k)
            out[i, j] = probs[i, best[1], best[2]]
    return out


@settings(max_examples=60)
@given(layouts(max_variants=120), st.integers(1, 3), st.integers(2, 6), st.integers(0, 2**31 - 1), st.booleans())
def test_each_cell_from_its_most_confident_segment(layout, n_samples, n_classes, seed, coarse):
    n_variants, length, overlap = layout
    rng = np.random.default_rng(seed)
    n_seg = n_segments(n_variants, length, overlap)
    raw = rng.random((n_samples, n_seg, length, n_classes))
    if coarse:  # many exact ties in the maximum: the earlier segment must win
        raw = np.round(raw * 3) + 0.01
    probs = (raw / raw.sum(axis=-1, keepdims=True)).astype(np.float32)
    got = reassemble(probs, n_variants, length, overlap)
    assert np.array_equal(got, slow_reassemble(probs, n_variants, length, overlap))


@given(layouts(), st.integers(0, 2**31 - 1), st.booleans())
def test_positional_channel(layout, seed, with_repeats):
    n_variants, length, overlap = layout
    rng = np.random.default_rng(seed)
    steps = rng.integers(0, 3 if with_repeats else 1000, size=n_variants)
    positions = 10_000_000 + np.cumsum(steps).astype(np.int64)
    channel = positional_channel(positions, length, overlap)
    n_seg = n_segments(n_variants, length, overlap)
    assert channel.shape == (n_seg, length) and channel.dtype == np.float32
    assert np.all((channel >= 0) & (channel <= 1))
    stride = length - overlap
    for s in range(n_seg):
        real = [s * stride + k for k in range(length) if s * stride + k < n_variants]
        seg_pos = positions[real].astype(np.float64)
        lo, hi = seg_pos.min(), seg_pos.max()
        for k in range(length):
            j = s * stride + k
            if j >= n_variants:
                assert channel[s, k] == 0.0
            elif hi == lo:
                assert channel[s, k] == 0.0
            else:
                assert channel[s, k] == pytest.approx((positions[j] - lo) / (hi - lo), abs=1e-6)


def test_short_dataset_gives_one_padded_segment():
    codes = np.array([[1, 2, 3], [4, 1, 2]], dtype=np.uint8)
    assert n_segments(3, 8, 2) == 1
    segs = segment_codes(codes, 8, 2)
    assert segs.shape == (2, 1, 8)
    assert segs[0, 0].tolist() == [1, 2, 3, 5, 5, 5, 5, 5]
    channel = positional_channel(np.array([100, 150, 300]), 8, 2)
    assert channel[0].tolist() == pytest.approx([0.0, 0.25, 1.0, 0, 0, 0, 0, 0])
    # N <= O: still one segment
    assert n_segments(2, 8, 6) == 1


def test_known_layout():
    # N=10, L=4, O=1: stride 3, n_seg = ceil(9/3) = 3, starts 0, 3, 6; last covers 6..9
    assert n_segments(10, 4, 1) == 3
    assert segment_starts(10, 4, 1).tolist() == [0, 3, 6]
    # N=11: ceil(10/3) = 4 segments, the last holds variants 9, 10 then two PADs
    segs = segment_codes(np.arange(11, dtype=np.uint8)[None, :] % 5, 4, 1)
    assert segs.shape == (1, 4, 4)
    assert segs[0, 3].tolist() == [9 % 5, 10 % 5, PAD, PAD]


@pytest.mark.parametrize("args", [(10, 4, 4), (10, 4, 5), (10, 4, -1), (0, 4, 1), (10, 0, 0)])
def test_bad_settings_raise(args):
    with pytest.raises(ImpbenchError):
        n_segments(*args)


def test_reassemble_rejects_wrong_shape():
    with pytest.raises(ValueError):
        reassemble(np.zeros((1, 2, 4, 6), dtype=np.float32), 10, 4, 1)


def test_keep_observed():
    observed = np.array([[0, 2, 0, 4]], dtype=np.uint8)
    calls = np.array([[1, 3, 4, 1]], dtype=np.uint8)
    kept = keep_observed(observed, calls)
    assert kept.dtype == np.uint8
    assert kept.tolist() == [[1, 2, 4, 4]]
    assert calls.tolist() == [[1, 3, 4, 1]]  # not mutated


def test_keep_observed_probs():
    observed = np.array([[0, 3]], dtype=np.uint8)
    probs = np.full((1, 2, 4), 0.25, dtype=np.float32)
    out = keep_observed_probs(observed, probs)
    assert out[0, 0].tolist() == [0.25] * 4
    assert out[0, 1].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert probs[0, 1].tolist() == [0.25] * 4
