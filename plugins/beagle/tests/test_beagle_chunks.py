"""Beagle by region (chunks.py): window planning against a slow reference, merging, stopping the
other regions on a failure, and a real chunked run agreeing with the unchunked one."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from impbench.data.simulate import simulate_matrix
from impbench.errors import ImpbenchError
from impbench.genotypes import MISSING, code_dosage
from impbench.imputers.base import RunContext, check_imputation
from impbench_beagle import BeagleImputer, BeagleOptions
from impbench_beagle.chunks import merge_outputs, plan_windows
from impbench_beagle.parallel import run_parallel
from impbench_beagle.output import BeagleOutput


def slow_owner(positions, chunk_bp, overlap_bp):
    """For each position: the index (among non-empty cores, in order) of the window where it is
    furthest from an edge, looping over every window of every core."""
    first, last = min(positions), max(positions)
    cores = sorted({(p - first) // chunk_bp for p in positions})
    owners = []
    for p in positions:
        best, best_d = None, None
        for w, core in enumerate(cores):
            lo, hi = first + core * chunk_bp - overlap_bp, first + (core + 1) * chunk_bp - 1 + overlap_bp
            if lo <= p <= hi:
                d = min(p - lo, hi - p)
                if best_d is None or d > best_d:
                    best, best_d = w, d
        owners.append(best)
    return owners


@pytest.mark.parametrize("chunk_bp, overlap_bp", [(100, 0), (100, 30), (100, 70), (1000, 10), (37, 200)])
def test_windows_own_every_variant_once_as_the_slow_reference(chunk_bp, overlap_bp):
    rng = np.random.default_rng(chunk_bp + overlap_bp)
    positions = np.sort(np.concatenate([rng.integers(1_000, 1_400, 60), rng.integers(2_000, 2_100, 30)]))
    windows = plan_windows(positions, chunk_bp, overlap_bp)
    owner = np.full(positions.size, -1)
    for window in windows:
        assert np.all(owner[window.owned] == -1)
        owner[window.owned] = window.index
        assert set(window.owned.tolist()) <= set(window.variants.tolist())
        inside = (positions >= window.start) & (positions <= window.end)
        assert np.array_equal(window.variants, np.flatnonzero(inside))
        assert window.start >= positions.min() and window.end <= positions.max()
    assert owner.tolist() == slow_owner(positions.tolist(), chunk_bp, overlap_bp)
    assert plan_windows(positions, 10**9, 0)[0].owned.size == positions.size  # one window holds all


def test_merge_takes_each_variant_from_its_owner():
    target = simulate_matrix(n_samples=6, sequence_length=30_000, seed=2)
    n_samples, n_variants = target.codes.shape
    windows = plan_windows(target.positions, 8_000, 3_000)
    assert len(windows) > 2
    parts = []
    for window in windows:  # each window "imputes" its index + 1 into every cell
        n = window.variants.size
        value = window.index + 1
        parts.append((window, BeagleOutput(
            covered=np.ones(n, bool), calls=np.full((n_samples, n), value, np.uint8),
            ds=np.full((n_samples, n), value, np.float32), dr2=np.full(n, value / 10, np.float32),
            imputed=np.zeros(n, bool), allele_probs={0: np.full((n_samples, 2), value, np.float32)})))
    merged = merge_outputs(target, parts)
    expected = np.empty(n_variants)
    for window in windows:
        expected[window.owned] = window.index + 1
    assert merged.covered.all()
    assert np.array_equal(merged.calls, np.broadcast_to(expected, (n_samples, n_variants)))
    assert np.array_equal(merged.ds[0], expected) and np.allclose(merged.dr2, expected / 10)
    # window k's local variant 0 is kept only where window k owns it
    kept = {j for window in windows for j in [int(window.variants[0])] if j in set(window.owned.tolist())}
    assert set(merged.allele_probs) == kept


def test_a_failing_region_stops_the_others():
    windows = plan_windows(np.arange(1, 1001) * 10, 1_000, 0)
    stopped = []

    def run_one(window, cancel):
        if window.index == 1:
            raise ImpbenchError("region 1 failed")
        deadline = time.monotonic() + 30
        while not cancel.is_set():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        stopped.append(window.index)
        raise ImpbenchError("stopped")

    start = time.monotonic()
    with pytest.raises(ImpbenchError, match="region 1 failed"):
        run_parallel(windows, run_one, jobs=3)
    assert time.monotonic() - start < 10
    assert stopped and 1 not in stopped and threading.active_count() < 5


def test_chunk_options_checked(tmp_path):
    target = simulate_matrix(n_samples=4, sequence_length=10_000, seed=1)
    ctx = RunContext(work_dir=tmp_path, threads=1, seed=1)
    for options, words in [(BeagleOptions(overlap_mb=1), "needs beagle.chunk_mb"),
                           (BeagleOptions(chunk_mb=0), "chunk_mb=0: must be > 0"),
                           (BeagleOptions(chunk_mb=1, overlap_mb=-1), "overlap_mb=-1"),
                           (BeagleOptions(chunk_mb=1, chunk_jobs=0), "chunk_jobs=0")]:
        with pytest.raises(ImpbenchError, match=words):
            BeagleImputer(options).fit(target, None, ctx)


def masked_concordance(truth, imputation, mask) -> float:
    return float((code_dosage(truth.codes)[mask] == code_dosage(imputation.calls)[mask]).mean())


@pytest.mark.beagle
def test_chunked_agrees_with_unchunked(tmp_path):
    """~7,000 variants over 2 Mb, 170 samples: 150 panel, 20 target with 10% of cells masked.
    Regions of 0.5 Mb + 0.25 Mb each side: overall concordance on masked cells within 0.002."""
    full = simulate_matrix(n_samples=170, sequence_length=2_000_000, seed=11)
    panel, truth = full.take_samples(np.arange(150)), full.take_samples(np.arange(150, 170))
    mask = np.random.default_rng(11).random(truth.codes.shape) < 0.10
    codes = truth.codes.copy()
    codes[mask] = MISSING
    masked = truth.with_codes(codes)
    scores, infos = {}, {}
    for name, options in [("whole", BeagleOptions(sporadic="hard")),
                          ("regions", BeagleOptions(chunk_mb=0.5, overlap_mb=0.25, chunk_jobs=2, sporadic="hard"))]:
        ctx = RunContext(work_dir=tmp_path / name, threads=2, seed=3)
        imputer = BeagleImputer(options)
        imputer.fit(panel, None, ctx)
        imputation = check_imputation("beagle", imputer.impute(masked, ctx), masked)
        observed = ~mask
        assert np.array_equal(imputation.calls[observed], masked.codes[observed])
        scores[name] = masked_concordance(truth, imputation, mask)
        infos[name] = imputer.manifest_info()["runs"][-1]
    assert infos["regions"]["regions"] == 4 and infos["regions"]["region_jobs"] == 2
    assert scores["whole"] > 0.9
    assert abs(scores["regions"] - scores["whole"]) <= 0.002, scores
    logs = sorted(p.name for p in (tmp_path / "regions").rglob("region*.log"))
    assert logs == [f"region{i:04d}.log" for i in range(4)]
