"""Finding Minimac4 and reading its version.

Where it comes from, in order: the ``minimac4`` option (a path to the executable), the
``MINIMAC4`` environment variable, the ``minimac4`` command on ``PATH`` (Debian's package).
Only Minimac4 4.x (which reads ``.msav`` panels made by ``--compress-reference``) is accepted.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from impbench.errors import ImpbenchError

INSTALL_HINT = "install it (apt-get install minimac4) or set MINIMAC4=/path/to/minimac4"
_VERSION = re.compile(r"minimac\s+v?(?P<version>[0-9][0-9A-Za-z.\-]*)", re.IGNORECASE)


@dataclass(frozen=True)
class Minimac4Tool:
    """A runnable Minimac4. path : the executable; source : how it was found."""

    path: str
    source: str


def find_minimac4(option: str | None = None) -> Minimac4Tool:
    """The Minimac4 to run; ``ImpbenchError`` (one line, with the install hint) when none is found."""
    for source, value in (("minimac4 option", option), ("MINIMAC4", os.environ.get("MINIMAC4"))):
        if value:
            path = os.path.expanduser(value)
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise ImpbenchError(f"minimac4: {source} names {value}, which is not an executable file")
            return Minimac4Tool(path=path, source=source)
    found = shutil.which("minimac4")
    if found is None:
        raise ImpbenchError(f"minimac4 not found on PATH; {INSTALL_HINT}")
    return Minimac4Tool(path=found, source="PATH")


@functools.lru_cache(maxsize=8)
def _version_of(path: str) -> str:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ImpbenchError(f"minimac4: cannot run {path} --version ({err})") from None
    match = _VERSION.search(done.stdout + done.stderr)
    if done.returncode != 0 or match is None:
        text = (done.stdout + done.stderr).strip().splitlines()
        raise ImpbenchError(f"minimac4: {path} --version did not print a version ({text[-1] if text else 'no output'})")
    version = match.group("version")
    if not version.startswith("4."):
        raise ImpbenchError(f"minimac4: {path} is version {version}; impbench needs Minimac4 4.x (msav panels)")
    return version


def minimac4_version(tool: Minimac4Tool) -> str:
    """The version string, e.g. "4.1.2"; ``ImpbenchError`` when it cannot run or is not 4.x."""
    return _version_of(tool.path)
