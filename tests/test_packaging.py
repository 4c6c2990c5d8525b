"""pip install without make: the core's wheel builds and carries the dataset cards, the suites
and the console script; each plugin's wheel builds. Slow: each build runs pip in its own
isolated build environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ("plugins/beagle", "plugins/minimac4", "plugins/biunet", "plugins/scda", "examples/impbench-example")

pytestmark = pytest.mark.slow


IGNORE = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache")


def copy_core(dest: Path) -> Path:
    """What the core's wheel is built from (impbench/cards and impbench/suites stay links)."""
    for name in ("impbench", "datasets", "suites"):
        shutil.copytree(ROOT / name, dest / name, symlinks=True, ignore=IGNORE)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    return dest


def build_wheel(source: Path, out: Path) -> Path:
    """Build from a copy, so that setuptools' build/ folder is not left in the checkout."""
    if source == ROOT:
        source = copy_core(out / "src")
    else:
        source = Path(shutil.copytree(source, out / "src", ignore=IGNORE))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    wheels = sorted(out.glob("*.whl"), key=lambda p: p.stat().st_mtime)
    assert wheels, done.stderr[-3000:]
    return wheels[-1]


def test_core_wheel_carries_cards_suites_and_the_console_script(tmp_path):
    wheel = build_wheel(ROOT, tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    for card in (ROOT / "datasets").glob("*.toml"):
        assert f"impbench/cards/{card.name}" in names
    for suite in (ROOT / "suites").glob("*.toml"):
        assert f"impbench/suites/{suite.name}" in names
    assert "impbench/report/leaderboard/__init__.py" in names and "impbench/cli/suite.py" in names
    assert "impbench = impbench.cli:main" in scripts


@pytest.mark.parametrize("plugin", PLUGINS)
def test_each_plugin_wheel_builds(tmp_path, plugin):
    wheel = build_wheel(ROOT / plugin, tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(next(n for n in archive.namelist() if n.endswith("entry_points.txt"))).decode()
    assert "[impbench]" in entry_points
