"""impbench plugin: SCDA, a convolutional denoising autoencoder imputer (reference-free).

Two published networks (``paper6``: the six-level SCDA of the BiU-Net paper; ``original``:
Chen & Shi 2019) and a CPU-sized default (``cpu``), trained by the shared neural-imputer
trainer ``impbench.nn``. See ``impbench_scda.options`` for the presets.
"""

from impbench import hookimpl

from .imputer import SCDAImputer
from .options import SCDAOptions

__all__ = ["SCDAImputer", "SCDAOptions", "register_imputers"]


@hookimpl
def register_imputers(register):
    register(SCDAImputer)
