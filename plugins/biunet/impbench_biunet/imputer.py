"""``BiUNetImputer``: BiU-Net as an impbench imputer (a model, a loss and options on top of
``impbench.nn.SegmentImputer``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch

from impbench.errors import ImpbenchError
from impbench.nn import NNOptions, SegmentImputer
from impbench.nn import losses

from .model import BiUNet

LOSSES = ("hybrid", "focal", "ce")


@dataclass
class Options(NNOptions):
    """BiU-Net settings. The defaults are the ``cpu`` preset; ``paper`` is the published model.

    Model: base_channels (width of the first level; doubles per level), depth (levels; the
    segment length must be a multiple of ``2 ** (depth - 1)``), kernel_size, dropout.
    Loss: ``hybrid`` (``(1 - dosage_weight) * focal + dosage_weight * dosage MSE``), ``focal``
    (focal loss weighted by the dosage penalty matrix only) or ``ce`` (plain cross-entropy);
    focal_gamma (the focal exponent), penalty (weight of a dosage-changing error; 1 for a
    correct call or a phase swap), dosage_weight (lambda).
    Shared training settings: see ``impbench.nn.NNOptions``; ``use_position=false`` drops the
    positional channel (6 input channels instead of 7).
    """

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        # Narrow and short, so that the embedded demo trains in a few minutes on 2 CPU cores:
        # the dataclass defaults below. Two departures from the paper make a small, briefly
        # trained model useful: the allele-frequency input channel and the loss on the hidden
        # cells only.
        "cpu": {},
        # The published model and training (batch 1024 over many GPUs; ~160 epochs).
        "paper": {
            "base_channels": 32,
            "depth": 6,
            "frequency_channel": False,
            "loss_positions": "all",
            "epochs": 160,
            "batch_size": 1024,
            "warmup_epochs": 5,
            "patience": 20,
            "predict_batch_size": 1024,
        },
    }

    preset: str = "cpu"
    base_channels: int = 8
    depth: int = 6
    kernel_size: int = 7
    dropout: float = 0.1
    loss: str = "hybrid"
    focal_gamma: float = 2.0
    penalty: float = 3.0
    dosage_weight: float = 0.5
    frequency_channel: bool = True
    loss_positions: str = "masked"
    epochs: int = 12
    batch_size: int = 128
    warmup_epochs: int = 1
    patience: int = 4

    def check(self) -> None:
        super().check()
        if self.loss not in LOSSES:
            raise ImpbenchError(f"option loss={self.loss!r}: must be one of {', '.join(LOSSES)}")
        if self.base_channels < 1 or self.depth < 1:
            raise ImpbenchError(f"options base_channels={self.base_channels}, depth={self.depth}: both must be at least 1")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ImpbenchError(f"option kernel_size={self.kernel_size}: must be odd and positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ImpbenchError(f"option dropout={self.dropout}: must be in [0, 1)")
        if not 0.0 <= self.dosage_weight <= 1.0:
            raise ImpbenchError(f"option dosage_weight={self.dosage_weight}: must be in [0, 1]")
        if self.focal_gamma < 0 or self.penalty <= 0:
            raise ImpbenchError(f"options focal_gamma={self.focal_gamma}, penalty={self.penalty}: need gamma >= 0 and penalty > 0")


class BiUNetImputer(SegmentImputer):
    """BiU-Net (Huang et al.): a biologically informed 1-D U-Net, reference-free."""

    name: ClassVar[str] = "biunet"
    description: ClassVar[str] = "BiU-Net: 1-D U-Net over 128-SNP segments, hybrid focal + dosage loss (reference-free)"
    reference_free: ClassVar[bool] = True
    Options: ClassVar[type] = Options

    @property
    def length_multiple(self) -> int:  # type: ignore[override]
        """Segment lengths must survive ``depth - 1`` halvings."""
        return 2 ** (self.options.depth - 1)

    def build_model(self, in_channels: int) -> torch.nn.Module:
        o = self.options
        return BiUNet(in_channels, base_channels=o.base_channels, depth=o.depth, kernel_size=o.kernel_size, dropout=o.dropout)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        o = self.options
        if o.loss == "ce":
            return losses.cross_entropy(logits, target)
        if o.loss == "focal":
            return losses.focal(logits, target, gamma=o.focal_gamma, penalty=o.penalty)
        return losses.hybrid(logits, target, gamma=o.focal_gamma, penalty=o.penalty, dosage_weight=o.dosage_weight)
