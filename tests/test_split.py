"""Stratified train/val/test split: proportions, determinism, no leakage, cohort subsets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impbench.errors import ImpbenchError
from impbench.data.split import SPLITS, SplitSettings, assign_splits, cohort_subset, split_sizes


def population(n_per_stratum: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cohort, sex = [], []
    for (c, s), n in n_per_stratum.items():
        cohort += [c] * n
        sex += [s] * n
    ids = np.array([f"id{i:04d}" for i in range(len(cohort))], dtype=object)
    return ids, np.array(cohort, dtype=object), np.array(sex, dtype=object)


def test_8_1_1_per_stratum_and_every_sample_once():
    ids, cohort, sex = population({("AA", "male"): 50, ("AA", "female"): 40, ("CA", "male"): 10, ("CA", "unknown"): 3})
    labels = assign_splits(cohort, sex, SplitSettings(seed=1), sample_ids=ids)
    assert set(labels) == set(SPLITS)
    for (c, s), (n_train, n_val, n_test) in {
        ("AA", "male"): (40, 5, 5), ("AA", "female"): (32, 4, 4), ("CA", "male"): (8, 1, 1), ("CA", "unknown"): (1, 1, 1),
    }.items():  # fmt: skip
        stratum = labels[(cohort == c) & (sex == s)]
        assert [(stratum == x).sum() for x in SPLITS] == [n_train, n_val, n_test]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(3, 30), min_size=1, max_size=6), st.integers(0, 2**32 - 1))
def test_no_sample_in_two_splits_and_deterministic(sizes, seed):
    ids, cohort, sex = population({(f"c{i // 2}", "male" if i % 2 else "female"): n for i, n in enumerate(sizes)})
    labels = assign_splits(cohort, sex, SplitSettings(seed=seed), sample_ids=ids)
    masks = [labels == s for s in SPLITS]
    assert (np.sum(masks, axis=0) == 1).all()  # each sample in exactly one split
    assert np.array_equal(labels, assign_splits(cohort, sex, SplitSettings(seed=seed), sample_ids=ids))
    # order of the samples in the input does not matter when ids are given
    perm = np.random.default_rng(seed).permutation(len(ids))
    assert np.array_equal(assign_splits(cohort[perm], sex[perm], SplitSettings(seed=seed), sample_ids=ids[perm]), labels[perm])


def test_seed_changes_split_and_strata_are_independent():
    ids, cohort, sex = population({("A", "male"): 30, ("B", "male"): 30})
    a = assign_splits(cohort, sex, SplitSettings(seed=1), sample_ids=ids)
    assert not np.array_equal(a, assign_splits(cohort, sex, SplitSettings(seed=2), sample_ids=ids))
    # adding a cohort leaves the split of the existing ones unchanged
    ids2, cohort2, sex2 = population({("A", "male"): 30, ("B", "male"): 30, ("C", "female"): 10})
    assert np.array_equal(assign_splits(cohort2, sex2, SplitSettings(seed=1), sample_ids=ids2)[:60], a)


def test_cohort_test_subset_is_the_cohort_part_of_the_all_test_split():
    ids, cohort, sex = population({("AA", "male"): 20, ("AA", "female"): 20, ("CA", "male"): 20, ("CA", "female"): 20})
    labels = assign_splits(cohort, sex, SplitSettings(seed=3), sample_ids=ids)
    aa_test = cohort_subset(labels, cohort, "test", "AA")
    assert np.array_equal(aa_test, (labels == "test") & (cohort == "AA"))
    assert not (aa_test & cohort_subset(labels, cohort, "train")).any()  # never in ALL train
    with pytest.raises(ImpbenchError, match="unknown cohort 'XX'; valid: AA, CA"):
        cohort_subset(labels, cohort, "test", "XX")
    with pytest.raises(ImpbenchError, match="unknown split 'dev'"):
        cohort_subset(labels, cohort, "dev")


def test_stratum_too_small_names_it():
    ids, cohort, sex = population({("AA", "male"): 10, ("AA", "female"): 2})
    with pytest.raises(ImpbenchError, match=r"stratum too small.*cohort=AA sex=female \(2\)"):
        assign_splits(cohort, sex, SplitSettings())
    # a split without validation needs only two per stratum
    labels = assign_splits(cohort, sex, SplitSettings(fractions=(0.9, 0.0, 0.1)))
    assert set(labels[(sex == "female")]) == {"train", "test"}


def test_split_sizes_and_bad_fractions():
    assert split_sizes(3, (0.8, 0.1, 0.1)) == (1, 1, 1)
    assert split_sizes(100, (0.8, 0.1, 0.1)) == (80, 10, 10)
    with pytest.raises(ImpbenchError, match="fractions"):
        assign_splits(["a"] * 5, ["male"] * 5, SplitSettings(fractions=(0.5, 0.1, 0.1)))
