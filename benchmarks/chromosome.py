"""Chromosome-scale benchmark: a simulated 1000 Genomes chr22-sized card through every stage of a
run, with the cost of each stage and how it grows with samples and with variants.

The card simulates the embedded OutOfAfrica_3G09 demography (stdpopsim, offline) with
YRI/CEU/CHB cohorts: ``--samples`` diploid samples (default 2,548, 1000 Genomes) over
``--length`` bp (default 35 Mb, chr22's SNP-dense span) at ``mutation_rate`` 3.5e-8 (about 1M
SNPs at full size, docs/datasets.md). Each stage runs in its own Python process (so its peak RSS
is its own) on the cached simulation and store:

    simulate                  msprime + VCF (cached in $IMPBENCH_CACHE; timed when it runs)
    prepare                   ingest: VCF -> QC -> split -> HDF5 store
    masks                     read the splits, draw the 25% mask of replicate 0
    <imputer> fit / impute    major, knn, beagle (by region: --beagle-chunk-mb windows)
    <imputer> score           score_unit on its answer (both protocols, variant quality)
    run + report (major)      the CLI path: impbench run --imputers major, then impbench report

and prints wall, CPU (its children included: Beagle's JVM) and peak RSS per stage. With
``--exponents`` the pipeline also runs at half the samples and at half the length, and each
stage's exponent in samples and in variants is log2(cost at full / cost at half) of its CPU
time. Target: every stage's peak <= 12 GiB.

    nice .venv/bin/python benchmarks/chromosome.py --fraction-samples 0.125 --fraction-length 0.1 --exponents
    nice .venv/bin/python benchmarks/chromosome.py            # the full chr22 size (hours, ~12 GiB)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_SAMPLES_1KGP = 2548
CHR22_LENGTH = 35_000_000
MUTATION_RATE = 3.5e-8
LEVEL = 0.25
TARGET_GIB = 12.0

CARD = """# written by benchmarks/chromosome.py
description = "chromosome-scale benchmark: {samples} samples x {length} bp of OutOfAfrica_3G09"
[simulation]
model = "OutOfAfrica_3G09"
samples = {{ YRI = {yri}, CEU = {ceu}, CHB = {chb} }}
contig = "22"
start = 16_000_000
length = {length}
mutation_rate = {mutation_rate}
seed = 1
[qc]
max_sample_missing = 0.05
drop_variant_missing = true
hwe_p = 1e-6
min_maf = 0.001
per_split = false
[split]
fractions = [0.8, 0.1, 0.1]
seed = 0
"""

# One stage in a fresh process; prints a JSON line. argv: stage, card name, imputer, options JSON.
CHILD = r"""
import json, resource, sys, time
stage, name, imputer_name, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
out = {}
def children_cpu():
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime
t_wall, t_cpu, t_children = time.perf_counter(), time.process_time(), children_cpu()
def lap(key):
    global t_wall, t_cpu, t_children
    out[key] = {"wall": time.perf_counter() - t_wall, "cpu": time.process_time() - t_cpu,
                "children_cpu": children_cpu() - t_children,
                "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                "child_peak_gib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20}
    t_wall, t_cpu, t_children = time.perf_counter(), time.process_time(), children_cpu()
from impbench.data.cards import get_card
from impbench.data.prepare import prepare, resolve_source
card = get_card(name)
if stage == "simulate":
    resolve_source(card)
    lap("simulate")
    print(json.dumps(out)); sys.exit(0)
if stage == "prepare":
    store = prepare(card)
    lap("prepare")
    out["n_variants"], out["n_samples"] = store.n_variants, int(len(store.samples()["sample_ids"]))
    print(json.dumps(out)); sys.exit(0)
import tempfile
from pathlib import Path
import numpy as np
from impbench.bench.rundata import build_mask, masked_target, read_run_data
from impbench.imputers.base import RunContext, check_imputation, make_options
store = prepare(card)
t_wall, t_cpu, t_children = time.perf_counter(), time.process_time(), children_cpu()
data = read_run_data(store, None, None)
mask = build_mask(data, store.dataset_hash, 0.25, 0, "uniform")
target = masked_target(data.truth, mask.cells)
lap("masks")
out["shape"] = {"train": list(data.panel.codes.shape), "test": list(data.truth.codes.shape)}
if stage == "masks":
    print(json.dumps(out)); sys.exit(0)
from impbench.imputers.registry import get_imputers
from impbench.bench.unit import score_unit
from impbench.scoring.metrics import DEFAULT_BIN_EDGES, DEFAULT_MIN_VARIANT_CELLS, PROTOCOLS
cls = get_imputers()[imputer_name].cls
imputer = cls(make_options(cls.Options, options, imputer_name))
ctx = RunContext(work_dir=Path(tempfile.mkdtemp(prefix="chromosome-")), threads=int(sys.argv[5]), dataset=name,
                 dataset_hash=store.dataset_hash)
t_wall, t_cpu, t_children = time.perf_counter(), time.process_time(), children_cpu()
imputer.fit(data.panel, data.val, ctx)
lap("fit")
answer = check_imputation(imputer_name, imputer.impute(target, ctx), target)
lap("impute")
score_unit(data.truth, answer, mask.cells, data.alt_freq, protocols=PROTOCOLS, bin_edges=DEFAULT_BIN_EDGES,
           min_variant_cells=DEFAULT_MIN_VARIANT_CELLS, keys={"imputer": imputer_name, "level": 0.25, "replicate": 0},
           variant_quality=True)
lap("score")
print(json.dumps(out))
"""

IMPBENCH = [sys.executable, "-c", "import sys; from impbench.cli import main; sys.exit(main(sys.argv[1:]))"]


def run_child(args: list[str], env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"stage {args[0]} {args[2]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# Runs an impbench command and prints the resources of it and its processes (a fresh parent, so
# that the peak is that command's largest process, not an earlier stage's).
CLI_CHILD = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": done.returncode, "stderr": done.stderr[-2000:], "wall": time.perf_counter() - t0,
                  "cpu": usage.ru_utime + usage.ru_stime, "peak_gib": usage.ru_maxrss / 2**20}))
"""


def run_cli(command: list[str], env: dict) -> dict:
    """Wall, CPU and the largest process's peak RSS of an impbench command (and its children)."""
    done = subprocess.run([sys.executable, "-c", CLI_CHILD, *IMPBENCH, *command], capture_output=True, text=True, env=env)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise RuntimeError(f"impbench {command[0]} failed: {result['stderr'].strip().splitlines()[-1:]}")
    return {"wall": result["wall"], "cpu": result["cpu"], "children_cpu": 0.0, "peak_gib": result["peak_gib"],
            "child_peak_gib": 0.0}


def pipeline(samples: int, length: int, args, cards: Path, env: dict, log, save) -> dict:
    """Every stage at one size: {stage: measurement}, plus the data's shape; ``save(info)``
    after each stage (what finished is kept when a long run is stopped)."""
    name = f"chrom-{samples}x{length}"
    per = [samples // 3 + (1 if i < samples % 3 else 0) for i in range(3)]
    (cards / f"{name}.toml").write_text(CARD.format(samples=samples, length=length, yri=per[0], ceu=per[1], chb=per[2],
                                                    mutation_rate=MUTATION_RATE))  # fmt: skip
    stages: dict[str, dict] = {}
    info: dict = {"samples": samples, "length": length, "stages": stages}
    log(f"{name}: simulating (or reading the cached simulation)")
    result = run_child(["simulate", name, "-", "{}"], env)
    stages["simulate (cached after the first)"] = result["simulate"]
    save(info)
    result = run_child(["prepare", name, "-", "{}"], env)
    stages["prepare"] = result["prepare"]
    info["n_variants"] = result["n_variants"]
    save(info)
    log(f"{name}: prepared {result['n_samples']:,} samples x {result['n_variants']:,} variants")
    result = run_child(["masks", name, "-", "{}"], env)
    stages["masks"] = result["masks"]
    info["shape"] = result["shape"]
    save(info)
    for imputer, options in args.imputers:
        result = run_child(["impute", name, imputer, json.dumps(options), str(args.threads)], env)
        for stage in ("fit", "impute", "score"):
            stages[f"{imputer} {stage}"] = result[stage]
        save(info)
        log(f"{name}: {imputer} done ({result['impute']['wall']:.0f} s impute)")
    with tempfile.TemporaryDirectory(dir=args.workdir) as out:
        stages["run (CLI, major)"] = run_cli(["run", "--dataset", name, "--imputers", "major", "--levels", str(LEVEL),
                                              "--replicates", "1", "--out", out, "--run", "r", "--no-progress"], env)  # fmt: skip
        run_dir = next(Path(out).glob("*/r"))
        stages["report (CLI)"] = run_cli(["report", str(run_dir)], env)
    save(info)
    return info


def cost(measure: dict) -> float:
    return measure["cpu"] + measure["children_cpu"]


def exponents(stage: str, results: dict) -> tuple[float | None, float | None]:
    """(a, b) with CPU ~ samples^a x variants^b, from the full, half-samples and half-length
    runs. Half the samples also leaves fewer variants after QC, so b comes from the half-length
    pair (same samples) and a from the half-samples pair corrected by b. None where a stage
    took under 0.05 s CPU in a run, or is not a stage of a run."""
    full, by_samples, by_length = (results[k] for k in ("full", "half samples", "half length"))
    measures = [r["stages"].get(stage) for r in (full, by_samples, by_length)]
    if stage.startswith("simulate") or any(m is None or cost(m) < 0.05 for m in measures):
        return None, None
    c_full, c_samples, c_length = (math.log(cost(m)) for m in measures)
    b = (c_full - c_length) / math.log(full["n_variants"] / by_length["n_variants"])
    a = (c_full - c_samples - b * math.log(full["n_variants"] / by_samples["n_variants"])) / math.log(
        full["samples"] / by_samples["samples"])
    return a, b


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=N_SAMPLES_1KGP)
    parser.add_argument("--length", type=int, default=CHR22_LENGTH)
    parser.add_argument("--fraction-samples", type=float, default=1.0, help="scale --samples by this")
    parser.add_argument("--fraction-length", type=float, default=1.0, help="scale --length by this")
    parser.add_argument("--exponents", action="store_true", help="also run at half the samples and half the length")
    parser.add_argument("--beagle-chunk-mb", type=float, default=5.0, help="Beagle's region windows (Mb)")
    parser.add_argument("--imputers", default="major,knn,beagle", help="imputers to time (of major, knn, beagle)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path(".cache/bench-chromosome"))
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--table", type=Path, help="only print the table of a --json file written before")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    options = {"major": {}, "knn": {}, "beagle": {"chunk_mb": args.beagle_chunk_mb}}
    unknown = sorted(set(args.imputers.split(",")) - set(options))
    if unknown:
        parser.error(f"--imputers: unknown {', '.join(unknown)} (known: major, knn, beagle)")
    args.imputers = [(name, options[name]) for name in args.imputers.split(",")]
    cards = args.workdir / "cards"
    cards.mkdir(exist_ok=True)
    env = {**os.environ, "IMPBENCH_DATASETS": str(cards.resolve())}
    env.setdefault("IMPBENCH_CACHE", str((args.workdir / "cache").resolve()))
    samples = max(6, int(round(args.samples * args.fraction_samples)))
    length = max(10_000, int(round(args.length * args.fraction_length)))

    def log(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text} (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)

    sizes = {"full": (samples, length)}
    if args.exponents:
        sizes["half samples"] = (samples // 2, length)
        sizes["half length"] = (samples, length // 2)
    results: dict[str, dict] = {}
    if args.table:
        print_table(json.loads(args.table.read_text()), "half samples" in json.loads(args.table.read_text()))
        return 0

    def saver(key: str):
        def save(info: dict) -> None:
            info["load"] = os.getloadavg()  # as the last stage ended
            results[key] = info
            if args.json:
                args.json.write_text(json.dumps(results, indent=1))
        return save

    for key, (n, m) in sizes.items():
        pipeline(n, m, args, cards, env, log, saver(key))

    print_table(results, args.exponents)
    return 0


def print_table(results: dict, with_exponents: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    full = results["full"]
    load = full.get("load") or os.getloadavg()
    table = Table(title=f"chromosome scale: {full['samples']:,} samples x {full['length'] / 1e6:g} Mb = "
                        f"{full['n_variants']:,} variants after QC (train {full['shape']['train'][0]}, test "
                        f"{full['shape']['test'][0]}); {os.cpu_count()} CPUs, load {load[0]:.1f} / {load[2]:.1f} (1 / 15 min, at its end)")  # fmt: skip
    columns = ["stage", "wall s", "CPU s", "peak GiB", "largest child GiB"]
    if with_exponents:
        columns += ["exponent in samples", "exponent in variants"]
    for column in columns:
        table.add_column(column, justify="left" if column == "stage" else "right")
    worst = 0.0
    for stage, measure in full["stages"].items():
        peak = max(measure["peak_gib"], measure["child_peak_gib"])
        worst = max(worst, peak)
        row = [stage, f"{measure['wall']:.1f}", f"{cost(measure):.1f}", f"{measure['peak_gib']:.2f}",
               f"{measure['child_peak_gib']:.2f}" if measure["child_peak_gib"] else ""]
        if with_exponents:
            row += [f"{x:.2f}" if x is not None else "" for x in exponents(stage, results)]
        table.add_row(*row)
    console = Console(width=170)
    console.print(table)
    console.print("CPU: the stage's own and its children's (Beagle's JVM). peak: the RSS high-water mark of the "
                  "stage's process at the end of the stage (fit, impute and score of an imputer share one process; "
                  "the CLI rows: the largest process); largest child: the largest child process so far (Beagle's JVM).")
    console.print("exponents: CPU ~ samples^a x variants^b (variants counted after QC): b from the half-length run, "
                  "a from the half-samples run corrected for its fewer variants; blank where a stage took under 0.05 s "
                  "CPU; simulate is not a stage of a run (cached).")
    console.print(f"target: every stage's peak <= {TARGET_GIB:g} GiB: {'met' if worst <= TARGET_GIB else 'NOT met'} "
                  f"(largest {worst:.2f} GiB)")


if __name__ == "__main__":
    raise SystemExit(main())
