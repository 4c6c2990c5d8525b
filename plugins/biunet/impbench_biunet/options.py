"""BiU-Net's options and presets (no torch: registering the plugin must not import it).

Every preset builds the published network (the 1-D U-Net of Huang L. et al., "BiU-Net: a
Biological-informed U-Net for Genotype Imputation", Research Square 2025,
https://doi.org/10.21203/rs.3.rs-6797863/v1; the authors' code and run configs:
https://github.com/learnslowly/BiU-Net). Presets change its width (``base_channels``), depth
and the training recipe, never the architecture.

``paper``
    The authors' archived 1000 Genomes chr22 run config (the run behind the published
    numbers): the published network (9,783,078 parameters), dropout 0, batch 1024 with
    ``drop_last``, AdamW lr 1e-3 (betas 0.9/0.99, eps 1e-8, weight decay 0.01), 10 warm-up
    epochs then cosine, 400 epochs, a constant masking ratio of 0.5 (no curriculum), the hybrid
    loss with the ``(1 + |d|) d**2`` dosage weighting over all non-pad cells, fp16 autocast
    with a gradient scaler on CUDA (full precision on CPU), seed 42.
``paper-text``
    What the paper's text says: the same network and optimiser, dropout 0.1 (the code's
    default; the text gives none), a fresh mask per batch with a curriculum from 5 % rising
    to 25 %, the hybrid loss with a plain MSE dosage term over all non-pad cells, warm-up 5
    epochs then cosine, ~160 epochs, mixed precision on GPUs (bf16 or fp16, ``amp=auto``).
``cpu`` (default)
    The same U-Net at width 8 (``base_channels=8``: 612,614 parameters with the position and
    the allele-frequency channel) trained on haplotype rows: the phased panel's 2n haplotypes
    are the training rows (codes 1 = REF, 4 = ALT), the training rows' ALT allele frequency is
    one more input channel (``frequency_channel``), cross-entropy on the hidden alleles only, a
    masking rate drawn per row uniformly from 5-50 %, AdamW lr 5e-3 with a warm-up + cosine over
    the optimiser steps of the budget (``lr_schedule=steps``), batch 256 rows, 30 epochs (an
    epoch budget, reproducible: never seconds; ~3,060 steps on sim-1kgp). A target's two haplotypes are imputed separately and their allele
    probabilities multiplied into the phased codes. Not from the paper: every departure is
    listed by ``departures_from_paper`` (in the manifest) and in the plugin README.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from impbench.errors import ImpbenchError
from impbench.nn.options import NNOptions

LOSSES = ("hybrid", "focal", "ce")

PAPER_NETWORK = dict(
    base_channels=32, depth=6, kernel_size=7, frequency_channel=False, use_position=True,
    haplotypes=False, mosaic_switches=-1, epoch_passes=1, mask_sampling="curriculum", lr_schedule="epochs",
)

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    "paper": dict(
        PAPER_NETWORK, dropout=0.0, loss="hybrid", weighted_dosage=True, focal_gamma=2.0, penalty=3.0, dosage_weight=0.5,
        loss_positions="all", epochs=400, batch_size=1024, drop_last=True, lr=1e-3, beta1=0.9, beta2=0.99,
        weight_decay=0.01, warmup_epochs=10, min_lr_ratio=0.0, grad_clip=1.0, mask_start=0.5, mask_end=0.5,
        patience=0, train_seconds=0.0, amp="fp16-cuda", seed=42, predict_batch_size=1024,
    ),
    "paper-text": dict(
        PAPER_NETWORK, dropout=0.1, loss="hybrid", weighted_dosage=False, focal_gamma=2.0, penalty=3.0, dosage_weight=0.5,
        loss_positions="all", epochs=160, batch_size=1024, drop_last=False, lr=1e-3, beta1=0.9, beta2=0.99,
        weight_decay=0.01, warmup_epochs=5, min_lr_ratio=0.0, grad_clip=1.0, mask_start=0.05, mask_end=0.25,
        patience=20, train_seconds=0.0, amp="auto", predict_batch_size=1024,
    ),
}


@dataclass
class Options(NNOptions):
    """BiU-Net settings. The dataclass defaults are the ``cpu`` preset; see the module
    docstring for ``paper`` (archived run config) and ``paper-text`` (the paper's text).

    Model (always the published U-Net): base_channels (width of the first level; doubles per
    level), depth (levels; the segment length must be a multiple of ``2 ** (depth - 1)``),
    kernel_size, dropout.
    Loss: ``hybrid`` (``(1 - dosage_weight) * focal + dosage_weight * dosage term``), ``focal``
    (focal loss weighted by the dosage penalty matrix only) or ``ce`` (plain cross-entropy);
    focal_gamma, penalty (weight of a dosage-changing error; 1 for a correct call or a phase
    swap), dosage_weight (lambda), weighted_dosage (dosage term ``(1 + |d|) d**2`` instead of
    ``d**2``).
    Shared training settings: see ``impbench.nn.NNOptions``.
    """

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESETS

    preset: str = "cpu"
    base_channels: int = 8
    depth: int = 6
    kernel_size: int = 7
    dropout: float = 0.0
    loss: str = "ce"
    focal_gamma: float = 2.0
    penalty: float = 3.0
    dosage_weight: float = 0.5
    weighted_dosage: bool = False
    use_position: bool = True
    frequency_channel: bool = True
    haplotypes: bool = True
    mosaic_switches: int = -1
    epoch_passes: int = 1
    loss_positions: str = "masked"
    mask_sampling: str = "uniform"
    mask_start: float = 0.05
    mask_end: float = 0.5
    epochs: int = 30
    batch_size: int = 256
    lr: float = 5e-3
    lr_schedule: str = "steps"
    warmup_fraction: float = 0.05
    warmup_epochs: int = 1
    min_lr_ratio: float = 0.02
    grad_clip: float = 1.0
    patience: int = 0
    predict_batch_size: int = 1024

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
