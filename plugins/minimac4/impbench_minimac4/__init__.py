"""impbench plugin: Minimac4 imputer (subprocess wrapper; Debian's ``minimac4`` 4.x).

Minimac4 imputes the variants an array did not type from a reference panel; it applies to the
``array`` masking scheme only. See ``imputer.Minimac4Imputer`` for what fit and impute do.
"""

from impbench import hookimpl

from .imputer import Minimac4Imputer, Minimac4Options, minimac4_available

__all__ = ["Minimac4Imputer", "Minimac4Options", "minimac4_available", "register_imputers"]


@hookimpl
def register_imputers(register):
    register(Minimac4Imputer)
