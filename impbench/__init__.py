"""impbench: benchmark genotype imputation methods fairly and reproducibly."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("impbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from .hookspecs import hookimpl  # noqa: E402  (plugins write `from impbench import hookimpl`)

__all__ = ["__version__", "hookimpl"]
