"""impbench plugin: Beagle 5 imputer (subprocess wrapper).

Finds Beagle as the ``beagle`` command (Debian: ``apt-get install beagle``; bioconda) or as
``BEAGLE_JAR`` run with ``java``. See ``imputer.BeagleImputer`` for what fit and impute do.
"""

from impbench import hookimpl

from .imputer import BeagleImputer, BeagleOptions, beagle_available

__all__ = ["BeagleImputer", "BeagleOptions", "beagle_available", "register_imputers"]


@hookimpl
def register_imputers(register):
    register(BeagleImputer)
