"""``HapMLP``: a denoising perceptron with its own weights for every segment of the chromosome,
over haplotype rows.

A row is one haplotype of one segment, written with codes 1 (REF) and 4 (ALT), 0 where hidden
or missing. The network reads the allele and the observed flag of each of the segment's ``L``
positions (``2 L`` inputs) and gives one ALT logit per position through
``impbench.nn.SegmentMLP`` (``2 L -> hidden -> L``, the rows grouped by segment). The output is
the logits over the six codes with every code but 1 and 4 at ``-inf`` (code 1's logit is 0),
so the softmax is P(REF) vs P(ALT).
"""

from __future__ import annotations

import torch
from torch import nn

from impbench.genotypes import HOM_ALT, HOM_REF, N_CODES
from impbench.nn.segment_mlp import SegmentMLP


def parameter_count(n_segments: int, length: int, hidden: int) -> int:
    """Trainable parameters of a ``HapMLP`` (without building it)."""
    return int(n_segments) * (2 * length * hidden + hidden + hidden * length + length)


class HapMLP(nn.Module):
    """``forward(x, segment_index)``: x float (B, C, L) with the one-hot of the codes in
    channels 0-5, segment_index int64 (B,) -> logits (B, 6, L) (the autocast dtype under
    autocast)."""

    takes_segment_index = True

    def __init__(self, n_segments: int, length: int, hidden: int):
        super().__init__()
        self.length = int(length)
        self.dense = SegmentMLP(n_segments, 2 * self.length, hidden, self.length)
        allowed = torch.zeros(N_CODES, dtype=torch.bool)
        allowed[[HOM_REF, HOM_ALT]] = True
        self.register_buffer("never_predicted", (~allowed).view(1, N_CODES, 1), persistent=False)

    def forward(self, x: torch.Tensor, segment_index: torch.Tensor) -> torch.Tensor:
        observed = x[:, HOM_REF] + x[:, HOM_ALT]
        alt_logit = self.dense(torch.cat([x[:, HOM_ALT], observed], dim=1), segment_index)  # (B, L)
        zero = torch.zeros_like(alt_logit)
        logits = torch.stack([zero if code != HOM_ALT else alt_logit for code in range(N_CODES)], dim=1)
        return logits.masked_fill(self.never_predicted, float("-inf"))

    @torch.no_grad()
    def start_from_frequencies(self, alt_frequency) -> None:
        """Set the output bias to the logit of each position's ALT allele frequency
        (array-like (n_segments, L), clipped to [1e-3, 1 - 1e-3]): training starts from the
        panel's allele frequencies instead of 1/2."""
        freq = torch.as_tensor(alt_frequency, dtype=torch.float32).clamp(1e-3, 1 - 1e-3)
        self.dense.b2.copy_(torch.log(freq / (1 - freq)).view_as(self.dense.b2))
