"""Scale-out benchmark: the demo's wall time with ``--jobs 1`` vs ``--jobs 2``, in one run.

Runs ``impbench run --dataset sim-1kgp`` (the demo's dataset; prepared once, cached) with the
demo's imputers (``--imputers``, default ``major,knn,beagle,allele-freq``: the baselines,
Beagle and the example plugin; ``--neural`` adds ``biunet`` and ``scda`` with
``--neural-epochs`` epochs), the default levels and replicates, three times into fresh run
folders:

* ``inline``: every fit and unit in the harness process (no worker processes): the reference;
* ``local, --jobs 1``: each fit and unit in its own worker process, one at a time;
* ``local, --jobs 2``: two at a time, each with half the cores;
* ``slurm``: ``--executor slurm`` through the Slurm that ``sinfo`` answers (e.g. the single-node
  one of ``scripts/slurm-local.sh``, with ``SLURM_CONF`` exported): each fit a job, each
  imputer's units a job array, ``--slurm cpus_per_task=<--slurm-cpus>``; left out, with the
  reason, when no Slurm answers.

It prints the wall time of each, the ratio to ``--jobs 1``, the per-work-item overhead of a
worker process (``(jobs 1 - inline) / work items``), and whether the three runs' metrics.csv
are identical (they must be).

    .venv/bin/python benchmarks/scale.py
    .venv/bin/python benchmarks/scale.py --imputers major,knn --replicates 2
    .venv/bin/python benchmarks/scale.py --neural --neural-epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


#: ``impbench`` of this checkout (the console script may belong to another install).
IMPBENCH = [sys.executable, "-c", "import sys; from impbench.cli import main; sys.exit(main(sys.argv[1:]))"]


def run(out: Path, name: str, args: list[str]) -> tuple[float, Path, str]:
    command = [*IMPBENCH, "run", "--out", str(out), "--run", name, "--no-progress", *args]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"{name}: impbench run exited {done.returncode}")
    run_dir = next(out.glob(f"*/{name}"))
    return seconds, run_dir, done.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="sim-1kgp")
    parser.add_argument("--imputers", default="major,knn,beagle,allele-freq")
    parser.add_argument("--levels", default="0.05,0.15,0.25")
    parser.add_argument("--replicates", type=int, default=3)
    parser.add_argument("--neural", action="store_true", help="add biunet and scda")
    parser.add_argument("--neural-epochs", type=int, default=2)
    parser.add_argument("--skip-inline", action="store_true", help="no in-process reference run")
    parser.add_argument("--keep", default=None, help="keep the run folders here")
    parser.add_argument("--no-slurm", action="store_true", help="leave out the run through Slurm")
    parser.add_argument("--slurm-cpus", type=int, default=1, help="CPUs per Slurm job (default 1)")
    args = parser.parse_args(argv)
    imputers = args.imputers + (",biunet,scda" if args.neural else "")
    common = ["--dataset", args.dataset, "--imputers", imputers, "--levels", args.levels,
              "--replicates", str(args.replicates), "--device", "cpu", "--bootstrap", "200"]
    if args.neural:
        common += ["--opt", f"biunet.epochs={args.neural_epochs}", "--opt", f"scda.epochs={args.neural_epochs}"]
    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="impbench-scale-"))
    out.mkdir(parents=True, exist_ok=True)
    # prepare (and warm the file cache) once, outside the timings
    subprocess.run([*IMPBENCH, "prepare", "--dataset", args.dataset], check=True, capture_output=True)
    plan = [("local-jobs1", ["--jobs", "1"]), ("local-jobs2", ["--jobs", "2"])]
    if not args.skip_inline:
        plan.insert(0, ("inline", ["--executor", "inline"]))
    slurm_note = "left out (--no-slurm)" if args.no_slurm else None
    if slurm_note is None:
        from impbench.bench.exec.slurm import slurm_available

        slurm_note = slurm_available()
    if slurm_note is None:
        plan.append(("slurm", ["--executor", "slurm", "--slurm", f"cpus_per_task={args.slurm_cpus}"]))
    rows = {}
    for name, extra in plan:
        seconds, run_dir, _ = run(out, name, common + extra)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        statuses = {k: v["status"] for k, v in manifest["imputers"].items()}
        n_units = sum(len(v.get("impute", [])) for v in manifest["imputers"].values())
        threads = args.slurm_cpus if name == "slurm" else manifest["settings"]["threads"]
        rows[name] = (seconds, run_dir, statuses, n_units, threads)
        print(f"  {name}: {seconds:.1f} s ({n_units} units, {statuses})", file=sys.stderr)
    n_imputers = len(imputers.split(","))
    n_items = rows["local-jobs1"][3] + n_imputers  # units + fits
    base = rows["local-jobs1"][0]
    print(f"\n{args.dataset}: {imputers}, levels {args.levels} x {args.replicates} replicates, "
          f"{n_items} work items, {os.cpu_count()} cores\n")
    print(f"| {'executor':<14} | {'threads':>7} | {'wall s':>8} | {'vs jobs 1':>9} |")
    print(f"| {'-' * 14} | {'-' * 7}: | {'-' * 8}: | {'-' * 9}: |")
    for name, (seconds, _, _, _, threads) in rows.items():
        print(f"| {name:<14} | {threads:>7} | {seconds:>8.1f} | {seconds / base:>8.2f}x |")
    if "slurm" not in rows:
        print(f"| {'slurm':<14} | {'-':>7} | {'-':>8} | {'-':>9} |")
        print(f"\nslurm: not run: {slurm_note}")
    print(f"\n--jobs 2 speed-up over --jobs 1: {base / rows['local-jobs2'][0]:.2f}x")
    if "slurm" in rows:
        print(f"slurm ({args.slurm_cpus} CPU(s) per job) vs --jobs 1: {base / rows['slurm'][0]:.2f}x")
    if "inline" in rows:
        overhead = (base - rows["inline"][0]) / n_items
        print(f"worker overhead per work item (jobs 1 - inline) / items: {overhead:.2f} s")
    metrics = {name: (row[1] / "metrics.csv").read_text() for name, row in rows.items()}
    identical = len(set(metrics.values())) == 1
    print(f"metrics.csv identical across executors: {'yes' if identical else 'NO'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
