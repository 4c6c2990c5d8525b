"""The SCDA networks: convolutional denoising autoencoders over one-hot genotype codes.

One class covers both published shapes. An encoder of ``len(encoder_channels)`` convolutions
(ReLU after each; max-pool by 2 and dropout after each but the last, whose output is the
bridge), then one decoder block per pooling step (``Conv1d -> ReLU -> Upsample(x2, nearest)
-> dropout``), then a ``Conv1d`` head to the six code logits. No skips, no normalisation, no
activation on the head: the output is raw logits, softmax is applied only when
probabilities are wanted.

- ``paper6``: the six-level SCDA benchmarked in the BiU-Net paper. Kernel 7, encoder
  ``6 -> 32 -> 64 -> 128 -> 256 -> 512 -> 1024`` (five pooling steps), decoder
  ``1024 -> 1024 -> 512 -> 256 -> 128 -> 64``, head ``Conv1d(64 -> 6, k7)``:
  17,110,886 parameters.
- ``original``: Chen & Shi 2019. Kernel 5, encoder ``6 -> 32 -> 64 -> 128`` (two pooling
  steps, 128 is the bridge), decoder ``128 -> 64 -> 32``, head ``Conv1d(32 -> 6, k5)``:
  104,646 parameters with six input and output codes.

The input length must be a multiple of ``2 ** n_pool`` (``length_multiple``) so that the
up-sampled decoder output lines up with the input.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from impbench.genotypes import N_CODES

from .architectures import ARCHITECTURES


class ConvDenoisingAutoencoder(nn.Module):
    """A fully convolutional denoising autoencoder (SCDA).

    encoder_channels : output channels of the encoder convolutions; the last one is the
        bridge (no pooling after it). Pooling steps: ``len(encoder_channels) - 1``.
    decoder_channels : output channels of the decoder blocks, one per pooling step.
    kernel_size : odd convolution width ("same" padding).
    dropout : dropout rate after each pooling and each up-sampling.
    in_channels : one-hot input channels (the six codes).
    n_codes : output logits per position (the six codes).

    ``forward(x)``: x float ``(batch, in_channels, length)`` -> logits float
    ``(batch, n_codes, length)``; ``length`` a multiple of ``length_multiple``.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int],
        kernel_size: int,
        dropout: float,
        in_channels: int = N_CODES,
        n_codes: int = N_CODES,
    ):
        super().__init__()
        encoder_channels = [int(c) for c in encoder_channels]
        decoder_channels = [int(c) for c in decoder_channels]
        if len(encoder_channels) < 1:
            raise ValueError("encoder_channels must name at least one convolution")
        if len(decoder_channels) != len(encoder_channels) - 1:
            raise ValueError(
                f"one decoder block per pooling step: {len(encoder_channels) - 1} expected, "
                f"got {len(decoder_channels)}"
            )
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        padding = kernel_size // 2
        self.n_pool = len(decoder_channels)
        self.length_multiple = 2**self.n_pool
        self.in_channels = in_channels
        self.n_codes = n_codes

        encoder: list[nn.Module] = []
        previous = in_channels
        for level, channels in enumerate(encoder_channels):
            encoder += [nn.Conv1d(previous, channels, kernel_size, padding=padding), nn.ReLU()]
            if level < self.n_pool:
                encoder += [nn.MaxPool1d(2), nn.Dropout(dropout)]
            previous = channels
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = []
        for channels in decoder_channels:
            decoder += [
                nn.Conv1d(previous, channels, kernel_size, padding=padding),
                nn.ReLU(),
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Dropout(dropout),
            ]
            previous = channels
        self.decoder = nn.Sequential(*decoder)
        self.head = nn.Conv1d(previous, n_codes, kernel_size, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.length_multiple:
            raise ValueError(
                f"input length {x.shape[-1]} is not a multiple of {self.length_multiple} "
                f"({self.n_pool} pooling steps)"
            )
        return self.head(self.decoder(self.encoder(x)))

    def hidden_weights(self) -> list[torch.Tensor]:
        """The kernels of the encoder and decoder convolutions (not the head, not biases).

        These carry the original SCDA's L1 penalty (Keras ``kernel_regularizer=l1`` on every
        convolution except the output one).
        """
        return [m.weight for m in self.modules() if isinstance(m, nn.Conv1d) and m is not self.head]


def scale_channels(channels: Sequence[int], width: float) -> list[int]:
    """Channels multiplied by ``width``, rounded, at least 4 each."""
    return [max(4, int(round(c * width))) for c in channels]




def build_model(
    architecture: str, width: float = 1.0, dropout: float | None = None, in_channels: int = N_CODES
) -> ConvDenoisingAutoencoder:
    """The named architecture (``paper6`` or ``original``) with channels scaled by ``width``."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown SCDA architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    encoder, decoder, kernel, default_dropout = ARCHITECTURES[architecture]
    return ConvDenoisingAutoencoder(
        scale_channels(encoder, width),
        scale_channels(decoder, width),
        kernel,
        default_dropout if dropout is None else dropout,
        in_channels=in_channels,
    )


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
