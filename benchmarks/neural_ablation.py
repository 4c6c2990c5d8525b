"""Ablation of BiU-Net's recipe on sim-1kgp, under one step budget per variant.

Each variant trains from scratch on the training split (validation split for model selection,
``--epochs`` epochs: a budget in optimiser steps, so the table does not depend on the machine's
load) and is scored on the test split with ``impbench.scoring`` (masked-cell minor-allele dosage
R², the benchmark's number) under a seeded uniform mask at each level, beside knn. Learning
curves (validation R² against optimiser steps) go to a PNG.

Variants: BiU-Net's ``cpu`` preset (the U-Net, width 8, haplotype rows); with the panel's
allele-frequency channel; with lr 5e-3; on genotype rows instead of haplotypes; without the
position channel; with the hybrid loss over all cells; at width 4; ``paper`` and
``paper-text`` (width 32, their own recipes) for the same epochs; and ``hapmlp``
(impbench's per-segment haplotype perceptron).

    python benchmarks/neural_ablation.py                        # all variants, 10 epochs each
    python benchmarks/neural_ablation.py --epochs 30 --only cpu,cpu-freq
    python benchmarks/neural_ablation.py --png /tmp/ablation.png --threads 2

Wall and CPU seconds are printed per variant: they depend on the machine's load; the R² do not.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: variant -> (imputer, options); every option not named is the imputer's default preset.
VARIANTS: dict[str, tuple[str, dict]] = {
    "cpu": ("biunet", {}),
    "cpu-freq": ("biunet", {"frequency_channel": True}),
    "cpu-lr5e-3": ("biunet", {"lr": 5e-3}),
    "cpu-freq-lr5e-3": ("biunet", {"frequency_channel": True, "lr": 5e-3}),
    "cpu-genotypes": ("biunet", {"haplotypes": False}),
    "no-position": ("biunet", {"use_position": False}),
    "hybrid-all-cells": ("biunet", {"loss": "hybrid", "loss_positions": "all"}),
    "width-4": ("biunet", {"base_channels": 4}),
    "paper": ("biunet", {"preset": "paper"}),
    "paper-text": ("biunet", {"preset": "paper-text"}),
    "hapmlp": ("hapmlp", {}),
}
LEVELS = (0.05, 0.15, 0.25)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def seeded_test_mask(codes: np.ndarray, level: float, seed: int) -> np.ndarray:
    """Exactly ``round(level * cells)`` cells of ``codes`` (uint8 (n, m)), seeded; bool (n, m)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(round(level * 10_000))]))
    flat = np.zeros(codes.size, dtype=bool)
    flat[rng.choice(codes.size, int(round(level * codes.size)), replace=False)] = True
    return flat.reshape(codes.shape)


def test_scores(imputer, train, test, ctx, seed: int) -> dict[float, float]:
    """The benchmark's masked minor-allele dosage R² (overall) of ``imputer`` on the test split
    at each level."""
    from impbench.genotypes import alt_allele_frequency
    from impbench.scoring.metrics import score

    freq = alt_allele_frequency(train.codes)
    out = {}
    for level in LEVELS:
        mask = seeded_test_mask(test.codes, level, seed)
        result = imputer.impute(test.with_codes(np.where(mask, 0, test.codes).astype(np.uint8)), ctx)
        metrics = score(test.codes, result, mask, train_alt_freq=freq).metrics
        out[level] = float(metrics[(metrics["bin"] == "overall") & (metrics["metric"] == "r2")]["value"].iloc[0])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="sim-1kgp")
    parser.add_argument("--epochs", type=int, default=10, help="training budget per variant (epochs; steps per epoch are the variant's)")
    parser.add_argument("--only", default="", help="comma list of variants (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", default="neural_ablation.png")
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args(argv)

    from impbench.data.cards import get_card
    from impbench.data.prepare import prepare
    from impbench.imputers.base import RunContext, make_options
    from impbench.imputers.registry import get_imputers

    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    store = prepare(get_card(args.dataset))
    train, val, test = (store.read_split(s) for s in ("train", "val", "test"))
    print(f"{args.dataset}: train {train.n_samples} x {train.n_variants}, val {val.n_samples}, test {test.n_samples}; "
          f"budget {args.epochs} epochs per variant, {args.threads} threads")
    registered = get_imputers()
    logging.basicConfig(level=logging.WARNING)
    rows, curves = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(work_dir=Path(tmp) / "knn", threads=args.threads, seed=args.seed, dataset=args.dataset)
        knn = registered["knn"].cls(make_options(registered["knn"].cls.Options, {}, "knn"))
        knn.fit(train, val, ctx)
        rows.append({"variant": "knn", "r2": test_scores(knn, train, test, ctx, args.seed), "wall": 0.0, "cpu": 0.0, "info": {}})
        for name in names:
            imputer_name, variant = VARIANTS[name]
            cls = registered[imputer_name].cls
            options = dict(variant, epochs=args.epochs, train_seconds=0, resume=False)
            options.setdefault("patience", 0)
            imputer = cls(make_options(cls.Options, options, imputer_name))
            ctx = RunContext(work_dir=Path(tmp) / name, threads=args.threads, seed=args.seed, dataset=args.dataset)
            wall0, cpu0 = time.perf_counter(), cpu_seconds()
            imputer.fit(train, val, ctx)
            wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
            info = imputer.manifest_info()
            curves[name] = info.get("validation_curve", [])
            rows.append({"variant": name, "r2": test_scores(imputer, train, test, ctx, args.seed), "wall": wall, "cpu": cpu, "info": info})
            print(f"  {name}: {info['epochs_run']} epochs ({info['steps']} steps), best {info['best_epoch']}, val R2 {info['best_val_r2']}, "
                  f"{wall:.0f} s wall, {cpu:.0f} s CPU", flush=True)

    print(f"\n## BiU-Net ablation on {args.dataset}: masked minor-allele dosage R² on the test split ({args.epochs} epochs each)\n")
    print("| variant | params | epochs | steps | best epoch | stop | val R² | " + " | ".join(f"test R² @{lv:g}" for lv in LEVELS) + " | fit wall s | fit CPU s |")
    print("|---|---:|---:|---:|---:|---|---:|" + "---:|" * len(LEVELS) + "---:|---:|")
    for row in rows:
        info = row["info"]
        cells = " | ".join(f"{row['r2'][lv]:.4f}" for lv in LEVELS)
        print(f"| {row['variant']} | {info.get('params', '-')} | {info.get('epochs_run', '-')} | {info.get('steps', '-')} | {info.get('best_epoch', '-')} | "
              f"{info.get('stop_reason', '-')} | {info.get('best_val_r2', '-')} | {cells} | {row['wall']:.0f} | {row['cpu']:.0f} |")
    draw(curves, rows[0]["r2"], args.png, args.dataset, args.epochs)
    print(f"\nlearning curves: {args.png}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "curves": curves}, indent=1, default=str) + "\n")
    return 0


def draw(curves: dict, knn_r2: dict, path: str, dataset: str, epochs: int) -> None:
    """Validation R² against optimiser steps, one line per variant; knn's test R²
    at 15 % as a reference line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, curve in curves.items():
        points = [(c["steps"], c["val_r2"]) for c in curve if c["val_r2"] is not None]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", markersize=3, label=name)
    ax.axhline(knn_r2[0.15], color="black", linestyle="--", linewidth=1, label="knn (test, 15 %)")
    ax.set_xlabel("optimiser steps")
    ax.set_ylabel("validation masked minor-allele dosage R²")
    ax.set_title(f"BiU-Net ablation on {dataset} ({epochs} epochs each)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
