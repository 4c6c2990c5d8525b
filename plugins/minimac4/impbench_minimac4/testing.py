"""Test helper: tests that need a real Minimac4 call ``require_minimac4()`` (the plugin's
conftest does it for every test marked ``minimac4``).

Without Minimac4 such a test is skipped, except under ``CI=true``, where it fails: CI installs
the Debian package ``minimac4``, and a silent skip there would hide a broken set-up.
"""

from __future__ import annotations

import os

from impbench.errors import ImpbenchError

from .locate import find_minimac4, minimac4_version


def minimac4_missing_reason() -> str | None:
    """None when Minimac4 4.x can be found and started; otherwise the one-line reason."""
    try:
        minimac4_version(find_minimac4())
    except ImpbenchError as err:
        return str(err)
    return None


def require_minimac4() -> None:
    """Skip the calling test when Minimac4 is missing, or fail it when ``CI=true``."""
    import pytest

    reason = minimac4_missing_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"CI=true and Minimac4 is missing: {reason}", pytrace=False)
    pytest.skip(reason)
