"""Are the bootstrap CIs honest? Re-split sim-1kgp with split seeds 0..N-1 (the card's
``[split] seed``), run the same imputers on each split, and compare the spread of the estimates
across splits with the bootstrap's own SD.

Per imputer, MAF class (and overall) and metric (``r2``: the class's pooled dosage R²;
``r2_bin_mean``: the headline), the table prints

- ``across SD``: the SD (ddof 1) of the point estimates over the splits;
- ``boot SD``: the mean over splits of the bootstrap SD, for the two-way bootstrap (test samples
  x genomic blocks, the run's default) and for the samples-only one (the bootstrap before);
- ``ratio``: across SD / mean boot SD (target <= 1.15: the CIs are not too narrow).

With N splits the across-split SD has N - 1 degrees of freedom: with 5 splits a ratio's own 95%
range is about x0.35 to x1.67 of its true value, so read the ratios over all rows together.

    nice .venv/bin/python benchmarks/resplit.py --imputers major,knn --splits 5 --levels 0.15

Runs use ``--executor inline``; their folders go under ``--out`` (default a temporary folder).
Wall time is not measured (the numbers do not depend on load).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

# benchmarks/array.py would shadow the standard library's array module (cyvcf2 imports it)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def split_cards(folder: Path, n_splits: int) -> list[str]:
    """Copies of the sim-1kgp card, ``sim-1kgp-s<k>`` with ``[split] seed = k``."""
    text = (REPO / "datasets" / "sim-1kgp.toml").read_text()
    head, split = text.split("[split]", 1)
    names = []
    for k in range(n_splits):
        name = f"sim-1kgp-s{k}"
        body = re.sub(r"(?m)^seed\s*=.*$", f"seed = {k}", split, count=1)
        (folder / f"{name}.toml").write_text(head + "[split]" + body)
        names.append(name)
    return names


def estimates(run_dir: Path, imputer: str, level: float, n_boot: int, seed: int):
    """{(class, metric): (point, two-way SD, samples-only SD)} of one imputer in one run."""
    from impbench.bench.results import RunFolder
    from impbench.scoring.aggregate import regroup
    from impbench.scoring.bootstrap import two_way_weights
    from impbench.scoring.classes import DEFAULT_MAF_CLASSES, class_bins
    from impbench.scoring.metrics import DEFAULT_BIN_EDGES
    from impbench.scoring.pooled import pool_replicates, r2_bin_mean

    folder = RunFolder(run_dir)
    per_rep = []
    for replicate in range(1000):
        stats = folder.read_stats(imputer, level, replicate)
        if stats is None:
            break
        per_rep.append(stats["standard"])
    pooled = pool_replicates(per_rep)
    groups = class_bins(DEFAULT_BIN_EDGES, DEFAULT_MAF_CLASSES)
    labels = [label for label, _, _ in DEFAULT_MAF_CLASSES]
    classes = regroup(pooled, groups, labels)
    r2 = pooled.metric_names.index("r2")
    n_bins = len(pooled.labels)
    members = [np.asarray(g) for g in groups] + [np.arange(n_bins)]
    out: dict = {}
    sds = []
    for blocks in (True, False):
        w, bw = two_way_weights(pooled.n_samples, pooled.n_blocks, n_boot, seed, resample_blocks=blocks)
        pooled_r2 = classes.values(w, bw)[:, r2, :]  # (B, classes + overall)
        headline = r2_bin_mean(pooled.values(w, bw)[:, r2, :n_bins], members)
        sds.append((np.nanstd(pooled_r2, axis=0, ddof=1), np.nanstd(headline, axis=0, ddof=1)))
    point_r2 = classes.values()[0, r2, :]
    point_headline = r2_bin_mean(pooled.values()[0, r2, :n_bins], members)
    for g, label in enumerate(labels + ["overall"]):
        out[(label, "r2")] = (point_r2[g], sds[0][0][g], sds[1][0][g])
        out[(label, "r2_bin_mean")] = (point_headline[g], sds[0][1][g], sds[1][1][g])
    return out, pooled.n_blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imputers", default="major,knn")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--levels", type=float, default=0.15)
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--boot", type=int, default=500)
    parser.add_argument("--block-length", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from impbench.bench.runner import run_benchmark
    from impbench.bench.settings import RunSettings

    imputers = [n for n in args.imputers.split(",") if n]
    out = args.out or Path(tempfile.mkdtemp(prefix="impbench-resplit-"))
    cards = out / "cards"
    cards.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    n_blocks = None
    for k, name in enumerate(split_cards(cards, args.splits)):
        settings = RunSettings(dataset=name, imputers=imputers, levels=(args.levels,), replicates=args.replicates,
                               cards=[cards], out=out / "runs", run_name=f"split{k}", executor="inline",
                               n_boot=100, block_length=args.block_length)
        outcome = run_benchmark(settings, show_progress=False)
        if outcome.failures:
            raise SystemExit(f"split {k}: {outcome.failures}")
        for imputer in imputers:
            values, n_blocks = estimates(outcome.run_dir, imputer, args.levels, args.boot, seed=k)
            for key, value in values.items():
                results.setdefault((imputer, *key), []).append(value)
        print(f"split {k} done: {outcome.run_dir}")

    table = Table(title=f"sim-1kgp, {args.splits} splits, level {args.levels:g}, {args.replicates} replicates, "
                        f"{args.boot} resamples, {n_blocks} blocks: across-split SD / mean bootstrap SD")
    for column in ("imputer", "class", "metric", "mean", "across SD", "boot SD 2-way", "ratio 2-way",
                   "boot SD samples", "ratio samples"):
        table.add_column(column, justify="right" if column not in ("imputer", "class", "metric") else "left")
    for (imputer, label, metric), rows in results.items():
        values = np.array(rows, dtype=float)  # (splits, 3)
        across = np.nanstd(values[:, 0], ddof=1)
        two_way, samples = np.nanmean(values[:, 1]), np.nanmean(values[:, 2])
        table.add_row(imputer, label, metric, f"{np.nanmean(values[:, 0]):.4f}", f"{across:.4f}",
                      f"{two_way:.4f}", f"{across / two_way:.2f}" if two_way > 0 else "-",
                      f"{samples:.4f}", f"{across / samples:.2f}" if samples > 0 else "-")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
