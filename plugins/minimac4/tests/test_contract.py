"""``Minimac4Imputer`` passes the contract (array-style mask: it applies to ``array`` only)."""

import pytest

from impbench.testing import ImputerContract
from impbench_minimac4 import Minimac4Imputer

pytestmark = pytest.mark.minimac4


class TestMinimac4(ImputerContract):
    imputer_cls = Minimac4Imputer
    options = {"threads": 1, "timeout": 120}
