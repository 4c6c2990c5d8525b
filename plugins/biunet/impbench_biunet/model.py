"""The BiU-Net network: a 1-D U-Net over genotype segments with additive skips (Huang L. et al.,
"BiU-Net: a Biological-informed U-Net for Genotype Imputation", Research Square 2025,
https://doi.org/10.21203/rs.3.rs-6797863/v1; the authors' code:
https://github.com/learnslowly/BiU-Net).

Input ``(B, in_channels, L)``: the one-hot over the six codes (0 missing, 1-4 phased genotypes,
5 padding), then optionally the positional channel. With the paper's settings
(``base_channels=32, depth=6, kernel_size=7``, 7 input channels) the encoder runs
``7 -> 32 -> 64 -> 128 -> 256 -> 512 -> 1024`` channels (ReLU after each convolution; after each
of the first five, the activation is kept as a skip, then max-pooled by 2 and dropped out), the
decoder five blocks of ``Upsample(x2, nearest) -> Conv1d -> ReLU -> + skip -> dropout`` back
down to 32 channels, and the head ``Conv1d(32 -> 6)`` gives logits: 9,783,078 parameters. The
logits of code 0 (missing) and code 5 (padding) are set to ``-inf``: they are never predicted.
Presets change the width (``base_channels``), the depth and the training recipe, never the
architecture.

Haplotype rows (``haplotypes=True``, for ``NNOptions.haplotypes``): every row is one haplotype
written with codes 1 (REF) and 4 (ALT); the logits of codes 2 and 3 are ``-inf`` too, so the
softmax is over REF and ALT alone.
"""

from __future__ import annotations

import torch
from torch import nn

from impbench.genotypes import HET_01, HET_10, MISSING, N_CODES, PAD


def channel_widths(base_channels: int, depth: int) -> list[int]:
    """Encoder widths: ``base * 2**i`` for ``i < depth`` (32 ... 1024 in the paper)."""
    return [base_channels * 2**i for i in range(depth)]


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
        haplotypes: bool = False,
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
        self.decoder = nn.ModuleList(nn.Conv1d(widths[i + 1], widths[i], kernel_size, padding=pad) for i in reversed(range(depth - 1)))
        self.head = nn.Conv1d(widths[0], N_CODES, kernel_size, padding=pad)
        self.pool = nn.MaxPool1d(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.dropout = nn.Dropout(dropout)
        self.haplotypes = bool(haplotypes)
        never = torch.zeros(N_CODES, dtype=torch.bool)
        never[[MISSING, PAD]] = True
        if haplotypes:
            never[[HET_01, HET_10]] = True
        self.register_buffer("never_predicted", never.view(1, N_CODES, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x float (B, in_channels, L) -> logits (B, 6, L) (the autocast dtype under autocast)."""
        skips = []
        for level, conv in enumerate(self.encoder):
            x = torch.relu(conv(x))
            if level < self.depth - 1:
                skips.append(x)
                x = self.dropout(self.pool(x))
        for conv in self.decoder:
            x = torch.relu(conv(self.upsample(x))) + skips.pop()
            x = self.dropout(x)
        return self.head(x).masked_fill(self.never_predicted, float("-inf"))
