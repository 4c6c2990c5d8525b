"""pluggy hook specifications of the ``impbench`` project.

A plugin package exposes a module under the ``impbench`` entry-point group::

    [project.entry-points.impbench]
    myimputer = "impbench_myimputer"

and implements the hook in it::

    from impbench import hookimpl

    @hookimpl
    def register_imputers(register):
        register(MyImputer)
"""

import pluggy

PROJECT = "impbench"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_imputers(register):
    """Register imputer classes by calling ``register(ImputerSubclass)`` once per class."""
