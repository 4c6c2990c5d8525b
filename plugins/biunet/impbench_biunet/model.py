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
(``impbench.nn.SegmentMLP``), so it is specific to the variants, not only to the offset within
a segment; ``forward`` then needs each row's segment index.

Haplotype mode (``haplotypes=True``, for ``NNOptions.haplotypes``): every row is one haplotype
written with codes 1 (REF) and 4 (ALT); the logits of codes 2 and 3 are ``-inf`` too, and a
per-segment branch reads only the allele and the observed flag of each position (``2 L``
inputs) and gives one ALT logit per position (code 1's logit is 0). ``unet=False`` leaves the
U-Net out: the logits are the dense branch's alone (a per-segment denoising perceptron).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from impbench.genotypes import HET_01, HET_10, HOM_ALT, HOM_REF, MISSING, N_CODES, PAD
from impbench.nn.segment_mlp import SegmentMLP


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
        dense_hidden: int = 0,
        length: int | None = None,
        n_segments: int = 0,
        unet: bool = True,
        haplotypes: bool = False,
    ):
        super().__init__()
        if not unet and dense_hidden <= 0:
            raise ValueError("unet=False needs a dense branch (dense_hidden > 0)")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (same-length convolutions), got {kernel_size}")
        widths = channel_widths(base_channels, depth)
        pad = kernel_size // 2
        self.depth = depth
        # unet=False: no convolutions at all (the dense branch alone).
        self.encoder = nn.ModuleList(
            nn.Conv1d(c_in, c_out, kernel_size, padding=pad) for c_in, c_out in zip([in_channels] + widths[:-1], widths) if unet
        )
        self.decoder = nn.ModuleList(
            nn.Conv1d(widths[i + 1], widths[i], kernel_size, padding=pad) for i in reversed(range(depth - 1)) if unet
        )
        self.head = nn.Conv1d(widths[0], N_CODES, kernel_size, padding=pad) if unet else None
        self.pool = nn.MaxPool1d(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.dropout = nn.Dropout(dropout)
        self.use_unet = bool(unet)
        self.haplotypes = bool(haplotypes)
        never = torch.zeros(N_CODES, dtype=torch.bool)
        never[[MISSING, PAD]] = True
        if haplotypes:
            never[[HET_01, HET_10]] = True
        self.dense: nn.Module | None = None
        #: True when ``forward`` needs each row's segment index (a per-segment branch).
        self.takes_segment_index = False
        if dense_hidden > 0:
            if not length:
                raise ValueError("dense_hidden needs the segment length")
            self.length = int(length)
            if n_segments > 0 and haplotypes:
                self.dense = SegmentMLP(n_segments, 2 * self.length, dense_hidden, self.length)
                self.takes_segment_index = True
            elif n_segments > 0:
                self.dense = SegmentMLP(n_segments, in_channels * self.length, dense_hidden, N_CODES * self.length)
                self.takes_segment_index = True
            else:
                self.dense = nn.Sequential(
                    nn.Flatten(), nn.Linear(in_channels * self.length, dense_hidden), nn.ReLU(), nn.Linear(dense_hidden, N_CODES * self.length)
                )
        self.register_buffer("never_predicted", never.view(1, N_CODES, 1), persistent=False)

    def forward(self, x: torch.Tensor, segment_index: torch.Tensor | None = None) -> torch.Tensor:
        """x float (B, in_channels, L) -> logits (B, 6, L); ``segment_index`` int64 (B,) is
        needed (and only used) by a per-segment dense branch."""
        logits = self.unet(x) if self.use_unet else x.new_zeros((x.shape[0], N_CODES, x.shape[2]))
        if self.takes_segment_index:
            if segment_index is None:
                raise ValueError("this BiU-Net has a per-segment dense branch: forward needs segment_index")
            if self.haplotypes:
                # Channel 4 is an observed ALT allele, channel 1 an observed REF allele.
                observed = x[:, HOM_REF] + x[:, HOM_ALT]
                alt_logit = self.dense(torch.cat([x[:, HOM_ALT], observed], dim=1), segment_index)
                logits = logits.index_add(1, torch.tensor([HOM_ALT], device=x.device), alt_logit.unsqueeze(1))
            else:
                logits = logits + self.dense(x.flatten(1), segment_index).view(-1, N_CODES, self.length)
        elif self.dense is not None:
            logits = logits + self.dense(x).view(-1, N_CODES, self.length)
        return logits.masked_fill(self.never_predicted, float("-inf"))

    @torch.no_grad()
    def start_from_frequencies(self, alt_frequency) -> None:
        """Set the output bias of a haplotype per-segment branch to the logit of each
        position's ALT allele frequency (array-like (n_segments, L), clipped to [1e-3, 1 - 1e-3]):
        training starts from the panel's allele frequencies instead of 1/2."""
        if not (self.haplotypes and self.takes_segment_index):
            raise ValueError("start_from_frequencies needs a haplotype model with a per-segment branch")
        freq = torch.as_tensor(alt_frequency, dtype=torch.float32).clamp(1e-3, 1 - 1e-3)
        self.dense.b2.copy_(torch.log(freq / (1 - freq)).view_as(self.dense.b2))

    def unet(self, x: torch.Tensor) -> torch.Tensor:
        """The U-Net's logits (B, 6, L)."""
        skips = []
        for level, conv in enumerate(self.encoder):
            x = torch.relu(conv(x))
            if level < self.depth - 1:
                skips.append(x)
                x = self.dropout(self.pool(x))
        for conv in self.decoder:
            x = torch.relu(conv(self.upsample(x))) + skips.pop()
            x = self.dropout(x)
        return self.head(x)
