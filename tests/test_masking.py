"""Masked replicates: exact counts, determinism, per-variant shares, hash stability."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import impbench.bench.masking as masking
from impbench.errors import ImpbenchError
from impbench.bench.masking import (
    DEFAULT_LEVELS,
    DEFAULT_REPLICATES,
    SCHEMES,
    apply_mask,
    make_mask,
    mask_sha256,
    per_variant_targets,
    replicate_masks,
    replicate_seed,
)

HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def random_codes(rng, n_samples, n_variants, missing=0.0, carrier_freq=None):
    """Codes 1-4 with per-variant ALT frequency; a fraction ``missing`` set to 0."""
    freq = rng.random(n_variants) * 0.5 if carrier_freq is None else np.full(n_variants, carrier_freq)
    a0 = rng.random((n_samples, n_variants)) < freq
    a1 = rng.random((n_samples, n_variants)) < freq
    codes = (1 + a1 + 2 * a0).astype(np.uint8)  # 0|0=1, 0|1=2, 1|0=3, 1|1=4
    codes[rng.random(codes.shape) < missing] = 0
    return codes


def test_constants():
    assert DEFAULT_LEVELS == (0.05, 0.15, 0.25)
    assert DEFAULT_REPLICATES == 3
    assert SCHEMES == ("uniform", "per-variant", "array")


def test_replicate_seed_is_defined_by_hash_level_in_basis_points_and_replicate():
    seed = replicate_seed(HASH, 0.15, 2)
    assert seed.entropy == [int(HASH, 16), 1500, 2]
    expected = np.random.SeedSequence([int(HASH, 16), 1500, 2]).generate_state(4)
    assert np.array_equal(seed.generate_state(4), expected)
    # not the level's index: the same level gives the same seed in any list of levels
    assert replicate_seed(HASH, 0.05, 0).entropy[1] == 500
    assert replicate_seed(HASH, 0.25, 0).entropy[1] == 2500


@pytest.mark.parametrize("bad", ["", "xyz", None])
def test_replicate_seed_rejects_non_hex_hash(bad):
    with pytest.raises(ImpbenchError):
        replicate_seed(bad, 0.05, 0)


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, 1.5, float("nan"), "abc"])
def test_rate_outside_open_interval_raises(rate):
    codes = np.ones((4, 4), dtype=np.uint8)
    with pytest.raises(ImpbenchError):
        make_mask(codes, rate, 0)
    with pytest.raises(ImpbenchError):
        replicate_seed(HASH, rate, 0)


def test_unknown_scheme_and_bad_replicate_raise():
    codes = np.ones((4, 4), dtype=np.uint8)
    with pytest.raises(ImpbenchError, match="per-variant"):
        make_mask(codes, 0.1, 0, scheme="random")
    with pytest.raises(ImpbenchError):
        replicate_seed(HASH, 0.1, -1)
    with pytest.raises(ImpbenchError):
        list(replicate_masks(codes, HASH, (0.1,), replicates=0))


@settings(max_examples=50)
@given(
    st.integers(1, 40),
    st.integers(1, 60),
    st.floats(0.01, 0.99),
    st.floats(0.0, 0.5),
    st.integers(0, 2**32 - 1),
)
def test_uniform_exact_count_among_maskable_cells(n_samples, n_variants, rate, missing, seed):
    rng = np.random.default_rng(seed)
    codes = random_codes(rng, n_samples, n_variants, missing=missing)
    codes[:, -1:][rng.random((n_samples, 1)) < 0.3] = 5  # some padding too
    mask = make_mask(codes, rate, seed)
    assert mask.dtype == bool and mask.shape == codes.shape
    maskable = (codes >= 1) & (codes <= 4)
    assert int(mask.sum()) == round(rate * int(maskable.sum()))
    assert not np.any(mask & ~maskable)


def test_uniform_exact_count_across_blocks(monkeypatch):
    monkeypatch.setattr(masking, "UNIFORM_BLOCK_CELLS", 97)  # many blocks on a small matrix
    rng = np.random.default_rng(3)
    codes = random_codes(rng, 30, 200, missing=0.1)
    maskable = (codes >= 1) & (codes <= 4)
    for rate in (0.05, 0.15, 0.25, 0.5):
        mask = make_mask(codes, rate, replicate_seed(HASH, rate, 0))
        assert int(mask.sum()) == round(rate * int(maskable.sum()))
        assert not np.any(mask & ~maskable)


def test_uniform_is_roughly_uniform_over_cells():
    codes = np.ones((20, 50), dtype=np.uint8)
    hits = np.zeros(codes.shape)
    for replicate in range(400):
        hits += make_mask(codes, 0.25, replicate_seed(HASH, 0.25, replicate))
    # each cell masked with probability 0.25: 400 draws -> mean 100, sd ~8.7
    assert abs(hits.mean() - 100) < 1e-9
    assert hits.min() > 60 and hits.max() < 140


@pytest.mark.parametrize("scheme", SCHEMES)
def test_deterministic_and_replicates_differ(scheme):
    rng = np.random.default_rng(0)
    codes = random_codes(rng, 50, 300)
    first = make_mask(codes, 0.15, replicate_seed(HASH, 0.15, 0), scheme)
    again = make_mask(codes, 0.15, replicate_seed(HASH, 0.15, 0), scheme)
    other = make_mask(codes, 0.15, replicate_seed(HASH, 0.15, 1), scheme)
    other_hash = make_mask(codes, 0.15, replicate_seed("ab" + HASH[2:], 0.15, 0), scheme)
    assert np.array_equal(first, again)
    assert mask_sha256(first) == mask_sha256(again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, other_hash)


def test_level_mask_does_not_depend_on_other_levels():
    rng = np.random.default_rng(1)
    codes = random_codes(rng, 20, 100)
    run_all = {(lvl, r): m for lvl, r, m in replicate_masks(codes, HASH, (0.05, 0.15, 0.25), 2)}
    run_one = {(lvl, r): m for lvl, r, m in replicate_masks(codes, HASH, (0.15,), 2)}
    assert set(run_one) == {(0.15, 0), (0.15, 1)}
    for key, mask in run_one.items():
        assert np.array_equal(mask, run_all[key])


def slow_per_variant_targets(codes, rate):
    """Plain per-variant arithmetic of the documented rule."""
    carriers, others = [], []
    for j in range(codes.shape[1]):
        column = [int(c) for c in codes[:, j] if 1 <= c <= 4]
        n = len(column)
        a = sum(1 for c in column if c != 1)
        k = round(rate * n)
        c = math.floor(k * a / n + 0.5) if n else 0
        carriers.append(c)
        others.append(k - c)
    return carriers, others


@settings(max_examples=50)
@given(
    st.integers(1, 60),
    st.integers(1, 30),
    st.floats(0.01, 0.99),
    st.floats(0.0, 0.3),
    st.integers(0, 2**32 - 1),
)
def test_per_variant_counts_and_carrier_shares(n_samples, n_variants, rate, missing, seed):
    rng = np.random.default_rng(seed)
    codes = random_codes(rng, n_samples, n_variants, missing=missing)
    mask = make_mask(codes, rate, seed, scheme="per-variant")
    maskable = (codes >= 1) & (codes <= 4)
    assert not np.any(mask & ~maskable)
    carriers, others = slow_per_variant_targets(codes, rate)
    got_c, got_o = per_variant_targets(codes, rate)
    assert got_c.tolist() == carriers and got_o.tolist() == others
    for j in range(n_variants):
        column_mask = mask[:, j]
        n = int(maskable[:, j].sum())
        assert int(column_mask.sum()) == round(rate * n)  # exact per-SNP total
        assert int((column_mask & (codes[:, j] >= 2)).sum()) == carriers[j]
        assert int((column_mask & (codes[:, j] == 1)).sum()) == others[j]


def test_per_variant_rare_variant_needs_11_carriers_at_5_percent():
    # the pitfall the paper protocol reproduces: 263 samples, rate 0.05 -> 13 masked per SNP
    n = 263
    codes = np.ones((n, 12), dtype=np.uint8)
    for j in range(12):
        codes[:j, j] = 2  # variant j has j carriers
    carriers, others = per_variant_targets(codes, 0.05)
    assert (carriers + others).tolist() == [13] * 12
    assert carriers[:11].tolist() == [0] * 11  # 0..10 carriers: none masked
    assert carriers[11] == 1


def test_per_variant_blocks(monkeypatch):
    monkeypatch.setattr(masking, "PER_VARIANT_BLOCK", 7)
    rng = np.random.default_rng(5)
    codes = random_codes(rng, 40, 50, missing=0.05)
    mask = make_mask(codes, 0.25, 11, scheme="per-variant")
    carriers, others = per_variant_targets(codes, 0.25)
    assert np.array_equal((mask & (codes >= 2)).sum(0), carriers)
    assert np.array_equal((mask & (codes == 1)).sum(0), others)


def test_per_variant_picks_uniformly_within_groups():
    codes = np.ones((10, 1), dtype=np.uint8)
    codes[:4, 0] = 3  # 4 carriers of 10; rate 0.5 -> k=5, c=2 carriers, 3 non-carriers
    hits = np.zeros(10)
    for seed in range(2000):
        hits += make_mask(codes, 0.5, seed, scheme="per-variant")[:, 0]
    assert np.allclose(hits[:4] / 2000, 0.5, atol=0.05)
    assert np.allclose(hits[4:] / 2000, 0.5, atol=0.05)


def test_mask_sha256_definition_and_stability():
    mask = np.zeros((3, 5), dtype=bool)
    mask[0, 1] = mask[2, 4] = True
    expected = hashlib.sha256(b"3x5:" + np.packbits(mask.ravel()).tobytes()).hexdigest()
    assert mask_sha256(mask) == expected
    # the same bits in another shape hash differently
    assert mask_sha256(mask.reshape(5, 3)) != expected
    # a fixed mask from a fixed seed has a fixed hash (guards against silent changes to masks)
    codes = np.ones((8, 16), dtype=np.uint8)
    fixed = make_mask(codes, 0.25, replicate_seed("00ff", 0.25, 0))
    assert int(fixed.sum()) == 32
    assert mask_sha256(fixed) == mask_sha256(make_mask(codes, 0.25, replicate_seed("00ff", 0.25, 0)))


def test_apply_mask_copies_and_zeroes():
    codes = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    mask = np.array([[True, False], [False, True]])
    out = apply_mask(codes, mask)
    assert out.dtype == np.uint8
    assert out.tolist() == [[0, 2], [3, 0]]
    assert codes.tolist() == [[1, 2], [3, 4]]
    with pytest.raises(ValueError):
        apply_mask(codes, mask[:1])


@pytest.mark.parametrize(
    "scheme, expected",
    [
        ("uniform", "ac45e59178aecacefc9e0eba5c6acbb0be01bd7f9793fc15c9b26f8ed7fc8e80"),
        ("per-variant", "e83481a6d270baf36f719cf0bfab1700d621e933261a90bd9aa02eb8c3c736a9"),
    ],
)
def test_pinned_mask_hashes(scheme, expected):
    """Regression guard: masks of published runs must not change silently. If this fails after
    a numpy upgrade or a change here, masks (and so results) are no longer comparable with
    earlier runs: say so in the changelog, then update the pinned values."""
    codes = np.ones((8, 16), dtype=np.uint8)
    codes[::3, ::2] = 2
    assert mask_sha256(make_mask(codes, 0.25, replicate_seed("00ff", 0.25, 0), scheme)) == expected


def test_achieved_rate_reports_per_variant_rounding():
    # 30 samples: round(0.05 * 30) = 2 cells per SNP, 6.67% instead of 5% (the case)
    rng = np.random.default_rng(0)
    codes = np.where(rng.random((30, 200)) < 0.1, 2, 1).astype(np.uint8)
    codes[0, 0] = 0  # a missing cell is not maskable
    mask = make_mask(codes, 0.05, 1, scheme="per-variant")
    achieved = masking.achieved_rate(codes, mask)
    maskable = (codes >= 1) & (codes <= 4)
    assert achieved["maskable_cells"] == int(maskable.sum()) and achieved["masked_cells"] == int(mask.sum())
    assert achieved["rate"] == pytest.approx(mask.sum() / maskable.sum())
    carriers = codes >= 2
    assert achieved["carrier_rate"] == pytest.approx((mask & carriers).sum() / carriers.sum())
    assert achieved["rate"] > 0.06
    warning = masking.rate_warning(0.05, achieved["rate"])
    assert warning is not None and "0.05" in warning
    uniform = masking.achieved_rate(codes, make_mask(codes, 0.05, 1))
    assert masking.rate_warning(0.05, uniform["rate"]) is None
    assert masking.rate_warning(0.05, 0.0551) is not None and masking.rate_warning(0.05, 0.0549) is None
    assert math.isnan(masking.achieved_rate(np.zeros((2, 2), np.uint8), np.zeros((2, 2), bool))["rate"])
