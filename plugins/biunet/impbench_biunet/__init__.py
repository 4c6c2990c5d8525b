"""impbench plugin: BiU-Net, a biologically informed 1-D U-Net for reference-free genotype imputation.

Every preset builds the published U-Net (Huang L. et al., Research Square 2025,
https://doi.org/10.21203/rs.3.rs-6797863/v1; code https://github.com/learnslowly/BiU-Net):
``cpu`` (default; width 8 trained on haplotype rows with an epoch budget), ``paper`` (the
authors' archived 1000 Genomes run config, 9,783,078 parameters) and ``paper-text`` (the
paper's text). Every setting is an option:
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
