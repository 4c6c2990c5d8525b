"""impbench: benchmark genotype imputation methods fairly and reproducibly."""

import os as _os
from importlib.metadata import PackageNotFoundError, version

# Torch's OpenMP threads busy-wait by default; on a machine busier than its cores they steal
# the CPU from the threads doing work, and small CPU models ran 10-30x slower with 2 threads
# than with 1 on a loaded 2-core machine. libgomp reads this once, when a plugin first imports
# torch, so it is set here, before any plugin loads; a user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("impbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from impbench.imputers.hookspecs import hookimpl  # noqa: E402  (plugins write `from impbench import hookimpl`)

__all__ = ["__version__", "hookimpl"]
