"""``impbench doctor``: a tool on PATH is found with its version and path, a missing one names
the command that installs it, and taking Beagle off PATH makes it missing (and nothing else)."""

from __future__ import annotations

import os
import shutil
import stat

from click.testing import CliRunner

from impbench.cli import cli
from impbench.cli.doctor import TOOLS, check_tool, doctor_lines

BY_NAME = {tool.name: tool for tool in TOOLS}


def fake_tool(folder, name, output):
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_tool_on_path_is_found_with_its_version_and_path(tmp_path, monkeypatch):
    path = fake_tool(tmp_path, "minimac4", "minimac v4.1.2")
    monkeypatch.delenv("MINIMAC4", raising=False)
    finding = check_tool(BY_NAME["Minimac4"], which=lambda c: str(path) if c == "minimac4" else None)
    assert finding.found and finding.path == str(path) and finding.version == "4.1.2"


def test_the_env_variable_wins_over_path(tmp_path, monkeypatch):
    path = fake_tool(tmp_path, "my-minimac", "minimac v4.0.9")
    monkeypatch.setenv("MINIMAC4", str(path))
    finding = check_tool(BY_NAME["Minimac4"], which=lambda c: None)
    assert finding.version == "4.0.9" and "from $MINIMAC4" in finding.note
    monkeypatch.setenv("MINIMAC4", str(tmp_path / "absent"))
    finding = check_tool(BY_NAME["Minimac4"], which=lambda c: None)
    assert not finding.found and "not a file" in finding.note


def test_a_missing_tool_names_its_install_command_and_what_it_enables(monkeypatch):
    monkeypatch.delenv("BEAGLE_JAR", raising=False)
    finding = check_tool(BY_NAME["Beagle"], which=lambda c: None)
    assert not finding.found
    lines = doctor_lines([finding], registered=set())
    assert lines[0].startswith("Beagle    MISSING  install: sudo apt-get install -y beagle")
    assert "imputers: beagle (plugin not installed)" in lines[1]


def test_doctor_with_beagle_taken_off_path(tmp_path, monkeypatch):
    """Every other tool found on the real PATH is linked into a PATH of its own, Beagle left out."""
    monkeypatch.delenv("BEAGLE_JAR", raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kept = []
    for tool in TOOLS:
        for command in tool.commands + (("sinfo",) if tool.name == "Slurm" else ()):
            found = shutil.which(command)
            if found and tool.name != "Beagle":
                os.symlink(found, bin_dir / command)
                kept.append(tool.name)
    monkeypatch.setenv("PATH", str(bin_dir))
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("Beagle    MISSING  install:") for line in lines)
    for name in set(kept):
        head = next(line for line in lines if line.startswith(f"{name:<9} "))
        assert " found " in head and str(bin_dir) in head, head
