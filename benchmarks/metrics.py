"""Time ``impbench.scoring.metrics.score`` and the bootstrap on a large synthetic replicate.

Default: 300 samples x 250,000 variants, 25% of cells masked (uniform), both protocols; the
imputation is the truth with 10% of masked cells replaced by random codes and a noisy dosage
(the values do not matter for the timing, only the sizes do). Then 1,000 bootstrap resamples
of the standard scores (``bootstrap_metrics``) and a paired difference against a second
imputation (``paired_differences``), timed on their own and as the extra over scoring.

Both with one genomic block (the samples-only bootstrap, as before the two-way bootstrap) and
with the run's default blocks (variants 250 bp apart, so 250,000 variants span 62.5 Mb: 100
blocks of 625 kb, ``block_length_for``), so the table's ratios compare the two in one run.

    .venv/bin/python benchmarks/metrics.py [--samples 300] [--variants 250000] [--rate 0.25] [--boot 1000]

Time is the best of ``--repeat`` calls; peak memory is the peak of the arrays allocated during
one more call (``tracemalloc``, which numpy reports its buffers to), beyond the inputs.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np


def _inputs(n_samples: int, n_variants: int, rate: float, seed: int = 0):
    from impbench.genotypes import CALL_DOSAGE, alt_allele_frequency
    from impbench.imputers.base import Imputation
    from impbench.bench.masking import make_mask

    rng = np.random.default_rng(seed)
    freq = rng.beta(0.3, 2.0, size=n_variants).astype(np.float32)
    a0 = rng.random((n_samples, n_variants), dtype=np.float32) < freq
    a1 = rng.random((n_samples, n_variants), dtype=np.float32) < freq
    truth = (1 + a1 + 2 * a0).astype(np.uint8)
    del a0, a1
    mask = make_mask(truth, rate, seed)
    calls = truth.copy()
    wrong = mask & (rng.random(truth.shape, dtype=np.float32) < 0.1)
    calls[wrong] = rng.integers(1, 5, size=int(wrong.sum()), dtype=np.uint8)
    dosage = CALL_DOSAGE[calls - 1] + rng.normal(0, 0.05, size=truth.shape).astype(np.float32)
    np.clip(dosage, 0, 2, out=dosage)
    covered = rng.random(n_variants) < 0.98
    alt_freq = alt_allele_frequency(truth)
    return truth, Imputation(calls=calls, dosage=dosage, covered=covered), mask, alt_freq


def _measure(inputs, protocol: str, repeat: int, blocks=None):
    from impbench.scoring.metrics import score

    truth, imputation, mask, alt_freq = inputs
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        scores = score(truth, imputation, mask, train_alt_freq=alt_freq, protocol=protocol, blocks=blocks)
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    score(truth, imputation, mask, train_alt_freq=alt_freq, protocol=protocol, blocks=blocks)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n_scored = int(scores.metrics.loc[scores.metrics["bin"] == "overall", "n_genotypes"].iloc[0])
    return protocol, best, peak / 2**20, n_scored, len(scores.metrics), scores


def _best(function, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--variants", type=int, default=250_000)
    parser.add_argument("--rate", type=float, default=0.25)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from impbench.scoring.bootstrap import block_length_for, bootstrap_metrics, genomic_blocks, paired_differences

    inputs = _inputs(args.samples, args.variants, args.rate)
    input_mb = sum(a.nbytes for a in (inputs[0], inputs[1].calls, inputs[1].dosage, inputs[2])) / 2**20
    positions = np.arange(args.variants, dtype=np.int64) * 250 + 1
    blocks = genomic_blocks(positions, block_length_for(positions, None))
    n_blocks = int(blocks.max()) + 1
    console = Console()
    table = Table(title=f"impbench.scoring.metrics.score: {args.samples} samples x {args.variants:,} variants, {args.rate:.0%} masked")
    for column in ("protocol", "blocks", "seconds", "ratio to 1 block", "peak MB", "scored cells", "metric rows"):
        table.add_column(column, justify="right")
    timed = {}
    for protocol in ("standard", "paper"):
        for label, b in (("1", None), (str(n_blocks), blocks)):
            timed[(protocol, label)] = _measure(inputs, protocol, args.repeat, b)
    for (protocol, label), (_, seconds, peak, n_scored, n_rows, _) in timed.items():
        ratio = seconds / timed[(protocol, "1")][1]
        table.add_row(protocol, label, f"{seconds:.2f}", f"{ratio:.2f}", f"{peak:.0f}", f"{n_scored:,}", str(n_rows))
    console.print(table)
    console.print(f"inputs (truth, calls, dosage, mask): {input_mb:.0f} MB")

    ci = Table(title=f"bootstrap over {args.samples} test samples (x {n_blocks} genomic blocks), {args.boot:,} resamples "
                     "(standard, all pooled metrics, 9 bins)")
    for column in ("step", "samples only (1 block)", f"two-way ({n_blocks} blocks)", "ratio", "two-way extra over scoring"):
        ci.add_column(column, justify="right")
    seconds = {}
    for label in ("1", str(n_blocks)):
        stats = timed[("standard", label)][5].sample_stats
        seconds[(label, "boot")] = _best(lambda: bootstrap_metrics(stats, n_boot=args.boot, seed=0), args.repeat)
        seconds[(label, "pairs")] = _best(lambda: paired_differences(stats, stats, n_boot=args.boot, seed=0), args.repeat)
    score_seconds = timed[("standard", str(n_blocks))][1]
    for step, key in (("bootstrap_metrics", "boot"), ("paired_differences (one pair)", "pairs")):
        one, two = seconds[("1", key)], seconds[(str(n_blocks), key)]
        ci.add_row(step, f"{one:.3f}", f"{two:.3f}", f"{two / one:.1f}", f"+{two / score_seconds:.0%}")
    console.print(ci)
    console.print(f"score (standard, {n_blocks} blocks) alone: {score_seconds:.2f} s")


if __name__ == "__main__":
    main()
