"""``hapmlp``'s options (no torch: registering the plugin must not import it).

The defaults are its only preset (``default``): haplotype rows (``haplotypes=true``), no
positional or frequency channel (per-segment weights already know every variant), a hidden
layer of 512 per segment, cross-entropy on the hidden alleles only, a masking rate drawn per
row uniformly from 5-50 %, AdamW lr 2e-3 without clipping, a warm-up + cosine over the
optimiser steps of the budget (``lr_schedule=steps``, floor 2 %), 4 passes over the
haplotypes per epoch, batch 2048 rows, 30 epochs (reproducible: never seconds), no early
stopping (model selection still keeps the epoch of best validation R²).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from impbench.errors import ImpbenchError
from impbench.nn.options import NNOptions


@dataclass
class Options(NNOptions):
    """hapmlp settings: ``hidden`` (units of each segment's hidden layer; the parameter count
    is ``n_segments * (3 L hidden + hidden + L)``, so it bounds the model's memory) and
    ``memory_fraction`` (training is refused when parameters, gradients and the two AdamW
    moments would need more than this share of the device's available memory). Shared
    training settings: ``impbench.nn.NNOptions``; ``haplotypes`` must stay true."""

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {"default": {}}

    preset: str = "default"
    hidden: int = 512
    memory_fraction: float = 0.5
    use_position: bool = False
    frequency_channel: bool = False
    haplotypes: bool = True
    epoch_passes: int = 4
    loss_positions: str = "masked"
    mask_sampling: str = "uniform"
    mask_start: float = 0.05
    mask_end: float = 0.5
    epochs: int = 30
    batch_size: int = 2048
    lr: float = 2e-3
    lr_schedule: str = "steps"
    warmup_fraction: float = 0.05
    warmup_epochs: int = 1
    min_lr_ratio: float = 0.02
    grad_clip: float = 0.0
    patience: int = 0
    predict_batch_size: int = 4096

    def check(self) -> None:
        super().check()
        if self.hidden < 1:
            raise ImpbenchError(f"option hapmlp.hidden={self.hidden}: must be at least 1")
        if not 0.0 < self.memory_fraction <= 1.0:
            raise ImpbenchError(f"option hapmlp.memory_fraction={self.memory_fraction}: must be in (0, 1]")
        if not self.haplotypes:
            raise ImpbenchError("option hapmlp.haplotypes=false: hapmlp is a haplotype model (it predicts one allele per position)")
