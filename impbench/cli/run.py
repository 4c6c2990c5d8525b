"""``impbench run``."""

from __future__ import annotations

from pathlib import Path

import click

from rich.console import Console

from impbench.scoring.classes import parse_maf_classes
from impbench.bench.exec.signals import RunInterrupted
from impbench.bench.runner import run_benchmark
from impbench.bench.settings import (
    DEFAULT_LEVELS, RunSettings, merge_options, parse_levels, parse_opt, parse_time_limit_for, read_options_file, read_slurm_table,
)
from impbench.cli import invocation
from impbench.errors import ImpbenchError


RUN_HELP = """Mask, impute and score: every imputer on the same replicates.

\b
For each imputer: fit once on the training split (validation split passed along), then for
each masking level x replicate impute the masked test split and score it. The masks are
derived from the dataset hash, level and replicate, so every imputer (and every run) sees the
identical masked cells. Results go to OUT/<dataset>/<run>/ (see docs/results.md).

\b
Resumable: rerunning with the same --run NAME skips every finished
(imputer, level, replicate). One imputer's failure is recorded in the manifest and printed at
the end; the others' results are kept; the exit code is then 1. Bad input exits 2.

\b
Every fit and every unit runs in a worker process: a plugin that raises, exits, crashes or
runs past its time limit fails only its unit (recorded in the manifest). --jobs N runs N at
once, each with its share of the cores (--threads caps it). A second run on a run folder in
use is refused (exit 2); SIGINT/SIGTERM stop the workers, mark the run interrupted and exit
130/143; rerunning with the same --run finishes it. Without a terminal (nohup, Slurm, CI) the
progress comes as timestamped lines: each fit and unit as it starts and ends, a heartbeat of
the long ones.

\b
Examples:
  impbench run --dataset sim-1kgp --imputers major,knn
  impbench run --dataset sim-los --train-cohort CA --test-cohort AA --run ca-to-aa
  impbench run --dataset sim-1kgp --imputers biunet --opt biunet.epochs=5 --device cuda
  impbench run --dataset 1kgp-chr20 --scheme array --imputers major,knn,beagle,minimac4
  impbench run --dataset sim-1kgp --panel-cohort CEU --test-cohort YRI --run ceu-to-yri
  impbench run --dataset sim-1kgp --imputers major,knn,beagle --jobs 2 --time-limit-for beagle=600
  impbench run --dataset sim-1kgp --executor slurm --slurm partition=cpu --slurm time=60 --run r1

\b
--executor slurm submits each fit as a Slurm job and each imputer's units as a job array that
waits on its fit (docs/cluster.md); the run folder must be on a file system the nodes share.
Killing the head and rerunning with the same --run resubmits only what is missing and waits
for its jobs still queued or running.
"""


@click.command("run", help=RUN_HELP)
@click.option("--dataset", required=True, metavar="NAME", help="Dataset card name (see `impbench datasets`).")
@click.option("--imputers", default=None, metavar="A,B", help="Comma list of imputers (default: all registered; see `impbench plugins`).")
@click.option("--levels", default=None, metavar="L1,L2",
              help="Masking rates, each in (0, 1) [default: 0.05,0.15,0.25]. Under --scheme array with typed sites "
                   "the level is the untyped fraction; a --levels that differs from it is an error.")
@click.option("--replicates", default=3, show_default=True, type=int, help="Masked replicates per level (at least 1).")
@click.option("--scheme", default="uniform", show_default=True, metavar="uniform|per-variant|array",
              help="Masking scheme: exactly round(rate x cells) cells; round(rate x N) per variant (paper); or "
                   "array: whole untyped variants hidden in every test sample (--levels = fraction of variants hidden).")
@click.option("--typed-sites", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Array scheme: the typed sites (a VCF, or a TSV of contig and position); default the card's.")
@click.option("--typed-density", default=None, type=float, metavar="F",
              help="Array scheme: type an evenly spread, seeded fraction F of the variants (level = 1 - F).")
@click.option("--protocol", default="standard", show_default=True, metavar="standard|paper|both",
              help="Scoring protocol: masked cells only (standard) or the published all-cells protocol (paper).")
@click.option("--out", default="results", show_default=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--run", "run_name", default=None, metavar="NAME", help="Run folder name (default: a timestamp); reuse it to resume.")
@click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N",
              help="Device for imputers that use one; auto picks cuda when torch sees a GPU.")
@click.option("--threads", default=None, type=int, metavar="N", help="CPU threads per imputer (default: all cores).")
@click.option("--nproc", default=1, show_default=True, type=int, metavar="N", help="Training processes for plugins that use torchrun.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed given to every imputer.")
@click.option("--train-cohort", default=None, metavar="COHORT", help="Fit on this cohort's training samples only.")
@click.option("--panel-cohort", default=None, metavar="COHORT",
              help="Reference panel and reference-free training set from this cohort (population mismatch with --test-cohort).")
@click.option("--test-cohort", default=None, metavar="COHORT", help="Impute and score this cohort's test samples only.")
@click.option("--write-vcf", is_flag=True, help="Write one imputed VCF (GT:DS:GP, masked cells flagged) per imputer x level x replicate.")
@click.option("--bootstrap", "n_boot", default=1000, show_default=True, type=int, metavar="N",
              help="Bootstrap resamples of the test samples behind every 95% CI and paired difference.")
@click.option("--bootstrap-seed", default=0, show_default=True, type=int, help="Seed of the bootstrap resamples.")
@click.option("--block-length", default=None, type=int, metavar="BP",
              help="Genomic block length (bp) the bootstrap resamples besides test samples [default: 50,000, "
                   "longer where the region would hold more than 100 blocks; 0: resample samples only].")
@click.option("--min-variant-cells", default=5, show_default=True, type=int, metavar="N",
              help="Scored cells a variant needs for its per-variant r² to count.")
@click.option("--maf-classes", default=None, metavar="C1,C2",
              help="MAF cut points of the verdict's classes (default 0.01,0.05: rare, low-frequency, common).")
@click.option("--opt", "opts", multiple=True, metavar="NAME.KEY=VALUE", help="An imputer option (repeatable), e.g. knn.k=5.")
@click.option("--options", "options_file", default=None, type=click.Path(dir_okay=False), metavar="FILE.toml",
              help="Imputer options as TOML tables ([knn] k = 5); --opt overrides them.")
@click.option("--cards", multiple=True, type=click.Path(file_okay=False), metavar="DIR", help="Extra folder of dataset cards (repeatable).")
@click.option("--executor", default="local", show_default=True, metavar="local|inline|slurm",
              help="local: each fit and unit in a worker process; inline: all in this process (debugging, no isolation); "
                   "slurm: each fit a Slurm job, each imputer's units a job array.")
@click.option("--slurm", "slurm_pairs", multiple=True, metavar="KEY=VALUE",
              help="A Slurm option of --executor slurm (repeatable; over the options file's [slurm] table): partition, "
                   "account, time, mem, gpus, cpus_per_task, nodes, tasks_per_node, sbatch.")
@click.option("--jobs", default=1, show_default=True, type=int, metavar="N",
              help="Fits and units run at once (local executor); threads are divided so jobs x threads <= cores.")
@click.option("--time-limit", default=None, type=float, metavar="SECONDS",
              help="Seconds a fit or a unit (impute and scoring) may take before its worker is killed (timed_out).")
@click.option("--time-limit-for", "time_limit_for", multiple=True, metavar="NAME=SECONDS",
              help="The time limit of one imputer (repeatable), e.g. beagle=600; overrides --time-limit.")
@click.option("--no-progress", is_flag=True, help="Do not draw progress bars.")
def run_cmd(dataset, imputers, levels, replicates, scheme, typed_sites, typed_density, protocol, out, run_name, device,
            threads, nproc, seed, train_cohort, panel_cohort, test_cohort, write_vcf, n_boot, bootstrap_seed,
            block_length, min_variant_cells, maf_classes, opts, options_file, cards, executor, slurm_pairs, jobs,
            time_limit, time_limit_for, no_progress) -> None:
    cli_options: dict[str, dict[str, str]] = {}
    for text in opts:
        name, key, value = parse_opt(text)
        cli_options.setdefault(name, {})[key] = value
    file_options = read_options_file(options_file) if options_file else {}
    slurm_options = None
    if slurm_pairs and executor != "slurm":
        raise ImpbenchError("--slurm options need --executor slurm")
    if executor == "slurm":
        from impbench.bench.exec.slurm import parse_slurm_options

        slurm_options = parse_slurm_options(slurm_pairs, read_slurm_table(options_file) if options_file else None)
    names = [n.strip() for n in imputers.split(",") if n.strip()] if imputers else None
    if imputers is not None and not names:
        raise ImpbenchError("--imputers: give at least one imputer name")
    outside = sorted(set(cli_options) - set(names)) if names is not None else []
    if outside:  # an --opt that would be silently ignored (an options file may hold other imputers' tables)
        key = next(iter(cli_options[outside[0]]))
        raise ImpbenchError(f"--opt {outside[0]}.{key}: {outside[0]!r} is not in this run (--imputers {','.join(names)})")
    settings = RunSettings(
        dataset=dataset, imputers=names, levels=parse_levels(levels) if levels is not None else DEFAULT_LEVELS,
        levels_explicit=levels is not None, replicates=replicates, scheme=scheme,
        protocol=protocol, out=Path(out), run_name=run_name, device=device, threads=threads, seed=seed,
        nproc=nproc, train_cohort=train_cohort, test_cohort=test_cohort, write_vcf=write_vcf,
        cards=[Path(c) for c in cards], options=merge_options(file_options, cli_options),
        command=invocation(), n_boot=n_boot, bootstrap_seed=bootstrap_seed, min_variant_cells=min_variant_cells,
        maf_classes=parse_maf_classes(maf_classes) if maf_classes else None,
        typed_sites=Path(typed_sites) if typed_sites else None, typed_density=typed_density, panel_cohort=panel_cohort,
        executor=executor, jobs=jobs, time_limit=time_limit, time_limits=parse_time_limit_for(time_limit_for),
        slurm=slurm_options, block_length=block_length,
    )
    console = Console(stderr=True)
    try:
        outcome = run_benchmark(settings, console=console, show_progress=not no_progress)
    except RunInterrupted as exc:
        click.echo(f"impbench: run {exc} (workers stopped; rerun with the same --run to finish it)", err=True)
        raise SystemExit(exc.exit_code) from None
    click.echo(f"results: {outcome.run_dir} ({outcome.units_done} units done, {outcome.units_skipped} already done)")
    from impbench.report.summary import run_summary

    try:
        console.print(run_summary(outcome.run_dir))
    except ImpbenchError as exc:  # tables the summary cannot read: the run itself stands
        console.print(f"no summary: {exc}", highlight=False)
    if outcome.failures:
        for name, message in outcome.failures.items():
            click.echo(f"impbench: failed: {message}", err=True)
        raise SystemExit(1)  # click.Context.exit would be swallowed under standalone_mode=False
