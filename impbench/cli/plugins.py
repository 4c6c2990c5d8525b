"""``impbench plugins``: the registered imputers and their options."""

from __future__ import annotations

import dataclasses
import json

import click
from rich.console import Console
from rich.padding import Padding
from rich.table import Table

from impbench.imputers.registry import get_imputers, load_errors


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
    imputers = get_imputers()
    errors = load_errors()
    if as_json:
        rows = [
            {"name": name, "distribution": info.distribution, "version": info.version, "plugin": info.plugin,
             "reference_free": bool(info.cls.reference_free), "description": info.cls.description,
             "options": {f.name: _json_default(f) for f in dataclasses.fields(info.cls.Options)}}
            for name, info in imputers.items()
        ]
        click.echo(json.dumps({"imputers": rows, "load_errors": errors}, indent=2, default=str))
        return
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
