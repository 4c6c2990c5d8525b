"""The built-in baselines against plainly written reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impbench.imputers.baselines import KnnImputer, KnnOptions, MajorImputer, knn_vote_probs
from impbench.errors import ImpbenchError
from impbench.genotypes import GenotypeMatrix
from impbench.imputers.base import Imputation, RunContext, check_imputation
from impbench.data.simulate import simulate_matrix


def _matrix(codes: np.ndarray) -> GenotypeMatrix:
    n, m = codes.shape
    return GenotypeMatrix(
        codes=codes, positions=np.arange(1, m + 1) * 10, contig="1",
        ref=np.full(m, "A", dtype=object), alt=np.full(m, "C", dtype=object),
        variant_ids=np.array([f"v{j}" for j in range(m)], dtype=object),
        sample_ids=np.array([f"s{i}" for i in range(n)], dtype=object),
    )


def slow_call(p) -> int:
    """``Imputation.from_probs``'s call from four probabilities, written out: the dosage class
    with the most probability (hets summed; ties within 1e-6 to the lower class), then the
    phase (tie: 0|1)."""
    classes = [p[0], p[1] + p[2], p[3]]
    best = max(classes)
    k = next(i for i, value in enumerate(classes) if value >= best - 1e-6)
    if k == 0:
        return 1
    if k == 2:
        return 4
    return 3 if p[2] > p[1] + 1e-6 else 2


@pytest.mark.parametrize(
    "probs, call",
    [
        ((0.4, 0.3, 0.3, 0.0), 2),  # het: 0.6 in total beats 0|0's 0.4 (argmax over codes: 0|0)
        ((0.4, 0.0, 0.6, 0.0), 3),  # the more probable phase
        ((0.5, 0.25, 0.25, 0.0), 1),  # tie between classes: the lower class
        ((0.2, 0.2, 0.2, 0.4), 2),  # tie between het and hom-alt: het; phase tie: 0|1
        ((0.0, 0.1, 0.2, 0.7), 4),
        ((0.2, 0.2, 0.4, 0.2), 3),
    ],
)
def test_from_probs_chooses_the_dosage_class_then_the_phase(probs, call):
    target = np.zeros((1, 1), dtype=np.uint8)
    result = Imputation.from_probs(np.array(probs, dtype=np.float32).reshape(1, 1, 4), target)
    assert result.calls[0, 0] == call == slow_call(probs)
    assert result.dosage[0, 0] == pytest.approx(probs[1] + probs[2] + 2 * probs[3])


def test_from_probs_keeps_observed_cells():
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(4), size=(6, 9)).astype(np.float32)
    target = rng.integers(0, 5, size=(6, 9)).astype(np.uint8)
    result = Imputation.from_probs(probs, target)
    seen = target != 0
    assert np.array_equal(result.calls[seen], target[seen])
    assert result.calls[~seen].tolist() == [slow_call(p) for p in probs[~seen].tolist()]
    assert np.array_equal(result.probs[seen], np.eye(4, dtype=np.float32)[target[seen] - 1])
    np.testing.assert_allclose(result.dosage[seen], np.array([0, 0, 1, 1, 2])[target[seen]])
    assert result.calls.dtype == np.uint8 and result.dosage.dtype == np.float32


def slow_knn_probs(panel: np.ndarray, target: np.ndarray, k: int, window: int) -> np.ndarray:
    """One cell at a time: distances over the target's observed codes in the window."""
    n_panel, n_variants = panel.shape
    k = min(k, n_panel)
    probs = np.zeros(target.shape + (4,), dtype=np.float32)
    for t in range(target.shape[0]):
        for v in range(n_variants):
            if target[t, v] != 0:
                continue
            lo, hi = max(0, v - window), min(n_variants, v + window + 1)
            distances = []
            for p in range(n_panel):
                d = 0
                for j in range(lo, hi):
                    if target[t, j] != 0 and target[t, j] != panel[p, j]:
                        d += 1
                distances.append((d, p))
            distances.sort()
            for _, p in distances[:k]:
                probs[t, v, panel[p, v] - 1] += 1.0 / k
    return probs


@st.composite
def knn_case(draw):
    n_panel = draw(st.integers(1, 9))
    n_target = draw(st.integers(1, 5))
    n_variants = draw(st.integers(1, 30))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    panel = rng.integers(1, 5, size=(n_panel, n_variants)).astype(np.uint8)
    # few distinct values so that ties in distance happen
    panel = np.where(rng.random(panel.shape) < 0.5, 1, panel).astype(np.uint8)
    target = rng.integers(1, 5, size=(n_target, n_variants)).astype(np.uint8)
    target[rng.random(target.shape) < draw(st.floats(0.0, 1.0))] = 0
    k = draw(st.integers(1, 12))
    window = draw(st.integers(0, 12))
    chunk = draw(st.sampled_from([1, 50, 1 << 24]))
    return panel, target, k, window, chunk


@settings(max_examples=150, deadline=None)
@given(knn_case())
def test_knn_votes_match_slow_reference(case):
    panel, target, k, window, chunk = case
    fast = knn_vote_probs(panel, target, k, window, chunk_elements=chunk)
    slow = slow_knn_probs(panel, target, k, window)
    np.testing.assert_allclose(fast, slow, atol=1e-6)


def test_knn_imputation_calls_are_most_voted_and_observed_kept(tmp_path):
    rng = np.random.default_rng(3)
    panel = rng.integers(1, 5, size=(12, 40)).astype(np.uint8)
    target = rng.integers(1, 5, size=(4, 40)).astype(np.uint8)
    target[rng.random(target.shape) < 0.4] = 0
    imputer = KnnImputer(KnnOptions(k=3, window=5))
    ctx = RunContext(work_dir=tmp_path)
    imputer.fit(_matrix(panel), None, ctx)
    result = check_imputation("knn", imputer.impute(_matrix(target), ctx), _matrix(target))
    slow = slow_knn_probs(panel, target, 3, 5)
    missing = target == 0
    np.testing.assert_allclose(result.probs[missing], slow[missing], atol=1e-6)
    expected = [slow_call(p) for p in slow[missing].tolist()]
    assert result.calls[missing].tolist() == expected
    assert np.array_equal(result.calls[~missing], target[~missing])
    np.testing.assert_allclose(result.dosage, result.probs @ np.array([0, 1, 1, 2], dtype=np.float32), atol=1e-6)


def test_knn_with_identical_haplotype_in_panel_recovers_it(tmp_path):
    """A target equal to a panel sample, masked sparsely, is filled from that sample (k=1)."""
    sim = simulate_matrix(n_samples=30, sequence_length=60_000, seed=5)
    panel = sim.take_samples(np.arange(29))
    codes = panel.codes[7:8].copy()
    rng = np.random.default_rng(0)
    masked = codes.copy()
    masked[rng.random(codes.shape) < 0.1] = 0
    ctx = RunContext(work_dir=tmp_path)
    imputer = KnnImputer(KnnOptions(k=1, window=30))
    imputer.fit(panel, None, ctx)
    result = imputer.impute(panel.take_samples(np.array([7])).with_codes(masked), ctx)
    assert np.array_equal(result.calls, codes)


def slow_major(panel: np.ndarray) -> np.ndarray:
    out = np.zeros(panel.shape[1], dtype=np.uint8)
    for v in range(panel.shape[1]):
        counts = {c: int((panel[:, v] == c).sum()) for c in (1, 2, 3, 4)}
        out[v] = max((1, 2, 3, 4), key=lambda c: (counts[c], -c))  # most frequent, then lowest
    return out


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 8), st.integers(1, 20), st.integers(0, 2**32 - 1))
def test_major_fills_most_frequent_code(n_panel, n_variants, seed):
    rng = np.random.default_rng(seed)
    panel = rng.integers(1, 5, size=(n_panel, n_variants)).astype(np.uint8)
    target = rng.integers(1, 5, size=(3, n_variants)).astype(np.uint8)
    target[rng.random(target.shape) < 0.5] = 0
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        ctx = RunContext(work_dir=work)
        imputer = MajorImputer()
        imputer.fit(_matrix(panel), None, ctx)
        result = check_imputation("major", imputer.impute(_matrix(target), ctx), _matrix(target))
    expected = np.where(target == 0, slow_major(panel)[None, :], target)
    assert np.array_equal(result.calls, expected)
    assert np.array_equal(result.probs.argmax(axis=2) + 1, expected)
    np.testing.assert_array_equal(result.dosage, np.array([0, 0, 1, 1, 2], dtype=np.float32)[expected])


def test_knn_beats_major_on_simulated_haplotypes(tmp_path):
    sim = simulate_matrix(n_samples=120, sequence_length=300_000, seed=2)
    panel, target = sim.take_samples(np.arange(100)), sim.take_samples(np.arange(100, 120))
    rng = np.random.default_rng(1)
    mask = rng.random(target.codes.shape) < 0.2
    masked = target.with_codes(np.where(mask, 0, target.codes).astype(np.uint8))
    ctx = RunContext(work_dir=tmp_path)
    accuracy = {}
    for imputer in (MajorImputer(), KnnImputer()):
        imputer.fit(panel, None, ctx)
        calls = imputer.impute(masked, ctx).calls
        truth_dosage = np.array([0, 0, 1, 1, 2])[target.codes[mask]]
        accuracy[imputer.name] = (np.array([0, 0, 1, 1, 2])[calls[mask]] == truth_dosage).mean()
    assert accuracy["knn"] > accuracy["major"] + 0.01, accuracy


def test_knn_rejects_bad_options(tmp_path):
    sim = simulate_matrix(n_samples=10, sequence_length=20_000, seed=1)
    with pytest.raises(ImpbenchError, match="knn.k"):
        KnnImputer(KnnOptions(k=0)).fit(sim, None, RunContext(work_dir=tmp_path))


def test_baseline_rejects_panel_with_missing_codes(tmp_path):
    sim = simulate_matrix(n_samples=10, sequence_length=20_000, seed=1)
    codes = sim.codes.copy()
    codes[0, 0] = 0
    with pytest.raises(ImpbenchError, match="major"):
        MajorImputer().fit(sim.with_codes(codes), None, RunContext(work_dir=tmp_path))


# ---------------------------------------------------------------------------- allele-freq: the frequency-only floor
from impbench.imputers.baselines import AlleleFreqImputer, AlleleFreqOptions  # noqa: E402
from impbench.testing import ImputerContract  # noqa: E402


class TestAlleleFreqContract(ImputerContract):
    imputer_cls = AlleleFreqImputer


def test_allele_freq_is_2f_with_hardy_weinberg_probabilities(tmp_path):
    sim = simulate_matrix(n_samples=120, sequence_length=40_000, seed=7)
    panel, target = sim.take_samples(np.arange(100)), sim.take_samples(np.arange(100, 120))
    ctx = RunContext(work_dir=tmp_path, seed=0)
    imputer = AlleleFreqImputer(AlleleFreqOptions())
    imputer.fit(panel, None, ctx)
    masked = target.codes.copy()
    masked[::2] = 0  # half the samples fully masked
    result = imputer.impute(target.with_codes(masked), ctx)
    check_imputation("allele-freq", result, target.with_codes(masked))
    # slow reference: the panel's ALT frequency counted allele by allele
    alleles = np.array([0, 0, 1, 1, 2])[panel.codes]
    f = alleles.sum(axis=0) / (2 * panel.n_samples)
    np.testing.assert_allclose(result.dosage[::2], np.broadcast_to(2 * f, result.dosage[::2].shape), atol=1e-5)
    expected = np.stack([(1 - f) ** 2, (1 - f) * f, f * (1 - f), f ** 2], axis=1)
    np.testing.assert_allclose(result.probs[0], expected, atol=1e-6)
    assert np.array_equal(result.calls[1::2], target.codes[1::2])  # observed kept
    # every sample gets the same answer: it knows nothing about the individual
    assert np.array_equal(result.calls[0], result.calls[2])
    assert all(slow_call(expected[v]) == result.calls[0, v] for v in range(sim.n_variants))


def test_allele_freq_is_a_default_builtin():
    from impbench.bench.settings import RunSettings, plan_imputers
    from impbench.imputers import registry

    info = registry.get_imputers()["allele-freq"]
    assert info.cls is AlleleFreqImputer and info.distribution == "impbench"
    names = [plan.name for plan in plan_imputers(RunSettings(dataset="x"))]
    assert {"major", "knn", "allele-freq"} <= set(names)
