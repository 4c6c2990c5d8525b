"""The BiU-Net network: a 1-D U-Net over genotype segments with additive skips.

Input ``(B, in_channels, L)``: the one-hot over the six codes (0 missing, 1-4 phased genotypes,
5 padding), then optionally the positional channel. With the paper's settings
(``base_channels=32, depth=6, kernel_size=7``, 7 input channels) the encoder runs
``7 -> 32 -> 64 -> 128 -> 256 -> 512 -> 1024`` channels (ReLU after each convolution; after each
of the first five, the activation is kept as a skip, then max-pooled by 2 and dropped out), the
decoder five blocks of ``Upsample(x2, nearest) -> Conv1d -> ReLU -> + skip -> dropout`` back
down to 32 channels, and the head ``Conv1d(32 -> 6)`` gives logits: 9,783,078 parameters. The
logits of code 0 (missing) and code 5 (padding) are set to ``-inf``: they are never predicted.

``dense_hidden > 0`` adds a position-specific branch that is not in the paper: the input
segment is flattened, passed through ``Linear(in_channels * L -> dense_hidden) -> ReLU ->
Linear(dense_hidden -> 6 * L)``, and the result is added to the head's logits. Shared
convolution kernels behind five poolings cannot learn "copy the allele of that particular SNP";
a dense layer over the whole segment can (measured on sim-1kgp; see the plugin README).
With ``n_segments`` set the branch has its own weights for every segment of the chromosome
(``SegmentBranch``), so it is specific to the variants, not only to the offset within a
segment; ``forward`` then needs each row's segment index.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from impbench.genotypes import MISSING, N_CODES, PAD


def channel_widths(base_channels: int, depth: int) -> list[int]:
    """Encoder widths: ``base * 2**i`` for ``i < depth`` (32 ... 1024 in the paper)."""
    return [base_channels * 2**i for i in range(depth)]


class SegmentBranch(nn.Module):
    """A two-layer dense branch with separate weights per segment of the chromosome.

    ``forward(x, segment_index)``: x float (B, C, L), segment_index int64 (B,) < n_segments
    -> logits float (B, 6, L). Each row uses ``W1[k]`` (C*L, H) and ``W2[k]`` (H, 6*L) of its
    segment ``k`` (initialised like ``nn.Linear``).
    """

    def __init__(self, in_channels: int, length: int, hidden: int, n_segments: int):
        super().__init__()
        fan1, fan2 = in_channels * length, hidden
        self.length = int(length)
        self.w1 = nn.Parameter(torch.empty(n_segments, fan1, hidden).uniform_(-1 / math.sqrt(fan1), 1 / math.sqrt(fan1)))
        self.b1 = nn.Parameter(torch.empty(n_segments, hidden).uniform_(-1 / math.sqrt(fan1), 1 / math.sqrt(fan1)))
        self.w2 = nn.Parameter(torch.empty(n_segments, hidden, N_CODES * length).uniform_(-1 / math.sqrt(fan2), 1 / math.sqrt(fan2)))
        self.b2 = nn.Parameter(torch.empty(n_segments, N_CODES * length).uniform_(-1 / math.sqrt(fan2), 1 / math.sqrt(fan2)))

    def forward(self, x: torch.Tensor, segment_index: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1).unsqueeze(1)  # (B, 1, C*L)
        hidden = torch.relu(torch.bmm(flat, self.w1[segment_index]).squeeze(1) + self.b1[segment_index])
        out = torch.bmm(hidden.unsqueeze(1), self.w2[segment_index]).squeeze(1) + self.b2[segment_index]
        return out.view(-1, N_CODES, self.length)


class BiUNet(nn.Module):
    """1-D U-Net with additive skips; ``forward(x) -> logits (B, 6, L)``.

    ``L`` must be a multiple of ``2 ** (depth - 1)`` (the number of poolings).
    """

    def __init__(
        self,
        in_channels: int = 7,
        base_channels: int = 32,
        depth: int = 6,
        kernel_size: int = 7,
        dropout: float = 0.1,
        dense_hidden: int = 0,
        length: int | None = None,
        n_segments: int = 0,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (same-length convolutions), got {kernel_size}")
        widths = channel_widths(base_channels, depth)
        pad = kernel_size // 2
        self.depth = depth
        self.encoder = nn.ModuleList(
            nn.Conv1d(c_in, c_out, kernel_size, padding=pad) for c_in, c_out in zip([in_channels] + widths[:-1], widths)
        )
        self.decoder = nn.ModuleList(
            nn.Conv1d(widths[i + 1], widths[i], kernel_size, padding=pad) for i in reversed(range(depth - 1))
        )
        self.head = nn.Conv1d(widths[0], N_CODES, kernel_size, padding=pad)
        self.pool = nn.MaxPool1d(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.dropout = nn.Dropout(dropout)
        never = torch.zeros(N_CODES, dtype=torch.bool)
        never[[MISSING, PAD]] = True
        self.dense: nn.Module | None = None
        #: True when ``forward`` needs each row's segment index (a per-segment branch).
        self.takes_segment_index = False
        if dense_hidden > 0:
            if not length:
                raise ValueError("dense_hidden needs the segment length")
            self.length = int(length)
            if n_segments > 0:
                self.dense = SegmentBranch(in_channels, self.length, dense_hidden, n_segments)
                self.takes_segment_index = True
            else:
                self.dense = nn.Sequential(
                    nn.Flatten(), nn.Linear(in_channels * self.length, dense_hidden), nn.ReLU(), nn.Linear(dense_hidden, N_CODES * self.length)
                )
        self.register_buffer("never_predicted", never.view(1, N_CODES, 1), persistent=False)

    def forward(self, x: torch.Tensor, segment_index: torch.Tensor | None = None) -> torch.Tensor:
        """x float (B, in_channels, L) -> logits (B, 6, L); ``segment_index`` int64 (B,) is
        needed (and only used) by a per-segment dense branch."""
        inputs = x
        skips = []
        for level, conv in enumerate(self.encoder):
            x = torch.relu(conv(x))
            if level < self.depth - 1:
                skips.append(x)
                x = self.dropout(self.pool(x))
        for conv in self.decoder:
            x = torch.relu(conv(self.upsample(x))) + skips.pop()
            x = self.dropout(x)
        logits = self.head(x)
        if self.takes_segment_index:
            if segment_index is None:
                raise ValueError("this BiU-Net has a per-segment dense branch: forward needs segment_index")
            logits = logits + self.dense(inputs, segment_index)
        elif self.dense is not None:
            logits = logits + self.dense(inputs).view(-1, N_CODES, self.length)
        return logits.masked_fill(self.never_predicted, float("-inf"))
