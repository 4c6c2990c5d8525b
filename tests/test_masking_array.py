"""The ``array`` masking scheme: whole variants hidden, typed ones kept, seeded and evenly spread."""

from __future__ import annotations

import numpy as np
import pytest

from impbench.bench.masking import array_typed_variants, make_mask, mask_sha256, replicate_masks, replicate_seed
from impbench.errors import ImpbenchError

HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def codes_with_missing(n_samples=30, n_variants=200, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 5, size=(n_samples, n_variants), dtype=np.uint8)
    codes[rng.random(codes.shape) < 0.02] = 0
    return codes


def slow_evenly_spread(n_variants, rate, draws):
    """The documented rule, one stratum at a time (``draws``: the seeded uniforms)."""
    n_typed = min(max(n_variants - round(rate * n_variants), 1), n_variants - 1)
    lo = [-(-i * n_variants // n_typed) for i in range(n_typed + 1)]  # ceil in integers
    typed = [False] * n_variants
    for i in range(n_typed):
        typed[lo[i] + int(draws[i] * (lo[i + 1] - lo[i]))] = True
    return np.array(typed)


@pytest.mark.parametrize("n_variants,rate", [(200, 0.9), (200, 0.25), (7, 0.5), (2, 0.05), (1000, 0.999)])
def test_density_draw_matches_the_documented_rule(n_variants, rate):
    seed = replicate_seed(HASH, rate, 1)
    typed = array_typed_variants(n_variants, rate, seed)
    draws = np.random.default_rng(seed).random(n_variants)
    np.testing.assert_array_equal(typed, slow_evenly_spread(n_variants, rate, draws))
    n_hidden = int((~typed).sum())
    assert 1 <= n_hidden <= n_variants - 1
    assert n_hidden == min(max(round(rate * n_variants), 1), n_variants - 1)


def test_typed_sites_are_evenly_spread():
    typed = array_typed_variants(10_000, 0.9, 3)
    index = np.flatnonzero(typed)
    assert len(index) == 1000
    # one typed variant in each run of 10 consecutive variants
    np.testing.assert_array_equal(index // 10, np.arange(1000))


def test_whole_variants_hidden_in_every_sample_typed_kept():
    codes = codes_with_missing()
    mask = make_mask(codes, 0.8, replicate_seed(HASH, 0.8, 0), "array")
    hidden = mask.any(axis=0)
    # a hidden variant: every call cell masked; a typed one: no cell masked; missing never masked
    np.testing.assert_array_equal(mask, (codes != 0) & hidden[None, :])
    assert int(hidden.sum()) == round(0.8 * codes.shape[1])


def test_given_typed_set_is_used_as_is_and_does_not_depend_on_seed():
    codes = codes_with_missing()
    typed = np.zeros(codes.shape[1], dtype=bool)
    typed[::7] = True
    first = make_mask(codes, 0.15, replicate_seed(HASH, 0.15, 0), "array", typed=typed)
    other = make_mask(codes, 0.25, replicate_seed(HASH, 0.25, 2), "array", typed=typed)
    np.testing.assert_array_equal(first, (codes != 0) & ~typed[None, :])
    assert mask_sha256(first) == mask_sha256(other)
    masks = [m for _, _, m in replicate_masks(codes, HASH, (0.5,), 2, "array", typed)]
    assert all(np.array_equal(m, first) for m in masks)


def test_replicates_differ_and_repeat():
    codes = codes_with_missing()
    a = make_mask(codes, 0.9, replicate_seed(HASH, 0.9, 0), "array")
    b = make_mask(codes, 0.9, replicate_seed(HASH, 0.9, 0), "array")
    c = make_mask(codes, 0.9, replicate_seed(HASH, 0.9, 1), "array")
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("typed", [np.zeros(200, bool), np.ones(200, bool), np.ones(199, bool)])
def test_given_typed_set_must_type_some_and_hide_some(typed):
    with pytest.raises(ImpbenchError) as info:
        make_mask(codes_with_missing(), 0.5, 0, "array", typed=typed)
    assert "\n" not in str(info.value)


def test_typed_set_only_for_array():
    with pytest.raises(ImpbenchError, match="array"):
        make_mask(codes_with_missing(), 0.5, 0, "uniform", typed=np.ones(200, bool))


def test_one_variant_cannot_be_split():
    with pytest.raises(ImpbenchError, match="at least 2 variants"):
        make_mask(np.ones((5, 1), np.uint8), 0.5, 0, "array")
