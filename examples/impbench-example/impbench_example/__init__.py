"""impbench-example: a complete, small impbench plugin (see docs/writing-plugins.md).

The ``impbench`` entry point in pyproject.toml names this module; impbench calls its
``register_imputers`` hook once, when it first needs the list of imputers.
"""

from impbench import hookimpl

__version__ = "0.2.0"


@hookimpl
def register_imputers(register):
    # Import inside the hook: listing plugins stays fast even when an imputer module imports
    # heavy libraries (torch, ...).
    from .imputer import TagSnpImputer

    register(TagSnpImputer)
