"""``NNOptions``: the settings every segment-based neural imputer shares.

A plugin's options class subclasses ``NNOptions`` (a dataclass), adds its model's fields, and
fills ``PRESETS``. The dataclass defaults must equal the ``default_preset`` so that options
built without a ``preset`` key and ``from_preset(default_preset)`` agree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from impbench.errors import ImpbenchError

#: Fields that change how a run executes but not what it learns: a checkpoint written under
#: other values of these is still accepted.
#: ``epochs`` and ``train_seconds`` are budgets: a finished training is extended by resuming
#: with more of either (the cosine schedule then stretches to the new epoch count).
RUNTIME_FIELDS = ("resume", "predict_batch_size", "amp", "epochs", "train_seconds")

AMP_MODES = ("auto", "bf16", "fp16", "fp16-cuda", "off")
LOSS_POSITIONS = ("all", "masked")
MASK_MODES = ("auto", "cells", "variants")
MASK_SAMPLING = ("curriculum", "uniform")
LR_SCHEDULES = ("epochs", "steps")


@dataclass
class NNOptions:
    """Shared settings of a segment-based neural imputer.

    Segmentation
        segment_length, segment_overlap : ``None`` takes the dataset card's value (the
        harness passes it in ``ctx.card_options``), else 128 and 16.
        use_position : add the positional channel (segment-local normalised bp position).
        frequency_channel : add the training panel's ALT allele frequency of each variant as
        one more input channel (not in the BiU-Net paper: it gives a small model trained
        briefly the per-variant prior that a large model learns from many epochs).
    Haplotype-level learning (not in the BiU-Net paper)
        haplotypes : train and predict on haplotypes, not genotypes: the phased panel of ``n``
        samples is ``2n`` allele sequences (``data.haplotype_codes``); a target's two
        haplotypes are imputed separately and their allele probabilities multiplied into the
        four phased codes (``data.genotype_probs_from_haplotypes``).
        mosaic_switches : -1 = train on the panel's rows as they are; k >= 0 = every training
        row is a fresh mosaic of k + 1 random panel rows of the same segment, switching at k
        random breakpoints (Li and Stephens' copying model): unlimited training data with the
        panel's local linkage disequilibrium.
        epoch_passes : an epoch is this many passes over the training rows (with mosaics each
        pass is new data; fewer validations and checkpoints per training second).
    Optimisation (AdamW, linear warm-up then cosine, stepped per epoch)
        epochs, batch_size, lr, beta1, beta2, weight_decay, warmup_epochs, min_lr_ratio (the
        cosine's floor as a fraction of ``lr``), grad_clip (max gradient norm; 0 = off).
        lr_schedule : "epochs" (warm-up over ``warmup_epochs`` and cosine over ``epochs``,
        stepped per epoch) or "steps" (the same shape over every optimiser step of the budget,
        ``epochs`` times the steps of an epoch: warm-up over the first ``warmup_fraction`` of
        the steps, then cosine to ``min_lr_ratio``). Both are in steps, never seconds.
    Masking curriculum (a fresh mask per batch; each call hidden with the current rate)
        mask_sampling : "curriculum" (below) or "uniform" (every row of every batch draws its
        own rate uniformly from [mask_start, mask_end]: one model for every masking level).
        mask_start, mask_end : the rate rises linearly from ``mask_start`` at epoch 0 to
        ``mask_end`` at epoch ``mask_ramp_epochs`` (``None``: over all epochs), then stays.
        loss_positions : "all" (every non-padding position, observed and hidden, as the
        paper) or "masked" (the hidden cells only: a stronger signal for short training).
        mask_mode : "cells" (each call hidden on its own), "variants" (whole variants hidden
        in every sample of a batch that holds them: an array-like scheme where untyped
        variants are missing in every target sample), or "auto" (the default: "variants" when
        the run's masking scheme is "array", else "cells"). Validation uses the same mode.
        drop_last : skip each epoch's last, partial batch (as the authors' archived runs).
        seed : the training seed; None = the run's seed (``ctx.seed``).
    Budgets (reproducible: the same options, data and ``--threads`` give the same
    checkpoint and ``train_metrics.csv`` on a loaded and on a quiet machine)
        epochs : the epoch budget (each epoch ``epoch_passes`` passes over the training rows,
        cut into steps of ``batch_size`` rows). batch_size is the global batch: under DDP each
        of the N ranks takes ``batch_size / N`` rows per step (it must divide).
        train_seconds : an opt-in wall-clock cap over all runs of this checkpoint (0 = none, the
        default): training stops at the first step past it on any rank, logs a warning and
        records ``stop_reason="time"``; such a training depends on the machine's load. Neither
        enters the checkpoint fingerprint, so a finished training is extended by resuming with
        a larger budget.
    Model selection and early stopping (on the imputation task, not the loss)
        Every epoch the model imputes the validation split under a fixed seeded mask of
        ``val_mask_rate`` (same cells every epoch) and is scored as the benchmark scores
        (``impbench.scoring``: masked-cell minor-allele dosage R², minor allele of the
        training rows, and concordance of ``Imputation.from_probs``' calls); the best checkpoint is
        the epoch of highest R². patience : stop after this many epochs without an R²
        improvement (0 = never stop early). val_fraction : share of panel samples held out for
        validation when the harness passes no validation split.
    Execution
        amp : mixed precision: "auto" (bf16 on CUDA where supported, fp16 with a gradient
        scaler otherwise, off on CPU), "bf16", "fp16", "fp16-cuda" (fp16 with a scaler on
        CUDA, off on CPU) or "off".
        predict_batch_size : segments per forward pass at prediction.
        resume : continue from the latest checkpoint in the work folder when it matches.
    """

    #: preset name -> field values; a subclass fills it. ``from_preset`` starts from the
    #: dataclass defaults and applies these.
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {"default": {}}

    preset: str = "default"
    segment_length: int | None = None
    segment_overlap: int | None = None
    use_position: bool = True
    frequency_channel: bool = False
    haplotypes: bool = False
    mosaic_switches: int = -1
    epoch_passes: int = 1
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.01
    warmup_epochs: int = 2
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0
    lr_schedule: str = "epochs"
    warmup_fraction: float = 0.05
    mask_sampling: str = "curriculum"
    mask_start: float = 0.05
    mask_end: float = 0.25
    mask_ramp_epochs: int | None = None
    loss_positions: str = "all"
    mask_mode: str = "auto"
    drop_last: bool = False
    seed: int | None = None
    train_seconds: float = 0.0
    patience: int = 10
    val_mask_rate: float = 0.15
    val_fraction: float = 0.1
    amp: str = "auto"
    predict_batch_size: int = 256
    resume: bool = True

    @classmethod
    def from_preset(cls, name: str) -> "NNOptions":
        """The options of the named preset; ``ImpbenchError`` listing the presets if unknown."""
        if name not in cls.PRESETS:
            raise ImpbenchError(f"unknown preset {name!r} for {cls.__qualname__}; valid: {', '.join(cls.PRESETS)}")
        return cls(**{"preset": name, **dict(cls.PRESETS[name])})

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise ``ImpbenchError`` naming the first invalid setting."""

        def bad(field: str, why: str) -> None:
            raise ImpbenchError(f"option {field}={getattr(self, field)!r}: {why}")

        for name in ("epochs", "batch_size", "predict_batch_size", "epoch_passes"):
            if getattr(self, name) < 1:
                bad(name, "must be at least 1")
        if self.segment_length is not None and self.segment_length < 1:
            bad("segment_length", "must be at least 1")
        if self.segment_overlap is not None and self.segment_overlap < 0:
            bad("segment_overlap", "must be >= 0")
        if self.segment_length is not None and self.segment_overlap is not None and self.segment_overlap >= self.segment_length:
            bad("segment_overlap", f"must be smaller than segment_length={self.segment_length}")
        for name in ("mask_start", "mask_end"):
            if not 0.0 <= getattr(self, name) < 1.0:
                bad(name, "must be in [0, 1)")
        if not 0.0 < self.val_mask_rate < 1.0:
            bad("val_mask_rate", "must be in (0, 1)")
        if self.train_seconds < 0:
            bad("train_seconds", "must be >= 0 (0 = no time budget)")
        if self.mosaic_switches < -1:
            bad("mosaic_switches", "must be -1 (no mosaics) or >= 0 (breakpoints per mosaic)")
        if self.mask_sampling not in MASK_SAMPLING:
            bad("mask_sampling", f"must be one of {', '.join(MASK_SAMPLING)}")
        if self.mask_sampling == "uniform" and self.mask_start > self.mask_end:
            bad("mask_start", f"must be <= mask_end={self.mask_end} with mask_sampling=uniform")
        if self.lr_schedule == "time":
            bad("lr_schedule", "the wall-clock schedule was removed (it made training depend on the machine's load); use steps")
        if self.lr_schedule not in LR_SCHEDULES:
            bad("lr_schedule", f"must be one of {', '.join(LR_SCHEDULES)}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            bad("warmup_fraction", "must be in [0, 1)")
        if self.mask_mode not in MASK_MODES:
            bad("mask_mode", f"must be one of {', '.join(MASK_MODES)}")
        if not 0.0 <= self.val_fraction < 1.0:
            bad("val_fraction", "must be in [0, 1)")
        if self.lr <= 0:
            bad("lr", "must be positive")
        for name in ("warmup_epochs", "patience", "grad_clip", "weight_decay", "min_lr_ratio"):
            if getattr(self, name) < 0:
                bad(name, "must be >= 0")
        if self.mask_ramp_epochs is not None and self.mask_ramp_epochs < 0:
            bad("mask_ramp_epochs", "must be >= 0")
        if self.loss_positions not in LOSS_POSITIONS:
            bad("loss_positions", f"must be one of {', '.join(LOSS_POSITIONS)}")
        if self.amp not in AMP_MODES:
            bad("amp", f"must be one of {', '.join(AMP_MODES)}")

    def as_dict(self) -> dict[str, Any]:
        """The options as a JSON-able dict (what the manifest and checkpoints record)."""
        return dataclasses.asdict(self)

    def learning_fields(self) -> dict[str, Any]:
        """The options that determine what is learned (all but ``RUNTIME_FIELDS``)."""
        return {k: v for k, v in self.as_dict().items() if k not in RUNTIME_FIELDS}
