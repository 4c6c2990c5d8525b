"""``SCDAOptions``: the shared neural-imputer settings plus SCDA's model fields, and presets.

Presets (``--opt scda.preset=NAME``; other ``--opt scda.*`` values then override single fields):

``cpu`` (the default, on every device, so that a result named ``scda`` means one model;
ask for ``paper6`` on a GPU)
    The ``original`` network (kernel 5, 32/64/128 channels, dropout 0.1, no L1) trained on
    full-length sequences with the shared trainer's schedule (AdamW lr 2e-3, batch 2, warm-up +
    cosine, clipping, 5 -> 25 % masking curriculum, 25 epochs, patience 5). Like BiU-Net's
    ``cpu`` preset it departs from the published recipes twice, because a small network trained
    for two minutes learns nothing useful from them (on ``sim-1kgp`` the published recipe stayed
    near "always 0|0", dosage R2 ~0.01-0.03 after 30 epochs): the training panel's ALT allele
    frequency is one more input channel (``frequency_channel``) and the loss counts the hidden
    cells only (``loss_positions=masked``). It trains in about 1.5-3 minutes on 2 CPU cores on
    ``sim-1kgp`` and beats ``major`` there.
``paper6``
    Follows the BiU-Net authors' archived SCDA run config for 1000 Genomes chr22: the
    six-level SCDA benchmarked in the BiU-Net paper (encoder like BiU-Net's, kernel 7,
    ``6 -> 32 ... 1024``, no positional channel, no skips; decoder ``1024 -> 1024 -> 512 ->
    256 -> 128 -> 64 -> 6``; 17,110,886 parameters) trained on full-length sequences padded to
    a multiple of 32 with the focal loss (gamma 2) over every non-padding position, dropout 0,
    batch 512, AdamW lr 7.2e-4, a constant 15 % masking ratio, 1000 epochs (the run used the
    checkpoint of epoch 780; here model selection picks the best epoch on validation R²).
    Not reproduced: the archived head's ReLU on the logits (a bug) and its explicit
    Kaiming-uniform initialisation (PyTorch's default convolution initialisation is also
    Kaiming-uniform). The archive does not state the optimiser's betas, weight decay, clipping
    and warm-up; these follow the BiU-Net runs (0.9/0.99, 0.01, 1.0, 5 epochs).
``original``
    Chen & Shi 2019 as published: kernel 5, 32/64/128 channels, two pooling steps, dropout
    0.25, L1 penalty 1e-4 on the convolution kernels, plain Adam (lr 1e-3, betas 0.9/0.999, no
    weight decay, constant learning rate, no clipping), batch 32, cross-entropy, a constant
    training missing rate of 0.1; full-length sequences padded to a multiple of 4.

``segmented=true`` trains and predicts on the dataset card's segments (length 128, overlap 16
unless set) like BiU-Net instead of full-length sequences: for chromosomes whose full-length
training does not fit in memory (``fit`` checks a memory estimate against the device before it
trains, and says so). ``batch_size`` and ``predict_batch_size`` count segments: one whole
sequence each in full-length mode, one 128-SNP segment each in segmented mode, so raise them
with ``segmented=true`` (e.g. ``batch_size=256``). The manifest records which mode ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from impbench.errors import ImpbenchError
from impbench.nn.options import NNOptions

from .architectures import ARCHITECTURES

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": dict(
        architecture="original", width=1.0, dropout=0.1, l1=0.0, segmented=False,
        frequency_channel=True, loss_positions="masked",
        epochs=25, batch_size=2, lr=2e-3, beta1=0.9, beta2=0.99, weight_decay=0.01, grad_clip=1.0,
        mask_start=0.05, mask_end=0.25, warmup_epochs=1, min_lr_ratio=0.05, patience=5,
        predict_batch_size=32,
    ),
    # The authors' archived SCDA run for 1000 Genomes chr22 (full length).
    "paper6": dict(
        architecture="paper6", width=1.0, dropout=0.0, l1=0.0, segmented=False,
        frequency_channel=False, loss_positions="all", loss="focal", focal_gamma=2.0,
        epochs=1000, batch_size=512, lr=7.2e-4, beta1=0.9, beta2=0.99, weight_decay=0.01, grad_clip=1.0,
        mask_start=0.15, mask_end=0.15, warmup_epochs=5, min_lr_ratio=0.0, patience=0,
        predict_batch_size=8,
    ),
    # Chen & Shi 2019: Keras Adam (AdamW without decay), constant rate, no clipping, 10 % missing.
    "original": dict(
        architecture="original", width=1.0, dropout=0.25, l1=1e-4, segmented=False,
        frequency_channel=False, loss_positions="all",
        epochs=100, batch_size=32, lr=1e-3, beta1=0.9, beta2=0.999, weight_decay=0.0, grad_clip=0.0,
        mask_start=0.1, mask_end=0.1, warmup_epochs=0, min_lr_ratio=1.0, patience=10,
        predict_batch_size=32,
    ),
}

DEFAULT_PRESET = "cpu"


@dataclass
class SCDAOptions(NNOptions):
    """SCDA's settings: ``NNOptions`` (optimisation, masking, early stopping, execution) plus

    architecture : "paper6" (six levels, kernel 7) or "original" (Chen & Shi 2019, kernel 5).
    width : multiplies every hidden layer's channel count (at least 4 each); 1 = as published.
    dropout : rate after each pooling and each up-sampling.
    loss : "ce" (cross-entropy) or "focal" (focal loss with ``focal_gamma``).
    l1 : L1 penalty on the encoder/decoder convolution kernels added to the loss (the original
        SCDA's sparsity; 1e-4, or 1e-5 for HLA); 0 = none.
    segmented : train and predict on segments (``segment_length``/``segment_overlap``) instead
        of full-length sequences padded to the network's pooling multiple.
    use_position : always False for SCDA (it has no positional channel).

    The dataclass defaults are the ``cpu`` preset's values (``frequency_channel`` and
    ``loss_positions`` are the shared trainer's options; see ``impbench.nn.NNOptions``).
    """

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESETS

    preset: str = DEFAULT_PRESET
    use_position: bool = False
    frequency_channel: bool = True
    epochs: int = 25
    batch_size: int = 2
    lr: float = 2e-3
    warmup_epochs: int = 1
    min_lr_ratio: float = 0.05
    loss_positions: str = "masked"
    patience: int = 5
    predict_batch_size: int = 32
    architecture: str = "original"
    width: float = 1.0
    dropout: float = 0.1
    l1: float = 0.0
    segmented: bool = False
    loss: str = "ce"
    focal_gamma: float = 2.0

    def check(self) -> None:
        super().check()

        def bad(field: str, why: str) -> None:
            raise ImpbenchError(f"option scda.{field}={getattr(self, field)!r}: {why}")

        if self.architecture not in ARCHITECTURES:
            bad("architecture", f"must be one of {', '.join(ARCHITECTURES)}")
        if self.width <= 0:
            bad("width", "must be positive")
        if not 0.0 <= self.dropout < 1.0:
            bad("dropout", "must be in [0, 1)")
        if self.l1 < 0:
            bad("l1", "must be >= 0")
        if self.loss not in ("ce", "focal"):
            bad("loss", "must be ce or focal")
        if self.focal_gamma < 0:
            bad("focal_gamma", "must be >= 0")
        if self.use_position:
            bad("use_position", "SCDA has no positional channel")
