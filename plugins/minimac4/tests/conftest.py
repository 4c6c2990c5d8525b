"""Tests marked ``minimac4`` need a runnable Minimac4 4.x: skipped without one, failed under ``CI=true``."""

from impbench_minimac4.testing import require_minimac4


def pytest_runtest_setup(item):
    if item.get_closest_marker("minimac4") is not None:
        require_minimac4()
