"""A small, deterministic synthetic results folder (``docs/results.md`` format).

For tests and for looking at a report without running imputers. The numbers are plausible
(scores rise with MAF, replicates differ a little) but made up; nothing here scores anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from impbench.bench.metrics import bin_labels
from impbench.bench.results import COLUMNS, RunFolder

DEFAULT_EDGES = (0, 0.005, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
STANDARD_METRICS = ("r2", "concordance", "precision", "recall", "f1", "iqs", "nrd", "phased_accuracy",
                    "mean_variant_r2", "coverage")
PAPER_METRICS = ("accuracy", "precision", "recall", "f1", "r2")


def write_synthetic_run(run_dir: str | Path, imputers=("major", "knn"), levels=(0.05, 0.15), replicates: int = 3,
                        protocols=("standard",), bin_edges=DEFAULT_EDGES, failed: dict[str, int] | None = None,
                        n_samples: int = 12, cohorts=("YRI", "CEU", "CHB"), seed: int = 0) -> Path:
    """Write manifest.json, metrics.csv, per_sample.csv and confusion.csv under ``run_dir``.

    failed : imputer -> number of (level, replicate) units it finished before failing; its
    manifest status is ``failed`` with an error message, and only those units have results.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    failed = dict(failed or {})
    rng = np.random.default_rng(seed)
    edges = np.asarray(bin_edges, dtype=float)
    n_variants_bin = np.maximum(5, (4000 * np.exp(-np.arange(len(edges) - 1) * 0.45)).astype(int))
    mids = (edges[:-1] + edges[1:]) / 2
    labels = bin_labels(edges)
    units = [(level, rep) for level in levels for rep in range(replicates)]
    sample_ids = [f"tsk_{i}" for i in range(n_samples)]
    sample_cohort = [cohorts[i % len(cohorts)] for i in range(n_samples)]
    metric_rows, sample_rows, confusion_rows, manifest_imputers = [], [], [], {}
    for index, name in enumerate(imputers):
        quality = 0.55 + 0.4 * (index + 1) / len(imputers)
        n_done = failed.get(name, len(units))
        impute_records = []
        for unit_index, (level, rep) in enumerate(units[:n_done]):
            impute_records.append({"level": level, "replicate": rep, "seconds": round(0.5 * (index + 1) + 0.01 * rep, 3),
                                   "peak_mb": 50.0 + 20 * index, "n_covered": int(n_variants_bin.sum())})
            for protocol in protocols:
                names = STANDARD_METRICS if protocol == "standard" else PAPER_METRICS
                for b in range(-1, len(mids)):
                    maf = 0.1 if b < 0 else mids[b]
                    lo, hi = (0.0, 0.5) if b < 0 else (edges[b], edges[b + 1])
                    label = "overall" if b < 0 else labels[b]
                    n_var = int(n_variants_bin.sum() if b < 0 else n_variants_bin[b])
                    n_geno = int(round(n_var * n_samples * level))
                    base = quality * (1 - 0.5 * np.exp(-maf * 30)) * (1 - 0.2 * level)
                    for metric in names:
                        if metric == "coverage":
                            value = 1.0
                        elif metric == "nrd":
                            value = 1 - base
                        else:
                            value = base * (0.98 if metric in ("precision", "recall", "f1") else 1.0)
                        value = float(np.clip(value + rng.normal(0, 0.01), 0, 1))
                        metric_rows.append((name, level, rep, protocol, label, lo, hi, metric, round(value, 6),
                                            n_var, n_geno))
            for sid, cohort in zip(sample_ids, sample_cohort):
                sample_rows.append((name, level, rep, sid, cohort,
                                    round(float(np.clip(quality - 0.05 * cohorts.index(cohort) + rng.normal(0, 0.03),
                                                        0, 1)), 6), int(100 * level * 10)))
            for kind, classes in (("phased", (1, 2, 3, 4)), ("dosage", (0, 1, 2))):
                for truth in classes:
                    total = int(rng.integers(50, 400))
                    right = int(total * quality)
                    wrong = rng.multinomial(total - right, [1 / (len(classes) - 1)] * (len(classes) - 1))
                    others = [c for c in classes if c != truth]
                    confusion_rows.append((name, level, rep, "standard", kind, truth, truth, right))
                    confusion_rows += [(name, level, rep, "standard", kind, truth, o, int(w))
                                       for o, w in zip(others, wrong)]
        manifest_imputers[name] = {
            "distribution": "impbench", "version": "0.1.0", "reference_free": True, "options": {},
            "status": "failed" if name in failed else "ok",
            "error": f"RuntimeError: synthetic failure of {name} after {n_done} unit(s)" if name in failed else None,
            "fit_seconds": round(1.0 + 3 * index, 3), "fit_peak_mb": 100.0 + 50 * index,
            "impute": impute_records, "info": {},
        }
    manifest = {
        "impbench_version": "0.1.0", "created": "2026-01-01T00:00:00Z",
        "command": "synthetic results folder (impbench.testing.synthetic)",
        "versions": {"python": "3.11", "numpy": np.__version__},
        "dataset": {"name": "synthetic", "hash": "0" * 64, "store": "(none)", "contig": "22",
                    "n_variants": int(n_variants_bin.sum()),
                    "n_samples": {"train": 8 * n_samples, "val": n_samples, "test": n_samples},
                    "train_cohort": None, "test_cohort": None,
                    "qc": {"input_variants": int(n_variants_bin.sum()) + 321, "dropped": {"multiallelic": 21, "hwe": 300}}},
        "maf_source": "training split truth",
        "settings": {"levels": list(levels), "replicates": replicates, "scheme": "uniform",
                     "protocols": list(protocols), "seed": seed, "device": "cpu", "threads": 2,
                     "bin_edges": [float(e) for e in edges]},
        "masks": [{"level": level, "replicate": rep, "sha256": f"{i:064x}", "n_masked": int(level * 1000)}
                  for i, (level, rep) in enumerate(units)],
        "imputers": manifest_imputers,
    }
    folder = RunFolder(run_dir)
    folder.write_manifest(manifest)
    for table, rows in (("metrics", metric_rows), ("per_sample", sample_rows), ("confusion", confusion_rows)):
        folder.write_table(table, pd.DataFrame(rows, columns=list(COLUMNS[table])))
    return run_dir
