"""``impbench suite run|list|show``: named suites of scenarios (``impbench.bench.suite``)."""

from __future__ import annotations

from pathlib import Path

import click

from impbench.errors import ImpbenchError

SUITE_HELP = """Named suites of scenarios: each scenario is one `impbench run` of a dataset card
with its scheme, levels, replicates and cohort settings.

\b
  impbench suite list                                  # the shipped suites
  impbench suite show standard                         # its scenarios
  impbench suite run quick --imputers major,knn,beagle # every scenario, then:
  impbench leaderboard results/suites/quick            # one ranked page
"""

RUN_HELP = """Run every scenario of SUITE (a shipped name, or a suite file; or --suite FILE).

\b
Each scenario runs exactly as `impbench run` would (same executors, worker isolation and
time limits) into OUT/<suite>/<dataset>/<scenario>/; OUT/<suite>/suite.json lists them.
Resumable: rerunning the same suite into the same OUT skips every finished unit. An imputer
that does not apply to a scenario (e.g. a reference panel method on a scheme it cannot use)
is "n/a" there, never a failure. A scenario that cannot run (its data missing) is recorded
and the next one starts (so is one naming a cohort its data lack); the exit code is then 1,
as when an imputer fails. Bad input (an unknown suite, dataset card, imputer, option or flag
value in any scenario) exits 2 before any work.

\b
Examples:
  impbench suite run quick --imputers major,knn,beagle
  impbench suite run standard --imputers major,knn,beagle,minimac4 --jobs 2
  impbench suite run --suite my-suite.toml --imputers myimputer,major --executor slurm
"""


@click.group("suite", help=SUITE_HELP)
def suite_cmd() -> None:
    pass


@suite_cmd.command("list")
def list_cmd() -> None:
    """The shipped suites: name, scenarios, description."""
    from impbench.bench.suite import list_suites, parse_suite

    for name, path in list_suites().items():
        suite = parse_suite(path)
        click.echo(f"{name:<12} {len(suite.scenarios)} scenarios  {suite.description}")


@suite_cmd.command("show")
@click.argument("suite", metavar="SUITE")
def show_cmd(suite: str) -> None:
    """The scenarios of SUITE (a shipped name or a suite file)."""
    from impbench.bench.suite import find_suite

    found = find_suite(suite)
    click.echo(f"suite {found.name}: {found.description}")
    click.echo(f"file: {found.path}")
    for scenario in found.scenarios:
        click.echo(f"  {scenario.name:<22} {scenario.dataset:<11} {scenario.summary()}")
        if scenario.description:
            click.echo(f"  {'':<22} {scenario.description}")


@suite_cmd.command("run", help=RUN_HELP)
@click.argument("suite", required=False, metavar="SUITE")
@click.option("--suite", "suite_file", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="A suite file (TOML) instead of a shipped suite's name.")
@click.option("--imputers", default=None, metavar="A,B", help="Comma list of imputers (default: all registered).")
@click.option("--out", default="results/suites", show_default=True, type=click.Path(file_okay=False),
              help="Output folder; the suite's runs go to OUT/<suite>/.")
@click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N", help="As `impbench run`.")
@click.option("--threads", default=None, type=int, metavar="N", help="CPU threads per imputer (default: all cores).")
@click.option("--nproc", default=1, show_default=True, type=int, metavar="N", help="Training processes (torchrun plugins).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed given to every imputer.")
@click.option("--bootstrap", "n_boot", default=1000, show_default=True, type=int, metavar="N",
              help="Bootstrap resamples behind every CI and paired difference.")
@click.option("--opt", "opts", multiple=True, metavar="NAME.KEY=VALUE", help="An imputer option (repeatable).")
@click.option("--options", "options_file", default=None, type=click.Path(dir_okay=False), metavar="FILE.toml",
              help="Imputer options as TOML tables; --opt overrides them.")
@click.option("--cards", multiple=True, type=click.Path(file_okay=False), metavar="DIR", help="Extra folder of dataset cards.")
@click.option("--executor", default="local", show_default=True, metavar="local|inline|slurm", help="As `impbench run`.")
@click.option("--slurm", "slurm_pairs", multiple=True, metavar="KEY=VALUE", help="A Slurm option (repeatable), as `impbench run`.")
@click.option("--jobs", default=1, show_default=True, type=int, metavar="N", help="Fits and units run at once (local executor).")
@click.option("--time-limit", default=None, type=float, metavar="SECONDS", help="Seconds a fit or a unit may take.")
@click.option("--time-limit-for", "time_limit_for", multiple=True, metavar="NAME=SECONDS", help="One imputer's time limit.")
@click.option("--no-progress", is_flag=True, help="Do not draw progress bars.")
def run_cmd(suite, suite_file, imputers, out, device, threads, nproc, seed, n_boot, opts, options_file, cards, executor,
            slurm_pairs, jobs, time_limit, time_limit_for, no_progress) -> None:
    from rich.console import Console

    from impbench.bench.exec.signals import RunInterrupted
    from impbench.bench.runner import run_benchmark
    from impbench.bench.settings import RunSettings, merge_options, parse_opt, parse_time_limit_for, read_options_file
    from impbench.bench.settings import read_slurm_table
    from impbench.bench.suite import find_suite, run_suite, suite_dir
    from impbench.cli import invocation

    if (suite is None) == (suite_file is None):
        raise ImpbenchError("give a suite: a shipped name (see `impbench suite list`) or --suite FILE")
    found = find_suite(suite_file if suite_file is not None else suite)
    cli_options: dict[str, dict[str, str]] = {}
    for text in opts:
        name, key, value = parse_opt(text)
        cli_options.setdefault(name, {})[key] = value
    if slurm_pairs and executor != "slurm":
        raise ImpbenchError("--slurm options need --executor slurm")
    slurm_options = None
    if executor == "slurm":
        from impbench.bench.exec.slurm import parse_slurm_options

        slurm_options = parse_slurm_options(slurm_pairs, read_slurm_table(options_file) if options_file else None)
    names = [n.strip() for n in imputers.split(",") if n.strip()] if imputers else None
    if imputers is not None and not names:
        raise ImpbenchError("--imputers: give at least one imputer name")
    base = RunSettings(
        dataset="", imputers=names, device=device, threads=threads, nproc=nproc, seed=seed, n_boot=n_boot,
        options=merge_options(read_options_file(options_file) if options_file else {}, cli_options),
        cards=[Path(c) for c in cards], command=invocation(), executor=executor, jobs=jobs, time_limit=time_limit,
        time_limits=parse_time_limit_for(time_limit_for), slurm=slurm_options,
    )
    console = Console(stderr=True)

    def announce(scenario, i, n):
        console.rule(f"suite {found.name}: scenario {i} of {n}: {scenario.name} ({scenario.dataset}, {scenario.summary()})")

    def run_one(settings):
        outcome = run_benchmark(settings, console=console, show_progress=not no_progress)
        click.echo(f"results: {outcome.run_dir} ({outcome.units_done} units done, {outcome.units_skipped} already done)")
        return outcome

    try:
        outcomes = run_suite(found, base, Path(out), run=run_one, on_scenario=announce)
    except RunInterrupted as exc:
        click.echo(f"impbench: suite {exc} (workers stopped; rerun the same suite to finish it)", err=True)
        raise SystemExit(exc.exit_code) from None
    folder = suite_dir(found, Path(out))
    click.echo(f"suite {found.name}: {folder}")
    for o in outcomes:
        click.echo(f"  {o.name:<22} {o.status}{': ' + o.message if o.message else ''}")
    click.echo(f"next: impbench leaderboard {folder}")
    if any(o.status != "ok" for o in outcomes):
        raise SystemExit(1)
