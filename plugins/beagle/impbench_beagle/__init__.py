"""impbench plugin: Beagle 5 imputer (subprocess wrapper)."""

from impbench import hookimpl


@hookimpl
def register_imputers(register):
    """Registers nothing yet: the imputer is being written."""
