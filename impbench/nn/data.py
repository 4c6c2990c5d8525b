"""Segment data, per-batch encoding, haplotype mosaics, haplotype conversion and the masking
curriculum.

Segments stay uint8 in host memory (``SegmentData.segments``); each batch is moved to the
device as uint8 and expanded there to the model's float input by ``encode``.

Haplotype mode (``NNOptions.haplotypes``): the phased codes of ``n`` samples become ``2n``
haplotype rows written as genotype codes, ``1`` (0|0) for a REF allele and ``4`` (1|1) for an
ALT allele (0 where the genotype is missing), so that segments, masks, losses and reassembly
work unchanged; ``genotype_probs_from_haplotypes`` multiplies the two haplotypes' allele
probabilities back into probabilities over the four phased codes.
"""

from __future__ import annotations

import numpy as np
import torch

from impbench.imputers import segments as seg
from impbench.genotypes import HET_01, HET_10, HOM_ALT, HOM_REF, MISSING, N_CODES


class SegmentData:
    """All segments of a set of genotype sequences, for batching.

    codes : uint8, shape (n_samples, n_variants); positions : int64, shape (n_variants,).
    features : float32, shape (n_variants, n_features) or None: per-variant input channels
        (e.g. the panel's ALT allele frequency), the same for every sample.

    Attributes
    ----------
    segments : uint8 numpy array, shape (n_samples * n_seg, length), in host memory; row
        ``i`` is segment ``i % n_seg`` of sample ``i // n_seg``.
    position : float32 tensor on ``device``, shape (n_seg, length): the positional channel
        of each segment (0 at padding).
    features : float32 tensor on ``device``, shape (n_seg, n_features, length), 0 at
        padding; None without features.
    """

    def __init__(
        self,
        codes: np.ndarray,
        positions: np.ndarray,
        length: int,
        overlap: int,
        device: torch.device | str,
        features: np.ndarray | None = None,
    ):
        codes = np.asarray(codes, dtype=np.uint8)
        self.n_samples, self.n_variants = codes.shape
        self.length = int(length)
        self.overlap = int(overlap)
        self.device = torch.device(device)
        self.n_seg = seg.n_segments(self.n_variants, self.length, self.overlap)
        by_sample = seg.segment_codes(codes, self.length, self.overlap)
        self.segments = np.ascontiguousarray(by_sample.reshape(self.n_samples * self.n_seg, self.length))
        position = seg.positional_channel(np.asarray(positions), self.length, self.overlap)
        self.position = torch.from_numpy(np.ascontiguousarray(position, dtype=np.float32)).to(self.device)
        self.features: torch.Tensor | None = None
        if features is not None:
            features = np.asarray(features, dtype=np.float32).reshape(self.n_variants, -1)
            index, valid = seg.segment_index(self.n_variants, self.length, self.overlap)
            by_segment = np.where(valid[:, None, :], features[index].transpose(0, 2, 1), 0.0)  # (n_seg, k, L)
            self.features = torch.from_numpy(np.ascontiguousarray(by_segment, dtype=np.float32)).to(self.device)

    def __len__(self) -> int:
        return int(self.segments.shape[0])

    @property
    def n_features(self) -> int:
        return 0 if self.features is None else int(self.features.shape[1])

    def mosaic_rows(self, index: np.ndarray, switches: int, rng: np.random.Generator) -> np.ndarray:
        """Mosaic segments (uint8 (B, length)): row ``b`` is segment ``index[b] % n_seg`` copied
        from ``switches + 1`` random rows (donors) of the data, switching donor at ``switches``
        random breakpoints (Li and Stephens' copying model: recombinants with the panel's local
        linkage disequilibrium). ``switches=0`` copies one random donor."""
        index = np.asarray(index, dtype=np.int64)
        segment = index % self.n_seg
        donors = rng.integers(0, self.n_samples, size=(index.size, switches + 1))
        breakpoints = np.sort(rng.integers(1, self.length, size=(index.size, switches)), axis=1)
        piece = (np.arange(self.length)[None, :, None] >= breakpoints[:, None, :]).sum(axis=2)  # (B, L)
        rows = np.take_along_axis(donors, piece, axis=1) * self.n_seg + segment[:, None]
        return self.segments[rows, np.arange(self.length)[None, :]]

    def batch(
        self, index: np.ndarray, mosaic_switches: int = -1, rng: np.random.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Segments ``index`` (int array) on the device; with ``mosaic_switches >= 0`` (and
        ``rng``) mosaics of the same segments instead (``mosaic_rows``).

        Returns codes (uint8, shape (B, length)), their positional channel (float32, shape
        (B, length)) and their per-variant features (float32 (B, n_features, length) or None).
        """
        index = np.asarray(index, dtype=np.int64)
        rows = self.segments[index] if mosaic_switches < 0 or rng is None else self.mosaic_rows(index, mosaic_switches, rng)
        codes = torch.from_numpy(np.ascontiguousarray(rows))
        if self.device.type == "cuda":
            codes = codes.pin_memory().to(self.device, non_blocking=True)
        else:
            codes = codes.to(self.device)
        seg_index = torch.from_numpy(index % self.n_seg).to(self.device)
        features = None if self.features is None else self.features[seg_index]
        return codes, self.position[seg_index], features


def haplotype_codes(codes: np.ndarray) -> np.ndarray:
    """The haplotypes of phased genotype codes as rows of codes: uint8 (n, m) -> uint8 (2n, m).

    Row ``2i`` is sample ``i``'s first haplotype, row ``2i + 1`` its second; an allele is
    written ``1`` (REF) or ``4`` (ALT), a missing genotype ``0`` in both rows.
    """
    codes = np.asarray(codes, dtype=np.uint8)
    first_alt = (codes == HET_10) | (codes == HOM_ALT)
    second_alt = (codes == HET_01) | (codes == HOM_ALT)
    called = (codes >= HOM_REF) & (codes <= HOM_ALT)
    alleles = np.stack([first_alt, second_alt], axis=1).reshape(-1, codes.shape[1])
    out = np.where(alleles, np.uint8(HOM_ALT), np.uint8(HOM_REF))
    return np.where(np.repeat(called, 2, axis=0), out, np.uint8(MISSING)).astype(np.uint8)


def genotype_probs_from_haplotypes(haplotype_probs: np.ndarray) -> np.ndarray:
    """Probabilities over the four phased codes from two haplotypes' predictions.

    haplotype_probs : float (2n, m, 4) over codes 1-4 of the ``haplotype_codes`` rows; the ALT
    probability of a haplotype is ``p4 + (p2 + p3) / 2`` (a haplotype model puts ~0 on 2, 3).
    Returns float32 (n, m, 4): ``(1-a)(1-b), (1-a) b, a (1-b), a b`` for codes 0|0, 0|1, 1|0,
    1|1 with ``a``, ``b`` the ALT probabilities of the first and second haplotype.
    """
    p = np.asarray(haplotype_probs)
    alt = np.clip(p[..., 3] + 0.5 * (p[..., 1] + p[..., 2]), 0.0, 1.0).astype(np.float64)
    a, b = alt[0::2], alt[1::2]
    return np.stack([(1 - a) * (1 - b), (1 - a) * b, a * (1 - b), a * b], axis=-1).astype(np.float32)


def input_channels(use_position: bool, n_features: int = 0) -> int:
    """Channels of the model input: one per code, one for the positional channel (when
    used), one per per-variant feature."""
    return N_CODES + int(bool(use_position)) + int(n_features)


def encode(codes: torch.Tensor, position: torch.Tensor | None, features: torch.Tensor | None = None) -> torch.Tensor:
    """The model input of a batch, built on the batch's device.

    codes : uint8, shape (B, L), codes 0-5. position : float32 (B, L) or None.
    features : float32 (B, k, L) or None.
    Returns float32, shape (B, 6 + (position is not None) + k, L): the one-hot of the code
    over channels 0-5, then the positional channel, then the features.
    """
    batch, length = codes.shape
    n_features = 0 if features is None else features.shape[1]
    x = torch.empty((batch, input_channels(position is not None, n_features), length), dtype=torch.float32, device=codes.device)
    x[:, :N_CODES] = 0.0
    x[:, :N_CODES].scatter_(1, codes.long().unsqueeze(1), 1.0)
    channel = N_CODES
    if position is not None:
        x[:, channel] = position
        channel += 1
    if features is not None:
        x[:, channel:] = features
    return x


def forward(model: torch.nn.Module, x: torch.Tensor, segment_index: torch.Tensor | None) -> torch.Tensor:
    """``model(x)``, or ``model(x, segment_index)`` for a model whose ``takes_segment_index``
    is True (per-segment weights; DDP wrappers are looked through). segment_index : int64 (B,)."""
    inner = getattr(model, "module", model)
    if getattr(inner, "takes_segment_index", False):
        return model(x, segment_index)
    return model(x)


def mask_batch(
    codes: torch.Tensor,
    rate: float | torch.Tensor,
    generator: torch.Generator | None = None,
    groups: torch.Tensor | None = None,
    n_groups: int = 0,
) -> torch.Tensor:
    """Hide genotype calls (codes 1-4) with probability ``rate``.

    codes : uint8, shape (B, L). rate : a float, or float32 (B, 1) for a rate per row.
    Without ``groups`` each cell is hidden on its own. With
    ``groups`` (int64 (B,), values < ``n_groups``: the segment index of each row) a column of
    a group is hidden in every row of that group (whole variants, as an array scheme hides
    untyped variants in every sample). Returns a new uint8 tensor with hidden cells set to 0;
    missing (0) and padding (5) cells are left as they are.
    """
    if groups is None:
        draw = torch.rand(codes.shape, generator=generator, device=codes.device)
    else:
        per_group = torch.rand((int(n_groups), codes.shape[1]), generator=generator, device=codes.device)
        draw = per_group[groups.to(codes.device)]
    hide = (draw < rate) & (codes >= HOM_REF) & (codes <= HOM_ALT)
    return codes.masked_fill(hide, MISSING)


def curriculum_rate(epoch: int, start: float, end: float, ramp_epochs: int) -> float:
    """The masking rate of an epoch (0-based): linear from ``start`` at epoch 0 to ``end`` at
    epoch ``ramp_epochs``, then ``end``. ``ramp_epochs <= 0`` means ``end`` throughout."""
    if ramp_epochs <= 0:
        return float(end)
    fraction = min(1.0, max(0.0, epoch / ramp_epochs))
    return float(start + (end - start) * fraction)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (run seed, epoch, rank, ...), stable across runs."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))
