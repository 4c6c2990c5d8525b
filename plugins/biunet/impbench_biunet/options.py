"""BiU-Net's options and presets (no torch: registering the plugin must not import it).

Presets, each following one named source (``/work/shared/reference/biunet.md`` records both):

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
    Reference-free and sized for 2 CPU cores; not from the paper (every departure is listed in
    the plugin README). Haplotype-level learning: the phased panel's 2n haplotypes are the
    training rows (no mosaics: ``mosaic_switches=3`` measured worse); no U-Net (``unet=false``): a per-segment denoising perceptron
    (``dense_per_segment``: allele and observed flag of 128 positions -> 512 hidden -> 128 ALT
    logits, own weights per segment, output bias started at the panel's allele frequencies);
    cross-entropy on the hidden alleles, a mask rate drawn per row uniformly from 5-50 %;
    AdamW lr 2e-3 with a time-based warm-up + cosine over a 200 s budget
    (``lr_schedule=time``, ``train_seconds=200``). A target's two haplotypes are imputed
    separately and their allele probabilities multiplied into the phased codes. The previous
    ``cpu`` recipe (U-Net width 4 + shared dense branch 2048 on genotypes) is
    ``unet-cpu``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from impbench.errors import ImpbenchError
from impbench.nn.options import NNOptions

LOSSES = ("hybrid", "focal", "ce")

PAPER_NETWORK = dict(
    unet=True, base_channels=32, depth=6, kernel_size=7, dense_hidden=0, dense_per_segment=False, frequency_channel=False, use_position=True,
    haplotypes=False, mosaic_switches=-1, epoch_passes=1, mask_sampling="curriculum", lr_schedule="epochs",
)

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    "unet-cpu": dict(
        unet=True, base_channels=4, depth=6, kernel_size=7, dense_hidden=2048, dense_per_segment=False, use_position=True,
        frequency_channel=True, haplotypes=False, mosaic_switches=-1, epoch_passes=1, mask_sampling="curriculum",
        mask_start=0.5, mask_end=0.5, epochs=60, train_seconds=240.0, batch_size=64, lr=1e-3, lr_schedule="epochs",
        warmup_epochs=1, min_lr_ratio=0.05, grad_clip=1.0, patience=6, predict_batch_size=256,
    ),
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

    Model: base_channels (width of the first level; doubles per level), depth (levels; the
    segment length must be a multiple of ``2 ** (depth - 1)``), kernel_size, dropout,
    dense_hidden (0 = the paper's U-Net; > 0 adds the position-specific dense branch with this
    many hidden units, whose per-position logits are added to the head's), dense_per_segment
    (the branch has its own weights for every segment of the chromosome instead of one set
    shared by all segments).
    Loss: ``hybrid`` (``(1 - dosage_weight) * focal + dosage_weight * dosage term``), ``focal``
    (focal loss weighted by the dosage penalty matrix only) or ``ce`` (plain cross-entropy);
    focal_gamma, penalty (weight of a dosage-changing error; 1 for a correct call or a phase
    swap), dosage_weight (lambda), weighted_dosage (dosage term ``(1 + |d|) d**2`` instead of
    ``d**2``).
    Shared training settings: see ``impbench.nn.NNOptions``.
    """

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESETS

    preset: str = "cpu"
    unet: bool = False
    base_channels: int = 4
    depth: int = 6
    kernel_size: int = 7
    dropout: float = 0.0
    dense_hidden: int = 512
    dense_per_segment: bool = True
    loss: str = "ce"
    focal_gamma: float = 2.0
    penalty: float = 3.0
    dosage_weight: float = 0.5
    weighted_dosage: bool = False
    use_position: bool = False
    frequency_channel: bool = False
    haplotypes: bool = True
    mosaic_switches: int = -1
    epoch_passes: int = 4
    loss_positions: str = "masked"
    mask_sampling: str = "uniform"
    mask_start: float = 0.05
    mask_end: float = 0.5
    epochs: int = 1000
    train_seconds: float = 200.0
    batch_size: int = 2048
    lr: float = 2e-3
    lr_schedule: str = "time"
    warmup_fraction: float = 0.05
    warmup_epochs: int = 1
    min_lr_ratio: float = 0.02
    grad_clip: float = 0.0
    patience: int = 0
    predict_batch_size: int = 4096

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
        if self.dense_hidden < 0:
            raise ImpbenchError(f"option dense_hidden={self.dense_hidden}: must be >= 0 (0 = no dense branch)")
        if not self.unet and self.dense_hidden == 0:
            raise ImpbenchError("option unet=false: needs the dense branch (dense_hidden > 0)")
        if not 0.0 <= self.dosage_weight <= 1.0:
            raise ImpbenchError(f"option dosage_weight={self.dosage_weight}: must be in [0, 1]")
        if self.focal_gamma < 0 or self.penalty <= 0:
            raise ImpbenchError(f"options focal_gamma={self.focal_gamma}, penalty={self.penalty}: need gamma >= 0 and penalty > 0")
