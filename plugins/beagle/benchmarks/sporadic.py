"""Soft against hard Beagle dosages under sporadic masking: accuracy and cost, same run.

For each masking level, the dataset's test split is masked as the harness masks it (the
``uniform`` scheme, the run's shared mask of replicate 0) and imputed twice by
``BeagleImputer``, alternating the modes so that both see the same machine load:

* ``hard``: ``sporadic=hard``, one Beagle run; masked cells filled while phasing;
* ``soft``: ``sporadic=soft`` (the default), one Beagle run per test sample whose target leaves
  out the sample's masked markers, ``sample_jobs`` at a time.

The table gives, per level and mode, the pooled ALT-dosage R² and GT r² over the masked cells,
the share of masked cells whose dosage is fractional, the Beagle runs, the wall seconds of the
impute call and the CPU seconds of its Java processes (user + system, ``RUSAGE_CHILDREN``;
less sensitive to other load than wall time), and the soft / hard ratios. The machine's load
average is printed before and after.

    .venv/bin/python plugins/beagle/benchmarks/sporadic.py [--dataset sim-1kgp] [--levels 0.05,0.15,0.25]
        [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def r2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.asarray(a, np.float64), np.asarray(b, np.float64))[0, 1] ** 2)


def main() -> None:
    from impbench.bench.rundata import build_mask, masked_target, read_run_data
    from impbench.data.prepare import prepare
    from impbench.genotypes import code_dosage
    from impbench.imputers.base import RunContext, check_imputation
    from impbench_beagle import BeagleImputer, BeagleOptions

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="sim-1kgp")
    parser.add_argument("--levels", default="0.05,0.15,0.25")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    store = prepare(args.dataset)
    data = read_run_data(store, None, None)
    print(f"{args.dataset}: panel {data.panel.n_samples} samples, test {data.truth.n_samples} samples, "
          f"{data.truth.n_variants} variants; {args.threads} threads; load before {os.getloadavg()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="beagle-sporadic-") as tmp:
        imputers = {}
        for mode in ("hard", "soft"):
            imputer = BeagleImputer(BeagleOptions(sporadic=mode))
            ctx = RunContext(work_dir=Path(tmp) / mode, threads=args.threads, seed=args.seed)
            imputer.fit(data.panel, data.val, ctx)
            imputers[mode] = (imputer, ctx)
        for level in [float(x) for x in args.levels.split(",")]:
            mask = build_mask(data, str(store.dataset_hash), level, 0, "uniform").cells
            target = masked_target(data.truth, mask)
            true = code_dosage(data.truth.codes)[mask]
            for mode in ("hard", "soft"):
                imputer, ctx = imputers[mode]
                cpu0, wall0 = children_cpu_s(), time.perf_counter()
                result = check_imputation("beagle", imputer.impute(target, ctx), target)
                wall, cpu = time.perf_counter() - wall0, children_cpu_s() - cpu0
                ds = result.dosage[mask]
                rows.append({"level": level, "mode": mode, "r2": r2(true, ds), "gt_r2": r2(true, code_dosage(result.calls)[mask]),
                             "fractional": float(np.mean(np.abs(ds - np.round(ds)) > 1e-6)),
                             "runs": imputer.manifest_info()["runs"][-1]["beagle_runs"], "wall_s": wall, "cpu_s": cpu})
                print(f"  level {level:g} {mode}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    print(f"load after {os.getloadavg()}\n")
    print(f"{'level':>6} {'mode':>5} {'dosage R2':>9} {'GT r2':>7} {'fract.':>7} {'runs':>5} {'wall s':>8} {'CPU s':>8}")
    for row in rows:
        print(f"{row['level']:>6g} {row['mode']:>5} {row['r2']:>9.4f} {row['gt_r2']:>7.4f} {row['fractional']:>7.1%} "
              f"{row['runs']:>5d} {row['wall_s']:>8.1f} {row['cpu_s']:>8.1f}")
    print("\nsoft / hard, same level:")
    for hard, soft in zip(rows[0::2], rows[1::2]):
        print(f"  level {hard['level']:g}: wall x{soft['wall_s'] / hard['wall_s']:.1f}, CPU x{soft['cpu_s'] / hard['cpu_s']:.1f}, "
              f"dosage R2 {soft['r2'] - hard['r2']:+.4f}")


if __name__ == "__main__":
    main()
