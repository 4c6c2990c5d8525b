"""Start-up cost of the listing commands: ``impbench datasets`` and ``impbench plugins`` must not
import the heavy libraries (scipy, pandas, matplotlib, h5py, torch) that only preparing, running
or reporting need. Each command runs in a fresh interpreter, which then lists ``sys.modules``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("scipy", "pandas", "matplotlib", "h5py", "torch")

CHILD = r"""
import atexit, json, sys
from impbench.cli import main
atexit.register(lambda: print("\nMODULES " + json.dumps(sorted({name.split(".")[0] for name in sys.modules}))))
main([sys.argv[1]])  # exits
"""


def _top_level_modules_after(command: str, cache) -> set[str]:
    env = {**os.environ, "IMPBENCH_CACHE": str(cache), "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-c", CHILD, command], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    line = [l for l in result.stdout.splitlines() if l.startswith("MODULES ")][-1]
    return set(json.loads(line[len("MODULES "):]))


@pytest.mark.parametrize("command", ["datasets", "plugins"])
def test_listing_commands_import_no_heavy_library(command, tmp_path):
    modules = _top_level_modules_after(command, tmp_path / "cache")
    assert "impbench" in modules and "numpy" in modules  # the command ran, and the check sees imports
    heavy = sorted(set(HEAVY) & modules)
    assert not heavy, f"impbench {command} imports {', '.join(heavy)}"
