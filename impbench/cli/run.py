"""``impbench run`` and ``impbench plugins``."""

from __future__ import annotations

import dataclasses

import click

from impbench.errors import ImpbenchError
from impbench.cli import invocation


def _options_summary(options_cls: type) -> str:
    """``k=5, window=30`` from an options dataclass's defaults."""
    if not dataclasses.is_dataclass(options_cls):
        return ""
    parts = []
    for f in dataclasses.fields(options_cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = "(required)"
        parts.append(f"{f.name}={default!r}" if isinstance(default, str) and default != "(required)" else f"{f.name}={default}")
    return ", ".join(parts)


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON instead of a table.")
def plugins_cmd(as_json: bool) -> None:
    """List registered imputers: name, distribution, version, reference-free or not, options.

    Imputers come from the built-in baselines and from every installed distribution with an
    ``impbench`` entry point; IMPBENCH_LOAD_PLUGINS (comma list of entry-point or distribution
    names) restricts which plugins load. Options are shown with their defaults; set them with
    ``impbench run --opt NAME.KEY=VALUE`` or ``--options FILE.toml``.
    """
    from impbench.imputers.registry import get_imputers, load_errors

    imputers = get_imputers()
    errors = load_errors()
    if as_json:
        import json

        rows = [
            {"name": name, "distribution": info.distribution, "version": info.version, "plugin": info.plugin,
             "reference_free": bool(info.cls.reference_free), "description": info.cls.description,
             "options": {f.name: _json_default(f) for f in dataclasses.fields(info.cls.Options)}}
            for name, info in imputers.items()
        ]
        click.echo(json.dumps({"imputers": rows, "load_errors": errors}, indent=2, default=str))
        return
    from rich.console import Console
    from rich.padding import Padding
    from rich.table import Table

    table = Table(title="impbench imputers")
    for column in ("name", "distribution", "version", "reference-free", "description"):
        table.add_column(column, overflow="fold")
    for name, info in imputers.items():
        table.add_row(name, info.distribution, info.version or "-", "yes" if info.cls.reference_free else "no",
                      info.cls.description or "")
    console = Console(width=max(100, Console().width))
    console.print(table)
    console.print("[bold]Options[/bold] (defaults; set with --opt NAME.KEY=VALUE or --options FILE.toml)")
    for name, info in imputers.items():
        console.print(f"  [bold]{name}[/bold]", highlight=False)
        console.print(Padding(_options_summary(info.cls.Options) or "(none)", (0, 0, 0, 4)), highlight=False)
    for plugin, error in errors.items():
        console.print(f"[red]plugin {plugin!r} failed to load:[/red] {error}", highlight=False)


def _json_default(f: dataclasses.Field) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


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
Examples:
  impbench run --dataset sim-1kgp --imputers major,knn
  impbench run --dataset sim-los --train-cohort CA --test-cohort AA --run ca-to-aa
  impbench run --dataset sim-1kgp --imputers biunet --opt biunet.epochs=5 --device cuda
"""


@click.command("run", help=RUN_HELP)
@click.option("--dataset", required=True, metavar="NAME", help="Dataset card name (see `impbench datasets`).")
@click.option("--imputers", default=None, metavar="A,B", help="Comma list of imputers (default: all registered; see `impbench plugins`).")
@click.option("--levels", default="0.05,0.15,0.25", show_default=True, metavar="L1,L2", help="Masking rates, each in (0, 1).")
@click.option("--replicates", default=3, show_default=True, type=int, help="Masked replicates per level (at least 1).")
@click.option("--scheme", default="uniform", show_default=True, metavar="uniform|per-variant",
              help="Masking scheme: exactly round(rate x cells) cells, or round(rate x N) per variant (paper).")
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
@click.option("--test-cohort", default=None, metavar="COHORT", help="Impute and score this cohort's test samples only.")
@click.option("--write-vcf", is_flag=True, help="Write one imputed VCF (GT:DS:GP, masked cells flagged) per imputer x level x replicate.")
@click.option("--opt", "opts", multiple=True, metavar="NAME.KEY=VALUE", help="An imputer option (repeatable), e.g. knn.k=5.")
@click.option("--options", "options_file", default=None, type=click.Path(dir_okay=False), metavar="FILE.toml",
              help="Imputer options as TOML tables ([knn] k = 5); --opt overrides them.")
@click.option("--cards", multiple=True, type=click.Path(file_okay=False), metavar="DIR", help="Extra folder of dataset cards (repeatable).")
@click.option("--no-progress", is_flag=True, help="Do not draw progress bars.")
def run_cmd(dataset, imputers, levels, replicates, scheme, protocol, out, run_name, device,
            threads, nproc, seed, train_cohort, test_cohort, write_vcf, opts, options_file, cards, no_progress) -> None:
    from pathlib import Path

    from rich.console import Console

    from impbench.bench.runner import run_benchmark
    from impbench.bench.settings import RunSettings, merge_options, parse_levels, parse_opt, read_options_file

    cli_options: dict[str, dict[str, str]] = {}
    for text in opts:
        name, key, value = parse_opt(text)
        cli_options.setdefault(name, {})[key] = value
    file_options = read_options_file(options_file) if options_file else {}
    names = [n.strip() for n in imputers.split(",") if n.strip()] if imputers else None
    if imputers is not None and not names:
        raise ImpbenchError("--imputers: give at least one imputer name")
    settings = RunSettings(
        dataset=dataset, imputers=names, levels=parse_levels(levels), replicates=replicates, scheme=scheme,
        protocol=protocol, out=Path(out), run_name=run_name, device=device, threads=threads, seed=seed,
        nproc=nproc, train_cohort=train_cohort, test_cohort=test_cohort, write_vcf=write_vcf,
        cards=[Path(c) for c in cards], options=merge_options(file_options, cli_options),
        command=invocation(),
    )
    console = Console(stderr=True)
    outcome = run_benchmark(settings, console=console, show_progress=not no_progress)
    click.echo(f"results: {outcome.run_dir} ({outcome.units_done} units done, {outcome.units_skipped} already done)")
    if outcome.failures:
        for name, message in outcome.failures.items():
            click.echo(f"impbench: failed: {message}", err=True)
        raise SystemExit(1)  # click.Context.exit would be swallowed under standalone_mode=False
