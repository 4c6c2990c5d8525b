"""Test helper: tests that need a real Beagle call ``require_beagle()`` (the suite's conftest does
it for every test marked ``beagle``).

Without Beagle such a test is skipped, except under ``CI=true``, where it fails: CI installs the
Debian package ``beagle``, and a silent skip there would hide a broken set-up.
"""

from __future__ import annotations

import os

from impbench.errors import ImpbenchError

from .locate import beagle_version, find_beagle


def beagle_missing_reason() -> str | None:
    """None when Beagle can be found and started; otherwise the one-line reason."""
    try:
        beagle_version(find_beagle())
    except ImpbenchError as err:
        return str(err)
    return None


def require_beagle() -> None:
    """Skip the calling test when Beagle is missing, or fail it when ``CI=true``."""
    import pytest

    reason = beagle_missing_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"CI=true and Beagle is missing: {reason}", pytrace=False)
    pytest.skip(reason)
