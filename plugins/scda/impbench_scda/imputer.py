"""``SCDAImputer``: the SCDA networks and their loss on the shared neural-imputer trainer.

Everything else (validation hold-out, masking curriculum, optimisation, checkpoints, resume,
DDP, mixed precision, batched prediction and reassembly) is ``impbench.nn.SegmentImputer``'s.
Full-length training is expressed as a segment layout: one segment per sample, as long as the
panel padded (code 5) to the network's pooling multiple, with no overlap.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from impbench.errors import ImpbenchError
from impbench.genotypes import GenotypeMatrix
from impbench.imputers.base import RunContext
from impbench.nn.imputer import SegmentImputer

from .architectures import length_multiple
from .options import SCDAOptions

# torch (the networks, the memory estimate, the losses) is imported when an imputer is built.
if TYPE_CHECKING:
    import torch

    from .models import ConvDenoisingAutoencoder

#: Use at most this share of the memory the device reports as available.
MEMORY_HEADROOM = 0.9


def padded_length(n_variants: int, multiple: int) -> int:
    """``n_variants`` rounded up to a multiple of ``multiple`` (at least one multiple)."""
    return max(1, math.ceil(n_variants / multiple)) * multiple


class SCDAImputer(SegmentImputer):
    """Sparse convolutional denoising autoencoder (Chen & Shi 2019; six-level variant of the
    BiU-Net paper), reference-free."""

    name: ClassVar[str] = "scda"
    description: ClassVar[str] = "SCDA convolutional denoising autoencoder (presets cpu, paper6, original)"
    Options: ClassVar[type] = SCDAOptions

    def __init__(self, options: Any = None):
        super().__init__(options)
        self.memory_estimate: dict[str, Any] | None = None

    @property
    def length_multiple(self) -> int:  # type: ignore[override]
        """Sequence (or segment) lengths must survive the network's poolings."""
        return length_multiple(self.options.architecture)

    # ------------------------------------------------------------------ model and loss
    def build_model(self, in_channels: int) -> "ConvDenoisingAutoencoder":
        """The preset's network; ``in_channels`` is 6 (the one-hot codes), 7 with the shared
        trainer's ``frequency_channel``."""
        from .models import build_model

        opts = self.options
        return build_model(opts.architecture, width=opts.width, dropout=opts.dropout, in_channels=in_channels)

    def loss(self, logits: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
        """Cross-entropy (``loss=ce``) or the focal loss (``loss=focal``: gamma
        ``focal_gamma``, no dosage penalty; the archived SCDA run) over the six codes at every
        scored position whose true code is a call (1-4), plus ``l1`` times the sum of the
        absolute hidden convolution kernels.

        logits : float32 (B, 6, L); target : int64 codes (B, L).
        """
        from impbench.nn import losses

        if self.options.loss == "focal":
            loss = losses.focal(logits, target, gamma=self.options.focal_gamma, penalty=1.0)
        else:
            loss = losses.cross_entropy(logits, target)
        if self.options.l1 > 0:
            penalty = sum(w.abs().sum() for w in self.model.hidden_weights())  # type: ignore[union-attr]
            loss = loss + self.options.l1 * penalty
        return loss

    # ------------------------------------------------------------------ full length or segments
    def segment_layout(self, n_variants: int, ctx: RunContext) -> tuple[int, int]:
        """Segmented: the shared layout. Full length: (the panel padded to the pooling
        multiple, no overlap), so every sample is one segment."""
        if self.options.segmented:
            return super().segment_layout(n_variants, ctx)
        return padded_length(n_variants, self.length_multiple), 0

    def fit(self, panel: GenotypeMatrix, val: GenotypeMatrix | None, ctx: RunContext) -> None:
        if not self.options.segmented and panel.n_variants > 0:
            self.check_full_length_memory(panel.n_variants, ctx, n_samples=panel.n_samples)
        super().fit(panel, val, ctx)

    def check_full_length_memory(self, n_variants: int, ctx: RunContext, n_samples: int | None = None) -> None:
        """Raise ``ImpbenchError`` before training when full-length training or prediction of
        ``n_variants`` SNPs would need more memory than the device has.

        n_samples : the panel's samples, when known: no training batch is larger.
        On CPU, ``ctx.nproc`` training processes share the RAM, so the training estimate is
        multiplied by it; on CUDA each process has its own GPU. Prediction runs in one process.
        """
        from impbench.nn.data import input_channels
        from impbench.nn.runtime import resolve_device

        from . import memory

        opts = self.options
        device = resolve_device(ctx.device)
        length = padded_length(n_variants, self.length_multiple)
        in_channels = input_channels(opts.use_position, int(bool(opts.frequency_channel)))
        model = self.build_model(in_channels)
        batch_size = opts.batch_size if n_samples is None else max(1, min(opts.batch_size, int(n_samples)))
        train_bytes, predict_bytes = memory.full_length_bytes(
            model, in_channels, self.length_multiple, length, batch_size, opts.predict_batch_size
        )
        processes = max(1, int(ctx.nproc)) if device.type == "cpu" else 1
        train_needed = train_bytes * processes
        needed = max(train_needed, predict_bytes)
        available, source = memory.available_memory(device)
        self.memory_estimate = {
            "padded_length": length,
            "train_bytes": train_bytes,
            "predict_bytes": predict_bytes,
            "processes": processes,
            "available_bytes": available,
            "available_source": source,
        }
        if available >= 0 and needed > MEMORY_HEADROOM * available:
            what = "training" if train_needed >= predict_bytes else "prediction"
            batch = batch_size if what == "training" else opts.predict_batch_size
            raise ImpbenchError(
                f"scda: full-length {what} of {n_variants:,} SNPs (padded to {length:,}, batch {batch}"
                f"{f', {processes} processes' if processes > 1 else ''}) needs about "
                f"{memory.format_bytes(needed)}, more than {MEMORY_HEADROOM:.0%} of the "
                f"{memory.format_bytes(available)} available on {device} ({source}); train on segments "
                f"with --opt scda.segmented=true (batch_size then counts segments: raise it, e.g. "
                f"--opt scda.batch_size=256), or lower scda.{'batch_size' if what == 'training' else 'predict_batch_size'}"
            )

    # ------------------------------------------------------------------ manifest
    def manifest_info(self) -> dict:
        info = super().manifest_info()
        opts = self.options
        info.update(
            architecture=opts.architecture,
            width=opts.width,
            l1=opts.l1,
            training="segmented" if opts.segmented else "full-length",
        )
        if not opts.segmented and self.layout is not None:
            info["padded_length"] = self.layout[0]
        if self.memory_estimate is not None:
            info["memory_estimate"] = dict(self.memory_estimate)
        return info
