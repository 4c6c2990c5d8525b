"""Headless Chromium for tests that look at a page as a reader would (the leaderboard's browser
test): ``find_chromium`` and ``chromium_command``. A page's own Content-Security-Policy forbids
scripts; ``with_probe`` returns a copy without it and with a measuring script added."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path


def find_chromium() -> str | None:
    """The chromium executable (``chromium`` or ``chromium-browser``), or None."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
        if path:
            return path
    return None


def run_chromium(chromium: str, profile: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium with a throw-away profile and no network services."""
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--hide-scrollbars", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def with_probe(html: str, script: str) -> str:
    """``html`` without its Content-Security-Policy and with ``script`` before ``</body>``."""
    return re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace("</body>", script + "</body>")
