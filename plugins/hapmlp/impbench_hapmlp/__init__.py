"""impbench plugin: ``hapmlp``, impbench's reference-free haplotype baseline.

Not a published method: a per-segment denoising perceptron over haplotype rows (every segment
of the chromosome has its own two-layer network: the allele and the observed flag of its
positions in, one ALT logit per position out), trained on the phased panel's 2n haplotypes with
an epoch budget. It sets a floor that a reference-free neural method should beat. Registering
the plugin does not import torch; building an imputer does.
"""

from impbench import hookimpl

from .imputer import HapMLPImputer
from .options import Options

__all__ = ["HapMLP", "HapMLPImputer", "Options"]


def __getattr__(name: str):
    if name == "HapMLP":  # the network imports torch: load it on first use
        from .model import HapMLP

        return HapMLP
    raise AttributeError(f"module 'impbench_hapmlp' has no attribute {name!r}")


@hookimpl
def register_imputers(register):
    register(HapMLPImputer)
