"""impbench plugin: BiU-Net, a biologically informed 1-D U-Net for reference-free genotype imputation.

Presets: ``cpu`` (default; a reference-free per-segment perceptron over haplotypes, not the
U-Net; trains in 200 s on 2 cores), ``unet-cpu`` (the previous CPU recipe), ``paper`` (the
authors' archived 1000 Genomes run config) and ``paper-text`` (the paper's text); both paper
presets build the published network (9,783,078 parameters). Every setting is an option:
``impbench run --imputers biunet --opt biunet.preset=paper --opt biunet.epochs=200``.
Registering the plugin does not import torch; building an imputer does.
"""

from impbench import hookimpl

from .imputer import BiUNetImputer
from .options import Options

__all__ = ["BiUNet", "BiUNetImputer", "Options"]


def __getattr__(name: str):
    if name == "BiUNet":  # the network imports torch: load it on first use
        from .model import BiUNet

        return BiUNet
    raise AttributeError(f"module 'impbench_biunet' has no attribute {name!r}")


@hookimpl
def register_imputers(register):
    register(BiUNetImputer)
