"""``impbench datasets``, ``impbench prepare`` and ``impbench simulate``: dataset cards and
their ingest (VCF -> QC -> split -> HDF5 store)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import click

from impbench.data.cards import card_dirs, get_card, load_cards
from impbench.data.prepare import card_status, prepare, store_path
from impbench.data.qc import QCReport
from impbench.data.simulate import parse_simulation, simulate_dataset
from impbench.errors import ImpbenchError
from impbench.files import os_error_reason
from impbench.progress import RichProgress

CARDS_HELP = (
    "Extra folder of dataset cards (*.toml); repeatable. Also read: the folders in "
    "$IMPBENCH_DATASETS (separated by ':'). A card there replaces a built-in one of the same name."
)

cards_option = click.option(
    "--cards",
    "cards_dirs",
    multiple=True,
    metavar="DIR",
    type=click.Path(path_type=Path, file_okay=False),
    help=CARDS_HELP,
)
dataset_option = click.option(
    "--dataset",
    "-d",
    "dataset",
    required=True,
    metavar="NAME",
    help="Dataset card name (see `impbench datasets`), e.g. sim-1kgp.",
)


def _console():
    from rich.console import Console

    return Console(stderr=True)


@click.command("datasets")
@cards_option
def datasets_cmd(cards_dirs: tuple[Path, ...]) -> None:
    """List the dataset cards and whether each is ready.

    \b
    Status:
      ready      the source is present (simulated cards are always ready:
                 `impbench prepare` simulates them, offline, in seconds)
      prepared   its HDF5 store exists (`impbench prepare` reuses it)
      needs ...  a file is missing: the variable or path to set, and the
                 simulated card that mirrors it
    Card format and the built-in datasets: docs/datasets.md.
    """
    from rich.table import Table


    bad: dict[str, str] = {}
    cards = load_cards(list(cards_dirs) or None, bad=bad)
    table = Table(title="impbench datasets", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("status")
    table.add_column("description")
    for card in cards.values():
        status = card_status(card)
        style = {"ready": "green", "prepared": "cyan"}.get(status, "yellow")
        table.add_row(card.name, card.kind, f"[{style}]{status}[/]", card.description)
    from rich.console import Console

    console = Console()
    console.print(table)
    folders = ", ".join(str(folder) for folder in card_dirs(list(cards_dirs) or None))
    console.print(f"cards from: {folders}", highlight=False, style="dim")
    for message in bad.values():  # one line each, on stderr: the good cards are listed above
        click.echo(f"impbench: error: bad card: {message}", err=True)
    if bad:
        raise SystemExit(2)


@click.command("prepare")
@dataset_option
@cards_option
@click.option("--force", is_flag=True, help="Rebuild the store even when one exists for these inputs.")
def prepare_cmd(dataset: str, cards_dirs: tuple[Path, ...], force: bool) -> None:
    """Ingest, QC, split and store a dataset in HDF5.

    Simulated cards are simulated first (cached under $IMPBENCH_CACHE, default
    ~/.cache/impbench). The VCF is read, filtered (biallelic SNPs, phased GT, sample and
    variant missingness, HWE and MAF on the training split), split 8:1:1 by cohort x sex,
    and written to $IMPBENCH_CACHE/stores/<name>-<hash>.h5. The hash covers the settings and the
    source, so running it again with the same inputs reuses the store (--force rebuilds).
    Prints the QC report and the store's path (the last line of standard output).

    \b
    Examples:
      impbench prepare --dataset sim-1kgp
      IMPBENCH_LOS_VCF=los.vcf.gz IMPBENCH_LOS_SAMPLES=los.tsv impbench prepare -d los
      impbench prepare --dataset mydata --cards ~/impbench-cards
    """

    console = _console()
    card = get_card(dataset, list(cards_dirs) or None)
    existed = store_path(card).exists() and not force
    with RichProgress(console=console) as display:
        store = prepare(card, force=force, progress=display)
    if existed:
        console.print(f"{card.name}: reusing the prepared store", highlight=False)
    console.print(QCReport.from_dict(store.qc_report).table(title=f"QC report: {card.name}"))
    sizes = store.split_sizes()
    console.print(
        f"{card.name}: {sum(sizes.values()):,} samples "
        f"({', '.join(f'{split} {n:,}' for split, n in sizes.items())}), "
        f"{store.n_variants:,} variants; dataset hash {store.dataset_hash[:12]}",
        highlight=False,
    )
    click.echo(str(store.path))


@click.command("simulate")
@dataset_option
@click.option(
    "--out",
    "out_dir",
    required=True,
    metavar="DIR",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder to write NAME.vcf.gz (+ .tbi), NAME.samples.tsv and NAME.simulation.json into.",
)
@cards_option
def simulate_cmd(dataset: str, out_dir: Path, cards_dirs: tuple[Path, ...]) -> None:
    """Write an embedded dataset's simulated VCF and sample sheet.

    The same files `impbench prepare` ingests for a simulated card (same seed, same bytes),
    written to DIR for you to look at or to use with other tools: a bgzipped, phased VCF,
    a tab-separated sample sheet (sample, cohort, sex, population) and the simulation's
    settings and counts as JSON. Sizes and seeds come from the card's [simulation] table;
    copy a card into your own folder (--cards) to change them.

    \b
    Example:
      impbench simulate --dataset sim-los --out /tmp/sim-los
    """
    import json


    card = get_card(dataset, list(cards_dirs) or None)
    if card.kind != "simulated":
        mirror = f"; its simulated mirror is {card.mirrors}" if card.mirrors else ""
        raise ImpbenchError(f"dataset {card.name!r} is not simulated (it reads {card.vcf}){mirror}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ImpbenchError(f"--out {out_dir} exists and is not a folder")
    try:  # before the simulation: a folder that cannot be made is one line, and nothing is computed
        out_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(out_dir, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "permission denied", str(out_dir))
    except OSError as exc:
        raise ImpbenchError(f"--out {out_dir}: cannot write there ({os_error_reason(exc)})") from None
    console = _console()
    with RichProgress(console=console) as display:
        vcf, sheet = simulate_dataset(
            parse_simulation(card.simulation, str(card.path)), card.name, out_dir, progress=display
        )
    info = json.loads((out_dir / f"{card.name}.simulation.json").read_text())
    console.print(
        f"{card.name}: {info['n_samples']:,} samples, {info['n_variants']:,} biallelic SNPs "
        f"({info['n_multiallelic_dropped']:,} multiallelic sites dropped)",
        highlight=False,
    )
    click.echo(str(vcf))
    click.echo(str(sheet))
