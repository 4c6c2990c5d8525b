"""The ``impbench`` command line.

Each subcommand lives in its own module of this package and is imported only when used, so
``impbench --help`` stays fast. User mistakes raise ``ImpbenchError``; ``main`` prints them as
one line on stderr and exits 2. A write the environment refuses (disk full, quota, read-only or
forbidden path: ``impbench.files.DISK_ERRNOS``) is one line naming the path, exit 1.
"""

from __future__ import annotations

import importlib
import sys

import click

from impbench.errors import ImpbenchError
from impbench.files import DISK_ERRNOS, os_error_line

#: command name -> (module in this package, attribute, one-line help)
COMMANDS = {
    "datasets": ("data", "datasets_cmd", "List dataset cards and whether each is ready."),
    "prepare": ("data", "prepare_cmd", "Ingest, QC, split and store a dataset in HDF5."),
    "simulate": ("data", "simulate_cmd", "Write an embedded dataset's simulated VCF and sample sheet."),
    "plugins": ("plugins", "plugins_cmd", "List registered imputers and their options."),
    "run": ("run", "run_cmd", "Mask, impute and score: every imputer on the same replicates."),
    "report": ("report", "report_cmd", "Turn a run folder into tables, figures and an HTML page."),
    "suite": ("suite", "suite_cmd", "Named suites of scenarios: suite run, suite list, suite show."),
    "leaderboard": ("leaderboard", "leaderboard_cmd", "One ranked page across runs, suites and result records."),
    "export": ("export", "export_cmd", "Write a run's result records (versioned JSON lines) to share."),
    "doctor": ("doctor", "doctor_cmd", "Which external tools are found, and what each enables."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[name]
        module = importlib.import_module(f"{__name__}.{module_name}")
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(package_name="impbench")
def cli() -> None:
    """impbench: benchmark genotype imputation methods fairly and reproducibly.

    \b
    Typical use:
      impbench datasets                          # what is available
      impbench run --dataset sim-1kgp            # every imputer, shared masks
      impbench report results/sim-1kgp/<run>     # tables, figures, HTML
      impbench suite run quick --imputers major,knn,beagle
      impbench leaderboard results/suites/quick  # one ranked page across scenarios
    """


_invocation: list[str] | None = None


def invocation() -> str:
    """The command line as the user typed it (``impbench run ...``), for the run manifest."""
    import shlex

    args = _invocation if _invocation is not None else sys.argv[1:]
    return shlex.join(["impbench", *args])


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors (exit 2) for user mistakes, never a traceback;
    one line and exit 1 for a write refused by the disk or the file system."""
    try:
        _main(argv)
    except SystemExit as exc:
        h5 = sys.modules.get("impbench.data.h5errors")
        # After a failed write on a full disk HDF5's own cleanup at exit can crash (SIGSEGV) even
        # with every file closed: the console command (argv None) then ends without it; the
        # temporary files are gone already (impbench.data.h5errors.HDF5_UNCLEAN).
        if argv is None and h5 is not None and h5.HDF5_UNCLEAN:
            import os

            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        raise


def _main(argv: list[str] | None) -> None:
    global _invocation
    _invocation = list(argv) if argv is not None else sys.argv[1:]
    try:
        cli.main(args=argv, prog_name="impbench", standalone_mode=False)
    except ImpbenchError as exc:
        click.echo(f"impbench: error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))  # DiskError: 1
    except click.exceptions.Abort:
        click.echo("impbench: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        click.echo(f"impbench: error: {os_error_line(exc)}", err=True)
        sys.exit(1)
    sys.exit(0)
