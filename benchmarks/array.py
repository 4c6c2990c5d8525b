"""Array-style (untyped-variant) benchmark: real 1000 Genomes data beside the simulation.

Runs the harness itself (``impbench run --scheme array``) on

* ``1kgp-chr20`` (Debian's shapeit4-example: 300 phased samples, chr20:1-4 Mb), typed at its
  scaffold sites (the card's default typed sites), and
* ``sim-1kgp`` typed at an evenly spread fraction of its variants (``--typed-density``, by
  default the same fraction as the scaffold types on 1kgp-chr20),

and prints, per dataset and imputer, the minor-allele dosage R² of the untyped variants per MAF
bin with its 95% bootstrap CI, then wall time and peak memory (fit and impute; the tool's own
process for Beagle's JVM and Minimac4: ``child_peak_mb``).

    python benchmarks/array.py [--imputers major,knn,beagle,minimac4] [--replicates 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table


def run(dataset: str, imputers: str, replicates: int, out: Path, extra: list[str]) -> tuple[Path, float]:
    command = [sys.executable, "-m", "impbench.cli", "run", "--dataset", dataset, "--scheme", "array",
               "--imputers", imputers, "--replicates", str(replicates), "--run", "array-bench",
               "--out", str(out), "--no-progress", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    return out / dataset / "array-bench", time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imputers", default="major,knn,beagle,minimac4")
    parser.add_argument("--replicates", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="impbench-array-"))
    console = Console(width=200)

    real_dir, real_wall = run("1kgp-chr20", args.imputers, args.replicates, out, [])
    manifest = json.loads((real_dir / "manifest.json").read_text())
    density = round(1.0 - manifest["settings"]["levels"][0], 4)
    sim_dir, sim_wall = run("sim-1kgp", args.imputers, args.replicates, out, ["--typed-density", str(density)])

    for label, run_dir, wall in (("1kgp-chr20 (scaffold sites)", real_dir, real_wall),
                                 (f"sim-1kgp (typed density {density:g})", sim_dir, sim_wall)):
        manifest = json.loads((run_dir / "manifest.json").read_text())
        metrics = pd.read_csv(run_dir / "metrics.csv", keep_default_na=False, na_values=[""])
        r2 = metrics[(metrics.metric == "r2") & (metrics.protocol == "standard") & (metrics.cohort == "all")]
        classes = [c[0] for c in manifest["settings"].get("maf_classes") or []]
        bins = ["overall", *classes] + [b for b in dict.fromkeys(r2.sort_values("bin_lo")["bin"])
                                        if b not in classes and b != "overall"]
        typed = manifest["settings"].get("typed")
        table = Table(title=f"{label}: minor-allele dosage R² of untyped variants [95% CI]"
                            + (f"; {typed}" if typed else "") + f"; run {wall:.0f} s")
        table.add_column("imputer")
        for b in bins:
            table.add_column(b, justify="right")
        for imputer in dict.fromkeys(r2["imputer"]):
            rows = r2[r2.imputer == imputer].set_index("bin")
            cells = []
            for b in bins:
                if b not in rows.index:
                    cells.append("–")
                    continue
                row = rows.loc[b]
                cells.append(f"{row.value:.3f}\n[{row.ci_low:.3f}–{row.ci_high:.3f}]" if pd.notna(row.value) else "n/a")
            table.add_row(imputer, *cells)
        console.print(table)
        cost = Table(title=f"{label}: time and memory")
        for column in ("imputer", "status", "fit s", "impute s (mean)", "fit peak MB", "impute peak MB", "tool peak MB"):
            cost.add_column(column, justify="right")
        for imputer, entry in manifest["imputers"].items():
            units = entry.get("impute") or []
            mean = sum(u["seconds"] for u in units) / len(units) if units else float("nan")
            peak = max((u["peak_mb"] or 0 for u in units), default=0)
            child = max([entry.get("fit_child_peak_mb") or 0] + [u.get("child_peak_mb") or 0 for u in units])
            cost.add_row(imputer, entry["status"], f"{entry.get('fit_seconds') or 0:.2f}", f"{mean:.2f}",
                         f"{entry.get('fit_peak_mb') or 0:.0f}", f"{peak:.0f}", f"{child:.0f}" if child else "–")
        console.print(cost)
    console.print(f"run folders under {out}")


if __name__ == "__main__":
    main()
