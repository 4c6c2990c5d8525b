"""impbench plugin: BiU-Net, a biologically informed 1-D U-Net for reference-free genotype imputation.

Presets: ``cpu`` (default; narrow, short: the embedded demo trains in minutes on 2 cores) and
``paper`` (the published model, 9.78 M parameters). Every setting is an option:
``impbench run --imputers biunet --opt biunet.preset=paper --opt biunet.epochs=200``.
"""

from impbench import hookimpl

from .imputer import BiUNetImputer, Options
from .model import BiUNet

__all__ = ["BiUNet", "BiUNetImputer", "Options"]


@hookimpl
def register_imputers(register):
    register(BiUNetImputer)
