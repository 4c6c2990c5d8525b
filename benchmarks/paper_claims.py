"""The BiU-Net paper's claims side by side with impbench's measurements.

The paper (Huang L. et al., "BiU-Net: a Biological-informed U-Net for Genotype Imputation",
Research Square 2025, https://doi.org/10.21203/rs.3.rs-6797863/v1) reports, on 1000 Genomes
chr22 with per-variant masking at 5/15/25 %, overall R² of BiU-Net 0.9957 / 0.9844 / 0.9694,
Beagle 0.9212 / 0.9194 / 0.9163 and SCDA 0.9332 / 0.9207 / 0.8967, and in the 0.5-1 % MAF bin at
5 % masking 0.9965 (BiU-Net), 0.8981 (Beagle), 0.6813 (SCDA). Its evaluation scores every cell
(masked or not) by the phased code; impbench's ``paper`` protocol reproduces that, its
``standard`` protocol scores masked cells only by minor-allele dosage R².

This script runs (or reads) one impbench run with the paper's setup (``--scheme per-variant``,
levels 0.05/0.15/0.25, ``--protocol both``) and prints, per imputer, R² under both protocols with
95 % bootstrap CIs, next to the published figures:

    python benchmarks/paper_claims.py                                   # runs sim-1kgp, 3 replicates
    python benchmarks/paper_claims.py --imputers major,knn,beagle,biunet,scda,hapmlp --replicates 1
    python benchmarks/paper_claims.py --run-dir results/sim-1kgp/paper-claims   # only read a finished run

The neural imputers run with the budgets their presets give (``--opt`` is passed through).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

LEVELS = ("0.05", "0.15", "0.25")
#: Published overall R² at 5/15/25 % (1000 Genomes chr22, per-variant masking, all cells).
PUBLISHED = {
    "biunet": (0.9957, 0.9844, 0.9694),
    "beagle": (0.9212, 0.9194, 0.9163),
    "scda": (0.9332, 0.9207, 0.8967),
}
#: Published R² in the 0.5-1 % MAF bin at 5 % masking.
PUBLISHED_BIN = {"biunet": 0.9965, "beagle": 0.8981, "scda": 0.6813}
BIN = "0.5–1%"
DEFAULT_IMPUTERS = "major,knn,beagle,biunet,scda,hapmlp"


def read(run_dir: Path) -> dict:
    """{(imputer, protocol, bin, level): (value, ci_low, ci_high)} of ``metrics.csv``'s r2 rows
    over all test samples."""
    out = {}
    with open(run_dir / "metrics.csv") as fh:
        for m in csv.DictReader(fh):
            if m["metric"] == "r2" and m["cohort"] == "all":
                level = f"{float(m['level']):.2f}"
                out[(m["imputer"], m["protocol"], m["bin"], level)] = tuple(float(m[k]) if m[k] else float("nan") for k in ("value", "ci_low", "ci_high"))
    return out


def cell(values: dict, key: tuple) -> str:
    if key not in values:
        return "-"
    value, low, high = values[key]
    return f"{value:.4f} [{low:.3f}, {high:.3f}]"


def table(values: dict) -> str:
    imputers = sorted({k[0] for k in values}, key=lambda n: (DEFAULT_IMPUTERS.split(",") + [n]).index(n))
    lines = [
        "| imputer | protocol | R² @5 % | R² @15 % | R² @25 % | R² 0.5-1 % bin @5 % | published overall @5/15/25 % | published 0.5-1 % @5 % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in imputers:
        for protocol in ("paper", "standard"):
            overall = [cell(values, (name, protocol, "overall", lv)) for lv in LEVELS]
            published = " / ".join(f"{v:.4f}" for v in PUBLISHED[name]) if name in PUBLISHED and protocol == "paper" else ""
            published_bin = f"{PUBLISHED_BIN[name]:.4f}" if name in PUBLISHED_BIN and protocol == "paper" else ""
            lines.append(f"| {name} | {protocol} | " + " | ".join(overall) + f" | {cell(values, (name, protocol, BIN, '0.05'))} | {published} | {published_bin} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="sim-1kgp")
    parser.add_argument("--imputers", default=DEFAULT_IMPUTERS)
    parser.add_argument("--replicates", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="results")
    parser.add_argument("--run", default="paper-claims")
    parser.add_argument("--opt", action="append", default=[], help="passed to impbench run (repeatable)")
    parser.add_argument("--run-dir", default="", help="read this finished run instead of running one")
    args = parser.parse_args(argv)
    if args.run_dir:
        run_dir = Path(args.run_dir)
    else:
        impbench = Path(sys.executable).with_name("impbench")
        command = [str(impbench), "run", "--dataset", args.dataset, "--imputers", args.imputers, "--scheme", "per-variant",
                   "--protocol", "both", "--levels", ",".join(LEVELS), "--replicates", str(args.replicates),
                   "--threads", str(args.threads), "--out", args.out, "--run", args.run, "--no-progress"]
        for opt in args.opt:
            command += ["--opt", opt]
        print("running:", " ".join(command), flush=True)
        subprocess.run(command, check=False)
        run_dir = Path(args.out) / args.dataset / args.run
    if not (run_dir / "metrics.csv").exists():
        print(f"paper_claims: {run_dir}/metrics.csv does not exist (the run did not finish)", file=sys.stderr)
        return 2
    print(f"\n## The paper's claims beside {run_dir} (per-variant masking; paper = all cells, phased-code R²; "
          "standard = masked cells, minor-allele dosage R²; 95 % bootstrap CIs)\n")
    print(table(read(run_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
