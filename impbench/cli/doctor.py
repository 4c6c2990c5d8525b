"""``impbench doctor``: the external tools found (version, path) or missing (how to install)."""

from __future__ import annotations

import click


@click.command("doctor")
def doctor_cmd() -> None:
    """List each external tool impbench can use (Beagle, Minimac4, Java, bcftools, Slurm,
    Chromium, CUDA): found, with its version and path, or missing, with the command that
    installs it; and which imputers and tests it enables. Nothing is installed or changed.

    \b
    Beagle and Minimac4 are looked up as their plugins do: $BEAGLE_JAR / $MINIMAC4 first,
    then PATH. A Slurm that is installed but has no controller running says so.
    """
    from impbench.doctor import check_all, doctor_lines
    from impbench.imputers.registry import get_imputers

    findings = check_all()
    for line in doctor_lines(findings, set(get_imputers())):
        click.echo(line)
    missing = [f.tool.name for f in findings if not f.found]
    click.echo(f"{len(findings) - len(missing)} of {len(findings)} tools found"
               + (f"; missing: {', '.join(missing)}" if missing else ""))
