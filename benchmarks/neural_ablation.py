"""Ablation of BiU-Net's claims on sim-1kgp, under one training-time budget per variant.

Each variant trains BiU-Net from scratch on the training split (validation split for model
selection, ``train_seconds`` = the budget) and is scored on the test split: masked-cell
minor-allele dosage R² (minor allele of the training panel) under a seeded uniform mask at each
level, beside knn. Learning curves (validation R² against training seconds) go to a PNG.

Variants: the reference-free ``cpu`` preset (haplotype mosaics, per-segment perceptron) with
and without mosaics, and on genotypes instead of haplotypes; then, on the U-Net recipe
``unet-cpu`` (U-Net width 4 + shared dense branch): the position channel on vs off; hybrid vs
focal vs CE loss; segment length 64 / 128 / 256; with vs without the dense branch; ``paper``
vs ``paper-text`` (the published network) for the same budget.

    python benchmarks/neural_ablation.py                        # ~17 min on 2 cores
    python benchmarks/neural_ablation.py --seconds 30 --only cpu,cpu-no-mosaic
    python benchmarks/neural_ablation.py --png /tmp/ablation.png --threads 2

Wall and CPU seconds are printed per variant: on a shared machine the same budget buys fewer
epochs, so compare variants of one run, not across runs.
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

#: The paper's claims are ablated on the U-Net recipe (``unet-cpu``: U-Net width 4 + shared
#: dense branch on genotypes); the reference-free ``cpu`` preset (haplotype mosaics, per-segment
#: perceptron) is ablated on its own ideas.
UNET = {"preset": "unet-cpu"}
VARIANTS: dict[str, dict] = {
    "cpu": {},
    "cpu-no-mosaic": {"mosaic_switches": -1},
    "cpu-genotypes": {"haplotypes": False, "mosaic_switches": -1},
    "unet-cpu": dict(UNET),
    "no-position": dict(UNET, use_position=False),
    "hybrid": dict(UNET, loss="hybrid"),
    "focal": dict(UNET, loss="focal"),
    "segment-64": dict(UNET, segment_length=64, segment_overlap=8),
    "segment-256": dict(UNET, segment_length=256, segment_overlap=32),
    "no-dense": dict(UNET, dense_hidden=0),
    "paper": {"preset": "paper"},
    "paper-text": {"preset": "paper-text"},
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
    """Masked minor-allele dosage R² of ``imputer`` on the test split at each level."""
    from impbench.nn.validation import minor_is_ref, scores_from_statistics, sufficient_statistics

    flip = minor_is_ref(train.codes)
    out = {}
    for level in LEVELS:
        mask = seeded_test_mask(test.codes, level, seed)
        result = imputer.impute(test.with_codes(np.where(mask, 0, test.codes).astype(np.uint8)), ctx)
        r2, _ = scores_from_statistics(sufficient_statistics(test.codes, result.dosage, result.calls, mask, flip))
        out[level] = r2
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="sim-1kgp")
    parser.add_argument("--seconds", type=float, default=75.0, help="training budget per variant (train_seconds)")
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
          f"budget {args.seconds:g} s per variant, {args.threads} threads")
    registered = get_imputers()
    logging.basicConfig(level=logging.WARNING)
    rows, curves = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(work_dir=Path(tmp) / "knn", threads=args.threads, seed=args.seed, dataset=args.dataset)
        knn = registered["knn"].cls(make_options(registered["knn"].cls.Options, {}, "knn"))
        knn.fit(train, val, ctx)
        rows.append({"variant": "knn", "r2": test_scores(knn, train, test, ctx, args.seed), "wall": 0.0, "cpu": 0.0, "info": {}})
        biunet = registered["biunet"].cls
        for name in names:
            options = dict(VARIANTS[name], train_seconds=args.seconds, resume=False)
            options.setdefault("patience", 0)
            imputer = biunet(make_options(biunet.Options, options, "biunet"))
            ctx = RunContext(work_dir=Path(tmp) / name, threads=args.threads, seed=args.seed, dataset=args.dataset)
            wall0, cpu0 = time.perf_counter(), cpu_seconds()
            imputer.fit(train, val, ctx)
            wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
            info = imputer.manifest_info()
            curves[name] = info.get("validation_curve", [])
            rows.append({"variant": name, "r2": test_scores(imputer, train, test, ctx, args.seed), "wall": wall, "cpu": cpu, "info": info})
            print(f"  {name}: {info['epochs_run']} epochs, best {info['best_epoch']}, val R2 {info['best_val_r2']}, {wall:.0f} s wall, {cpu:.0f} s CPU", flush=True)

    print(f"\n## BiU-Net ablation on {args.dataset}: masked minor-allele dosage R² on the test split ({args.seconds:g} s training budget each)\n")
    print("| variant | params | epochs | best epoch | stop | val R² | " + " | ".join(f"test R² @{lv:g}" for lv in LEVELS) + " | fit wall s | fit CPU s |")
    print("|---|---:|---:|---:|---|---:|" + "---:|" * len(LEVELS) + "---:|---:|")
    for row in rows:
        info = row["info"]
        cells = " | ".join(f"{row['r2'][lv]:.4f}" for lv in LEVELS)
        print(f"| {row['variant']} | {info.get('params', '-')} | {info.get('epochs_run', '-')} | {info.get('best_epoch', '-')} | "
              f"{info.get('stop_reason', '-')} | {info.get('best_val_r2', '-')} | {cells} | {row['wall']:.0f} | {row['cpu']:.0f} |")
    draw(curves, rows[0]["r2"], args.png, args.dataset, args.seconds)
    print(f"\nlearning curves: {args.png}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "curves": curves}, indent=1, default=str) + "\n")
    return 0


def draw(curves: dict, knn_r2: dict, path: str, dataset: str, seconds: float) -> None:
    """Validation R² against cumulative training seconds, one line per variant; knn's test R²
    at 15 % as a reference line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, curve in curves.items():
        points = [(c["train_seconds"], c["val_r2"]) for c in curve if c["val_r2"] is not None]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", markersize=3, label=name)
    ax.axhline(knn_r2[0.15], color="black", linestyle="--", linewidth=1, label="knn (test, 15 %)")
    ax.set_xlabel("training seconds")
    ax.set_ylabel("validation masked minor-allele dosage R²")
    ax.set_title(f"BiU-Net ablation on {dataset} ({seconds:g} s budget each)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
