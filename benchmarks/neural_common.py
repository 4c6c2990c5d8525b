"""Pieces shared by the neural-imputer benchmarks (``biunet.py``, ``scda.py``): process memory
readings, a random test matrix, and the accuracy table from a real ``impbench run``.

Imported by those scripts as a sibling module (``python benchmarks/biunet.py`` puts this folder
on ``sys.path``).
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np


def rss_mb() -> float:
    """This process's resident set size now, in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def seconds_per_step(one_step, device, repeats: int = 2) -> float:
    """Seconds one call of ``one_step()`` takes: one warm-up call, then the mean of ``repeats``
    timed calls (CUDA synchronised before and after)."""
    import torch

    one_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def random_matrix(n_samples: int, n_variants: int, seed: int):
    """A ``GenotypeMatrix`` of random codes (70% 0|0), codes uint8 (n_samples, n_variants)."""
    from impbench.genotypes import GenotypeMatrix

    rng = np.random.default_rng(seed)
    codes = rng.choice(np.arange(1, 5, dtype=np.uint8), p=[0.7, 0.1, 0.1, 0.1], size=(n_samples, n_variants))
    positions = np.cumsum(rng.integers(1, 400, size=n_variants)).astype(np.int64)
    ids = np.array([f"v{i}" for i in range(n_variants)], dtype=object)
    return GenotypeMatrix(
        codes=codes, positions=positions, contig="22", ref=np.full(n_variants, "A", dtype=object),
        alt=np.full(n_variants, "G", dtype=object), variant_ids=ids,
        sample_ids=np.array([f"s{i}" for i in range(n_samples)], dtype=object),
    )


def accuracy_table(
    *, dataset: str, names: Iterable[str], with_beagle: bool, options: Mapping[str, dict], out: str,
    run_name: str | None, device: str, threads: int | None, command: str, info_for: Iterable[str],
) -> None:
    """``impbench run`` (standard protocol, 3 levels x 3 replicates) of ``names`` (plus beagle
    when asked and installed), then print masked-cell dosage R2 and concordance (mean +- SD over
    replicates) per level with fit and mean impute seconds, and the manifest info of
    ``info_for``."""
    import pandas as pd

    from impbench.imputers.registry import get_imputers
    from impbench.bench.runner import run_benchmark
    from impbench.bench.settings import RunSettings

    registered = get_imputers()
    names = list(names)
    if with_beagle:
        if "beagle" in registered and shutil.which("beagle"):
            names.append("beagle")
        else:
            print("\n(beagle not installed: left out of the accuracy table)")
    names = [n for n in names if n in registered]
    settings = RunSettings(
        dataset=dataset, imputers=names, levels=(0.05, 0.15, 0.25), replicates=3, out=Path(out),
        run_name=run_name, device=device, threads=threads, seed=0, options=dict(options), command=command,
    )
    started = time.perf_counter()
    outcome = run_benchmark(settings, show_progress=sys.stderr.isatty())
    wall = time.perf_counter() - started
    run_dir = Path(outcome.run_dir)
    metrics = pd.read_csv(run_dir / "metrics.csv")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    overall = metrics[(metrics.protocol == "standard") & (metrics.bin == "overall") & metrics.metric.isin(["r2", "concordance"])]
    summary = overall.groupby(["imputer", "metric", "level"]).value.agg(["mean", "std"]).reset_index()
    levels = sorted(summary.level.unique())
    print(f"\n## Accuracy on {dataset} (standard protocol: masked cells, 3 replicates; run {run_dir}, {wall:.0f} s)\n")
    header = " | ".join(f"R2 @{lv:g}" for lv in levels) + " | " + " | ".join(f"concordance @{lv:g}" for lv in levels)
    print(f"| imputer | {header} | fit s | impute s (mean) |")
    print("|---|" + "---:|" * (2 * len(levels) + 2))
    for name in names:
        cells = []
        for metric in ("r2", "concordance"):
            for lv in levels:
                row = summary[(summary.imputer == name) & (summary.metric == metric) & (summary.level == lv)]
                cells.append(f"{row['mean'].iloc[0]:.4f} ± {row['std'].iloc[0]:.4f}" if len(row) else "-")
        entry = manifest.get("imputers", {}).get(name, {})
        unit_seconds = [u.get("seconds") for u in entry.get("impute") or [] if isinstance(u, dict)]
        unit_seconds = [s for s in unit_seconds if isinstance(s, (int, float))]
        impute_s = f"{np.mean(unit_seconds):.2f}" if unit_seconds else "-"
        fit_s = f"{entry['fit_seconds']:.1f}" if isinstance(entry.get("fit_seconds"), (int, float)) else "-"
        print(f"| {name} | " + " | ".join(cells) + f" | {fit_s} | {impute_s} |")
    for name in info_for:
        info = manifest.get("imputers", {}).get(name, {}).get("info")
        if info:
            print(f"\n{name}: {json.dumps(info)}")
    if outcome.failures:
        print(f"\nfailures: {outcome.failures}")
