"""The SCDA architectures by name (no torch: the options check names against it at registration)."""

#: (encoder_channels, decoder_channels, kernel_size, dropout) of the named architectures.
ARCHITECTURES: dict[str, tuple[tuple[int, ...], tuple[int, ...], int, float]] = {
    "paper6": ((32, 64, 128, 256, 512, 1024), (1024, 512, 256, 128, 64), 7, 0.25),
    "original": ((32, 64, 128), (64, 32), 5, 0.25),
}


def length_multiple(architecture: str) -> int:
    """Sequence lengths must be a multiple of this (``2 ** pooling steps``)."""
    return 2 ** len(ARCHITECTURES[architecture][1])
