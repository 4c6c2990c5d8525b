"""``Imputation.from_probs`` and the baselines work block by block: the same answer, bit for bit,
as the unblocked conversion (``impbench.testing.reference_imputation``), with a peak memory of
about the answer's own arrays."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from impbench.genotypes import CALL_CODES, GenotypeMatrix
from impbench.imputers import base
from impbench.imputers.base import Imputation, RunContext, cell_blocks
from impbench.imputers.baselines import KnnImputer, KnnOptions, MajorImputer, knn_vote_probs, major_codes
from impbench.testing.reference_imputation import reference_from_probs


def _random_case(rng, n=9, m=23, observed_rate=0.4):
    """Probabilities with many exact and near ties (multiples of 1/5, some nudged by less than
    the tie tolerance), and target codes 0-5 (0 masked, 5 padding, 1-4 observed)."""
    votes = rng.integers(0, 6, size=(n, m, 4)).astype(np.float64)
    votes[votes.sum(-1) == 0, 0] = 1
    probs = votes / votes.sum(-1, keepdims=True)
    probs += rng.choice([0.0, 3e-7, -3e-7, 1e-3], size=probs.shape, p=[0.7, 0.1, 0.1, 0.1])
    codes = np.where(rng.random((n, m)) < observed_rate, rng.integers(1, 5, size=(n, m)), 0).astype(np.uint8)
    codes[rng.random((n, m)) < 0.05] = 5
    return probs, codes


def _assert_same(result: Imputation, expected: Imputation) -> None:
    for name in ("calls", "dosage", "probs"):
        got, want = getattr(result, name), getattr(expected, name)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.array_equal(got, want), name


def test_cell_blocks_tile_the_array_once():
    for shape, block in [((9, 23), 1), ((9, 23), 5), ((9, 23), 23), ((9, 23), 24), ((9, 23), 50), ((9, 23), 10**6), ((1, 7), 3)]:
        seen = np.zeros(shape, dtype=int)
        for rows, cols in cell_blocks(shape, block):
            seen[rows, cols] += 1
            assert seen[rows, cols].size <= max(block, 1) or rows.stop - rows.start == 1
        assert (seen == 1).all(), (shape, block)
    assert list(cell_blocks((0, 5), 4)) == [] and list(cell_blocks((5, 0), 4)) == []


@pytest.mark.parametrize("block_cells", [1, 5, 23, 30, 10**6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_from_probs_blocked_equals_the_unblocked_reference(block_cells, dtype):
    rng = np.random.default_rng(block_cells)
    probs, codes = _random_case(rng)
    probs = probs.astype(dtype)
    expected = reference_from_probs(probs, codes)
    before = probs.copy()
    _assert_same(Imputation.from_probs(probs, codes, block_cells=block_cells), expected)
    assert np.array_equal(probs, before)  # without overwrite the input is left alone
    in_place = Imputation.from_probs(probs, codes, block_cells=block_cells, overwrite=True)
    _assert_same(in_place, expected)
    assert (in_place.probs is probs) == (dtype == np.float32)  # float32 given away is reused


def test_from_probs_reads_a_broadcast_view():
    rng = np.random.default_rng(3)
    per_variant = rng.dirichlet(np.ones(4), size=23).astype(np.float32)
    codes = _random_case(rng)[1]
    view = np.broadcast_to(per_variant, codes.shape + (4,))
    result = Imputation.from_probs(view, codes, block_cells=7, overwrite=True)  # read-only: copied
    _assert_same(result, reference_from_probs(view, codes))


def _matrix(codes: np.ndarray) -> GenotypeMatrix:
    n, m = codes.shape
    return GenotypeMatrix(codes=codes, positions=np.arange(1, m + 1) * 10, contig="1",
                          ref=np.full(m, "A", object), alt=np.full(m, "C", object),
                          variant_ids=np.full(m, ".", object), sample_ids=np.array([f"s{i}" for i in range(n)], object))


def test_baselines_equal_their_unblocked_reference(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    panel = _matrix(rng.integers(1, 5, size=(30, 41)).astype(np.uint8))
    panel.codes[:, :3] = 2  # a variant where every sample agrees, and ties below
    panel.codes[:15, 5], panel.codes[15:, 5] = 3, 1
    target_codes = np.where(rng.random((12, 41)) < 0.5, rng.integers(1, 5, size=(12, 41)), 0).astype(np.uint8)
    target = _matrix(target_codes)
    monkeypatch.setattr(base, "FROM_PROBS_BLOCK_CELLS", 17)  # many blocks, some cutting a row
    ctx = RunContext(work_dir=tmp_path)

    major = MajorImputer()
    major.fit(panel, None, ctx)
    counts = (panel.codes[..., None] == CALL_CODES).astype(np.float32).sum(axis=0)  # the old, whole-array count
    major_probs = np.eye(4, dtype=np.float32)[np.argmax(counts, axis=1)]
    assert np.array_equal(major_codes(panel.codes, block_elements=31), CALL_CODES[np.argmax(counts, axis=1)])
    expected = reference_from_probs(np.broadcast_to(major_probs, target_codes.shape + (4,)), target_codes)
    _assert_same(major.impute(target, ctx), expected)

    knn = KnnImputer(KnnOptions(k=3, window=4))
    knn.fit(panel, None, ctx)
    votes = knn_vote_probs(panel.codes, target_codes, 3, 4)
    _assert_same(knn.impute(target, ctx), reference_from_probs(votes, target_codes))
    assert np.array_equal(target.codes, target_codes)  # the input is left alone


def _peak_bytes(function, *args, **kwargs):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        result = function(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def _answer_bytes(imputation: Imputation) -> int:
    return imputation.calls.nbytes + imputation.dosage.nbytes + imputation.probs.nbytes


def test_from_probs_peak_memory_is_about_its_answer():
    rng = np.random.default_rng(11)
    n, m = 100, 10_000
    probs = rng.random((n, m, 4), dtype=np.float32)
    codes = np.where(rng.random((n, m)) < 0.7, 1, 0).astype(np.uint8)
    block = 1 << 15  # ~1.3 MB of temporaries a block, against a 21 MB answer
    result, peak = _peak_bytes(Imputation.from_probs, probs, codes, block_cells=block)
    assert peak <= 1.2 * _answer_bytes(result)
    result, peak = _peak_bytes(Imputation.from_probs, probs, codes, block_cells=block, overwrite=True)
    assert result.probs is probs and peak <= 1.2 * (result.calls.nbytes + result.dosage.nbytes)
    _, reference_peak = _peak_bytes(reference_from_probs, probs, codes)
    assert reference_peak > 2 * _answer_bytes(result)  # what the blocking saves: the check can fail
