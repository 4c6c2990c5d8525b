"""``BeagleImputer`` passes the contract every imputer passes (real Beagle runs)."""

import pytest

from impbench.testing import ImputerContract
from impbench_beagle import BeagleImputer

pytestmark = pytest.mark.beagle


class TestBeagle(ImputerContract):
    imputer_cls = BeagleImputer
    options = {"nthreads": 1, "timeout": 120}
