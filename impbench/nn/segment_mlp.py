"""``SegmentMLP``: a two-layer perceptron with its own weights for every segment of the
chromosome, computed segment by segment in one batched matrix product.

A row of a batch is one segment of one sample (or haplotype); its weights are those of its
segment. Gathering a weight matrix per row (``w1[segment_index]``) copies the weights once per
row; here the rows are grouped by segment instead (padded to the largest group) and each group
is multiplied by its segment's weights once (``torch.baddbmm`` over segments), so a step reads
every weight once whatever the batch size.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SegmentMLP(nn.Module):
    """``forward(x, segment_index)``: x float (B, in_features), segment_index int64 (B,) with
    values < ``n_segments`` -> float (B, out_features) = ``W2[k] relu(W1[k] x + b1[k]) + b2[k]``
    for each row's segment ``k`` (initialised like ``nn.Linear``). Under autocast the output
    has the autocast dtype.
    """

    def __init__(self, n_segments: int, in_features: int, hidden: int, out_features: int):
        super().__init__()
        if min(n_segments, in_features, hidden, out_features) < 1:
            raise ValueError("SegmentMLP: every size must be at least 1")
        bound1, bound2 = 1 / math.sqrt(in_features), 1 / math.sqrt(hidden)
        self.n_segments = int(n_segments)
        self.w1 = nn.Parameter(torch.empty(n_segments, in_features, hidden).uniform_(-bound1, bound1))
        self.b1 = nn.Parameter(torch.empty(n_segments, 1, hidden).uniform_(-bound1, bound1))
        self.w2 = nn.Parameter(torch.empty(n_segments, hidden, out_features).uniform_(-bound2, bound2))
        self.b2 = nn.Parameter(torch.empty(n_segments, 1, out_features).uniform_(-bound2, bound2))

    def forward(self, x: torch.Tensor, segment_index: torch.Tensor) -> torch.Tensor:
        segment_index = segment_index.to(x.device).long()
        order = torch.argsort(segment_index, stable=True)
        ordered_segment = segment_index[order]
        counts = torch.bincount(segment_index, minlength=self.n_segments)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(x.shape[0], device=x.device) - starts[ordered_segment]
        width = int(counts.max().item()) if x.shape[0] else 0
        grouped = x.new_zeros((self.n_segments, width, x.shape[1]))
        grouped = grouped.index_put((ordered_segment, slot), x[order])
        hidden = torch.relu(torch.baddbmm(self.b1.to(x.dtype), grouped, self.w1.to(x.dtype)))
        out_grouped = torch.baddbmm(self.b2.to(x.dtype), hidden, self.w2.to(x.dtype))
        # Under autocast the products come out in the autocast dtype, not x's: the output
        # takes theirs (index_put needs source and destination of one dtype).
        out = out_grouped.new_empty((x.shape[0], out_grouped.shape[2]))
        return out.index_put((order,), out_grouped[ordered_segment, slot])
