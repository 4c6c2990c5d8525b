"""Test helpers for imputer plugins and for impbench itself (import path kept stable).

- ``ImputerContract`` (``impbench.testing.contract``): the tests every imputer plugin passes;
- ``InMemoryStore`` (``impbench.testing.store``): a dataset store over an in-memory matrix;
- ``write_synthetic_run`` (``impbench.testing.synthetic``): a made-up run folder for report tests.
"""

from impbench.testing.contract import (  # noqa: F401
    CONTRACT_FULLY_MASKED_VARIANT, CONTRACT_MASK_RATE, CONTRACT_SAMPLES, CONTRACT_VARIANTS, ImputerContract, contract_data,
)
from impbench.testing.store import InMemoryStore  # noqa: F401

__all__ = ["ImputerContract", "InMemoryStore", "contract_data"]
