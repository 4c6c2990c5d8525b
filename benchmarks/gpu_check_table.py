"""The table of ``benchmarks/gpu_check.sh``: one row per run folder given.

    python benchmarks/gpu_check_table.py RUN_DIR [RUN_DIR ...]

Per run: the preset and precision of its biunet fit (``models/biunet/fit/<key>/
train_summary.json``), the launch (single process or torchrun), epochs run, median seconds per
epoch (``train_timing.csv``), best validation R² and the test split's masked minor-allele dosage
R² at each level (``metrics.csv``, standard protocol, overall bin, all samples).
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path


def fit_folder(run: Path, imputer: str = "biunet") -> Path:
    folders = sorted((run / "models" / imputer / "fit").glob("*/train_summary.json"))
    if not folders:
        raise SystemExit(f"gpu_check: no {imputer} fit with a train_summary.json under {run}/models/{imputer}/fit/")
    return folders[-1].parent


def row(run: Path) -> dict:
    fit = fit_folder(run)
    summary = json.loads((fit / "train_summary.json").read_text())
    timing = list(csv.DictReader(open(fit / "train_timing.csv")))
    manifest = json.loads((run / "manifest.json").read_text())
    info = (manifest.get("imputers", {}).get("biunet") or {}).get("info", {})
    test = {}
    for m in csv.DictReader(open(run / "metrics.csv")):
        if m["imputer"] == "biunet" and m["protocol"] == "standard" and m["bin"] == "overall" and m["metric"] == "r2" and m["cohort"] == "all":
            test[float(m["level"])] = float(m["value"])
    seconds = [float(t["seconds"]) for t in timing]
    return {
        "preset": info.get("preset", "?"),
        "precision": summary["precision"],
        "launch": info.get("mode", "?"),
        "epochs": summary["epochs_run"],
        "s/epoch": statistics.median(seconds) if seconds else float("nan"),
        "val R2": summary["best_val_r2"],
        "test R2 5/15/25%": " / ".join(f"{test[k]:.4f}" for k in sorted(test)),
    }


def main(argv: list[str]) -> int:
    rows = [row(Path(a)) for a in argv]
    columns = list(rows[0]) if rows else []
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
