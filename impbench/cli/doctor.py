"""``impbench doctor``: which external tools this machine has, and what each one enables.

Each ``Tool`` is looked up the way its user looks it up (the Beagle and Minimac4 plugins:
their environment variable, then ``PATH``; the rest: ``PATH``), and asked for its version by
running it briefly (a time-out is a version of None, never a hang). A missing tool comes with
the command that installs it. Nothing here imports a plugin or torch: the imputers a tool
enables are named, and marked installed when a plugin registers them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click

APT = "sudo apt-get install -y"
VERSION_TIMEOUT = 20


@dataclass(frozen=True)
class Tool:
    name: str
    commands: tuple[str, ...]  # looked up on PATH, first found wins
    version_args: tuple[str, ...]
    install: str
    imputers: tuple[str, ...] = ()
    enables: str = ""
    env: str | None = None  # a variable naming the tool's path, looked at first
    version_pattern: str = r"(\S*\d[\w.\-]*)"
    package: str | None = None  # the Debian package, asked (dpkg-query) when the tool states no version


@dataclass
class Finding:
    tool: Tool
    path: str | None
    version: str | None
    note: str = ""

    @property
    def found(self) -> bool:
        return self.path is not None


TOOLS = (
    Tool("Beagle", ("beagle",), (), f"{APT} beagle (or set $BEAGLE_JAR to a beagle.jar)", ("beagle",),
         "the beagle imputer; tests marked beagle", env="BEAGLE_JAR", version_pattern=r"version ([\d.]+)"),
    Tool("Minimac4", ("minimac4",), ("--version",), f"{APT} minimac4 (4.x; or set $MINIMAC4)", ("minimac4",),
         "the minimac4 imputer; tests marked minimac4", env="MINIMAC4", version_pattern=r"v?(\d+\.\d+\.\d+)"),
    Tool("Java", ("java",), ("-version",), f"{APT} default-jre-headless", ("beagle",),
         "running Beagle (a Java program)", version_pattern=r'version "([^"]+)"'),
    Tool("bcftools", ("bcftools",), ("--version",), f"{APT} bcftools", (),
         "tests/test_bcftools_crosscheck.py (NRD and GT r² against bcftools stats); inspecting VCFs",
         version_pattern=r"bcftools ([\d.]+)"),
    Tool("Slurm", ("sbatch",), ("--version",), f"{APT} slurm-wlm munge (then scripts/slurm-local.sh start)", (),
         "--executor slurm; tests marked slurm", version_pattern=r"slurm[- ]wlm ([\d.]+)|slurm ([\d.]+)",
         package="slurm-client"),
    Tool("Chromium", ("chromium", "chromium-browser"), ("--version",), f"{APT} chromium", (),
         "tests/test_report_browser.py and tests/test_leaderboard_browser.py (pages checked in headless Chromium)",
         version_pattern=r"Chromium ([\d.]+)"),
    Tool("CUDA", ("nvidia-smi",), ("--query-gpu=driver_version,name", "--format=csv,noheader"),
         "an NVIDIA driver, then a CUDA build of PyTorch (pip install torch, see pytorch.org)", ("biunet", "scda"),
         "--device cuda for the neural imputers (biunet, scda); CPU works without it", version_pattern=r"([\d.]+)"),
)


def _version(argv: list[str], pattern: str) -> tuple[str | None, str]:
    """(version, note) from running ``argv`` briefly; output of stdout and stderr both read."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=VERSION_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, f"no answer within {VERSION_TIMEOUT} s"
    except OSError as exc:
        return None, f"cannot run ({exc.strerror or exc})"
    text = (done.stdout or "") + "\n" + (done.stderr or "")
    match = re.search(pattern, text)
    if match:
        return next(g for g in match.groups() if g), ""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return None, f"exit {done.returncode}: {first[:100]}" if first else f"exit {done.returncode}, no output"


def check_tool(tool: Tool, which: Callable[[str], str | None] = shutil.which) -> Finding:
    """Where ``tool`` is and its version (``which`` looks a command up; ``shutil.which`` by default)."""
    if tool.env and os.environ.get(tool.env, "").strip():
        path = Path(os.environ[tool.env]).expanduser()
        if not path.is_file():
            return Finding(tool, None, None, f"${tool.env} names {path}, which is not a file")
        argv = ["java", "-jar", str(path)] if path.suffix == ".jar" else [str(path), *tool.version_args]
        version, note = _version(argv, tool.version_pattern)
        return Finding(tool, str(path), version, f"from ${tool.env}" + (f"; {note}" if note else ""))
    for command in tool.commands:
        path = which(command)
        if path:
            version, note = _version([path, *tool.version_args], tool.version_pattern)
            if version is None and tool.package:
                version = _package_version(tool.package)
            if tool.name == "Slurm":
                note = _slurm_note() or note
            return Finding(tool, path, version, note)
    return Finding(tool, None, None)


def _package_version(package: str) -> str | None:
    """The installed version of a Debian package (None without dpkg or the package)."""
    command = shutil.which("dpkg-query")
    if command is None:
        return None
    try:
        done = subprocess.run([command, "-W", "-f", "${Version}", package], capture_output=True, text=True,
                              timeout=VERSION_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return f"{done.stdout.strip()} (package {package})" if done.returncode == 0 and done.stdout.strip() else None


def _slurm_note() -> str:
    from impbench.bench.exec.slurm import slurm_available

    reason = slurm_available()
    return "controller reachable" if reason is None else f"installed, but {reason}"


def check_all(which: Callable[[str], str | None] = shutil.which) -> list[Finding]:
    return [check_tool(tool, which) for tool in TOOLS]


def doctor_lines(findings: list[Finding], registered: set[str]) -> list[str]:
    """The report, one tool per line pair: found (version, path) or missing (install command),
    then what it enables (registered imputers marked)."""
    lines = []
    for f in findings:
        imputers = [f"{name}{'' if name in registered else ' (plugin not installed)'}" for name in f.tool.imputers]
        if f.found:
            head = f"{f.tool.name:<9} found    {f.version or 'version unknown'}  {f.path}"
        else:
            head = f"{f.tool.name:<9} MISSING  install: {f.tool.install}"
        if f.note:
            head += f"  ({f.note})"
        lines.append(head)
        lines.append(f"{'':<9} enables  {f.tool.enables}" + (f"; imputers: {', '.join(imputers)}" if imputers else ""))
    return lines


@click.command("doctor")
def doctor_cmd() -> None:
    """List each external tool impbench can use (Beagle, Minimac4, Java, bcftools, Slurm,
    Chromium, CUDA): found, with its version and path, or missing, with the command that
    installs it; and which imputers and tests it enables. Nothing is installed or changed.

    \b
    Beagle and Minimac4 are looked up as their plugins do: $BEAGLE_JAR / $MINIMAC4 first,
    then PATH. A Slurm that is installed but has no controller running says so.
    """
    from impbench.imputers.registry import get_imputers

    findings = check_all()
    for line in doctor_lines(findings, set(get_imputers())):
        click.echo(line)
    missing = [f.tool.name for f in findings if not f.found]
    click.echo(f"{len(findings) - len(missing)} of {len(findings)} tools found"
               + (f"; missing: {', '.join(missing)}" if missing else ""))
