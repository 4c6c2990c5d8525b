"""Train/validation/test split of samples, stratified by cohort x sex.

Every (cohort, sex) stratum is split on its own, 8:1:1 by default, with a generator seeded from
the split seed and the stratum's name (so adding a cohort does not reshuffle the others). A
cohort's share of a split is therefore a split of that cohort: the test samples of cohort AA
are exactly AA's members of the ALL test split (``cohort_subset``), and a model trained on ALL
never saw them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from impbench.errors import ImpbenchError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitSettings:
    """fractions : train/val/test fractions (8:1:1 by default); seed : the split's seed."""

    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0


def _stratum_seed(seed: int, cohort: str, sex: str) -> np.random.SeedSequence:
    digest = hashlib.sha256(f"{cohort}\x00{sex}".encode()).digest()
    return np.random.SeedSequence([int(seed), int.from_bytes(digest[:8], "little")])


def split_sizes(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """Sizes (train, val, test) for a stratum of ``n`` samples.

    val and test get ``round(n * fraction)`` samples but at least one each when their fraction
    is positive; train gets the rest and must keep at least one when its fraction is positive.
    Raises ``ValueError`` when ``n`` is too small for that.
    """
    _, f_val, f_test = fractions
    n_val = max(1, int(round(n * f_val))) if f_val > 0 else 0
    n_test = max(1, int(round(n * f_test))) if f_test > 0 else 0
    n_train = n - n_val - n_test
    if n_train < (1 if fractions[0] > 0 else 0):
        raise ValueError(f"{n} samples cannot be split")
    return n_train, n_val, n_test


def min_stratum_size(fractions: tuple[float, float, float]) -> int:
    """The fewest samples a stratum needs: one for each split with a positive fraction."""
    return sum(1 for f in fractions if f > 0)


def assign_splits(cohort, sex, settings: SplitSettings = SplitSettings(), sample_ids=None) -> np.ndarray:
    """Assign each sample to "train", "val" or "test", stratified by cohort x sex.

    cohort, sex : str arrays of shape (n_samples,). sample_ids : optional; members of a stratum
    are ordered by id before shuffling, so the split does not depend on the sample order in the
    VCF. Deterministic given ``settings.seed``.

    Raises ``ImpbenchError`` naming the stratum when it has fewer samples than splits with a
    positive fraction (3 by default): every split must get at least one sample of every
    stratum, or a cohort x sex group would be missing from validation or test.

    Returns object array (n_samples,) of split names.
    """
    fractions = tuple(float(f) for f in settings.fractions)
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ImpbenchError(f"split fractions {settings.fractions}: need three non-negative numbers summing to 1")
    cohort = np.asarray(cohort, dtype=object)
    sex = np.asarray(sex, dtype=object)
    if cohort.shape != sex.shape:
        raise ValueError("cohort and sex must have the same shape")
    n_samples = len(cohort)
    order_key = np.asarray(sample_ids, dtype=str) if sample_ids is not None else np.arange(n_samples)
    labels = np.empty(n_samples, dtype=object)
    strata = sorted({(str(c), str(s)) for c, s in zip(cohort, sex)})
    too_small = []
    for c, s in strata:
        members = np.nonzero((cohort == c) & (sex == s))[0]
        if len(members) < min_stratum_size(fractions):
            too_small.append(f"cohort={c} sex={s} ({len(members)})")
    if too_small:
        raise ImpbenchError(
            f"stratum too small to split {fractions[0]:g}:{fractions[1]:g}:{fractions[2]:g} "
            f"(each needs at least {min_stratum_size(fractions)} samples): " + ", ".join(too_small[:5])
            + (f" and {len(too_small) - 5} more" if len(too_small) > 5 else "")
        )
    for c, s in strata:
        members = np.nonzero((cohort == c) & (sex == s))[0]
        members = members[np.argsort(order_key[members], kind="stable")]
        shuffled = members[np.random.default_rng(_stratum_seed(settings.seed, c, s)).permutation(len(members))]
        n_train, n_val, _ = split_sizes(len(members), fractions)
        labels[shuffled[:n_train]] = "train"
        labels[shuffled[n_train : n_train + n_val]] = "val"
        labels[shuffled[n_train + n_val :]] = "test"
    return labels


def cohort_subset(splits, cohort_labels, split: str, cohort: str | None = None) -> np.ndarray:
    """Bool mask (n_samples,) of the samples in ``split`` (and in ``cohort`` when given).

    Because splits are stratified by cohort, ``cohort_subset(s, c, "test", "AA")`` is exactly
    the AA members of the ALL test split, disjoint from every training split.
    """
    splits = np.asarray(splits, dtype=object)
    if split not in SPLITS:
        raise ImpbenchError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    mask = splits == split
    if cohort is not None:
        labels = np.asarray(cohort_labels, dtype=object)
        if cohort not in set(labels):
            raise ImpbenchError(f"unknown cohort {cohort!r}; valid: {', '.join(sorted(set(map(str, labels))))}")
        mask &= labels == cohort
    return mask
