"""Tests marked ``beagle`` need a runnable Beagle: skipped without one, failed under ``CI=true``."""

from impbench_beagle.testing import require_beagle


def pytest_runtest_setup(item):
    if item.get_closest_marker("beagle") is not None:
        require_beagle()
