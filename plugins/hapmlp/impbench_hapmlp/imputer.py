"""``HapMLPImputer``: the per-segment haplotype perceptron on ``impbench.nn.SegmentImputer``,
with a size bound checked before training."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import GenotypeMatrix
from impbench.imputers.base import RunContext
from impbench.imputers.segments import n_segments, segment_index
from impbench.nn.imputer import SegmentImputer

from .options import Options

if TYPE_CHECKING:
    import torch

#: float32 copies of every parameter while training: the weights, their gradients and AdamW's
#: two moments.
TRAINING_COPIES = 4
FLOAT_BYTES = 4


def training_bytes(n_params: int) -> int:
    """Bytes of parameters, gradients and optimiser state for ``n_params`` parameters."""
    return int(n_params) * FLOAT_BYTES * TRAINING_COPIES


class HapMLPImputer(SegmentImputer):
    """impbench's reference-free haplotype baseline (not a published method)."""

    name: ClassVar[str] = "hapmlp"
    description: ClassVar[str] = "impbench's reference-free haplotype baseline: a per-segment denoising perceptron over haplotype rows"
    reference_free: ClassVar[bool] = True
    Options: ClassVar[type] = Options

    def parameter_count(self, n_variants: int, layout: tuple[int, int]) -> int:
        from .model import parameter_count

        return parameter_count(n_segments(n_variants, *layout), layout[0], self.options.hidden)

    def check_size(self, n_variants: int, ctx: RunContext) -> None:
        """Refuse, in one line naming the option that shrinks it, a model whose parameters and
        optimiser state would need more than ``memory_fraction`` of the device's available
        memory."""
        from impbench.nn.runtime import available_memory, format_bytes, resolve_device

        layout = self.segment_layout(n_variants, ctx)
        n_params = self.parameter_count(n_variants, layout)
        need = training_bytes(n_params)
        available, source = available_memory(resolve_device(ctx.device))
        if available >= 0 and need > self.options.memory_fraction * available:
            per_unit = need / self.options.hidden
            fits = int(self.options.memory_fraction * available // per_unit)
            raise ImpbenchError(
                f"hapmlp: {n_params:,} parameters ({n_segments(n_variants, *layout):,} segments x hidden {self.options.hidden}) need "
                f"{format_bytes(need)} for weights, gradients and optimiser state, more than {self.options.memory_fraction:g} of the "
                f"{format_bytes(available)} available ({source}); lower --opt hapmlp.hidden (at most {max(fits, 0)} fits)"
            )

    def fit(self, panel: GenotypeMatrix, val: GenotypeMatrix | None, ctx: RunContext) -> None:
        self.check_size(panel.n_variants, ctx)
        super().fit(panel, val, ctx)

    def build_model(self, in_channels: int) -> "torch.nn.Module":
        """The per-segment perceptron; its output bias starts at the training rows' allele
        frequencies when they are known (in training)."""
        from .model import HapMLP

        if self.layout is None or self.n_variants is None:
            raise ImpbenchError("hapmlp: the model has weights per segment; build it through fit()")
        length, overlap = self.layout
        model = HapMLP(n_segments(self.n_variants, length, overlap), length, self.options.hidden)
        if self.train_alt_frequency is not None:
            index, valid = segment_index(self.n_variants, length, overlap)
            model.start_from_frequencies(np.where(valid, self.train_alt_frequency[index], 0.5))
        return model

    def loss(self, logits: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
        from impbench.nn import losses

        return losses.cross_entropy(logits, target)
