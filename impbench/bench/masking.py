"""Deterministic masked replicates shared by every imputer. API:

- ``DEFAULT_LEVELS = (0.05, 0.15, 0.25)``, ``DEFAULT_REPLICATES = 3``, ``SCHEMES = ("uniform", "per-variant")``
- ``replicate_seed(dataset_hash: str, level: float, replicate: int) -> np.random.SeedSequence``
- ``make_mask(codes, rate, seed, scheme="uniform") -> bool (n_samples, n_variants)``
- ``mask_sha256(mask) -> str``
- ``apply_mask(codes, mask) -> uint8`` (a copy with code 0 where masked)

Also ``check_level(level)`` and ``replicate_masks(...)`` (every level x replicate of a run),
``achieved_rate(codes, mask)`` and ``rate_warning(requested, achieved)`` (scheme honesty:
``per-variant`` rounds per SNP, so 5% of 30 samples masks 6.67%).

The unit of masking is a whole diploid genotype (one cell of the codes matrix), set to code 0.
Only cells holding a genotype call (codes 1-4) can be masked; missing (0) and padding (5)
cells never are.

Seeds. ``replicate_seed`` is ``SeedSequence([int(dataset_hash, 16), round(level * 10_000),
replicate])``: the level enters in basis points, not as its index in the run's list of levels,
so the mask of level 0.15 replicate 1 is the same whether a run asks for levels
``0.05,0.15,0.25`` or ``0.15`` alone, and every imputer (in one run or in separate runs)
sees the identical mask. Two levels that agree to the basis point (0.15 and 0.150001) share
their seed.

Schemes (``make_mask``):

- ``uniform`` (default): exactly ``round(rate * n_cells)`` cells, ``n_cells`` the number of
  maskable cells (codes 1-4), drawn uniformly without replacement over the whole matrix.
  ``round`` is Python's (half to even). To keep memory bounded the matrix is read in blocks of
  ``UNIFORM_BLOCK_CELLS`` cells (row-major order): a multivariate hypergeometric draw splits the
  total among the blocks, then each block draws its share without replacement. This is an exact
  uniform draw; the block size is part of the mask's definition (changing it changes masks).
- ``per-variant`` (paper-compatible): at each variant with ``N_j`` maskable cells, ``a_j`` of
  them carriers (codes 2, 3, 4) and ``b_j = N_j - a_j`` non-carriers (code 1),
  ``k_j = round(rate * N_j)`` cells are masked (half to even), of which
  ``c_j = floor(k_j * a_j / N_j + 1/2)`` carriers (the proportional share rounded half up,
  computed in integers) and ``k_j - c_j`` non-carriers. The per-variant total is exactly
  ``k_j`` and both shares always fit (``c_j <= a_j`` and ``k_j - c_j <= b_j``). Within each
  group the cells are uniform without replacement (random keys, sorted per column, in blocks of
  ``PER_VARIANT_BLOCK`` variants). As in the paper, a rare variant's carriers are seldom masked:
  at rate 0.05 with 263 samples a variant needs 11 carriers before one is masked.
- ``array`` (untyped variants, how reference-based imputation is used): a typed subset of
  variants stays observed in every sample; every other variant is hidden in every sample
  (its maskable cells). The level is the fraction of variants hidden. The typed set is either
  given (``typed``, bool per variant, e.g. from ``impbench.io.sites.match_typed_sites``; the
  level and seed then do not change the mask) or drawn by ``array_typed_variants``:
  ``n_typed = n_variants - round(rate * n_variants)`` (at least one typed and one hidden),
  evenly spread by index: stratum ``i = 0..n_typed-1`` holds the indices ``lo_i..lo_{i+1}-1``
  with ``lo_i = ceil(i * n_variants / n_typed)`` (integer arithmetic), and one index per stratum
  is typed, ``lo_i + floor(u_i * (lo_{i+1} - lo_i))`` with seeded ``u_i`` in [0, 1).
"""

from __future__ import annotations

import hashlib
from typing import Iterator, Sequence

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import HOM_REF, MISSING, is_call

__all__ = [
    "DEFAULT_LEVELS",
    "DEFAULT_REPLICATES",
    "SCHEMES",
    "UNIFORM_BLOCK_CELLS",
    "PER_VARIANT_BLOCK",
    "check_level",
    "replicate_seed",
    "make_mask",
    "replicate_masks",
    "per_variant_targets",
    "mask_sha256",
    "apply_mask",
    "array_typed_variants",
    "achieved_rate",
    "rate_warning",
    "RATE_TOLERANCE",
]

DEFAULT_LEVELS = (0.05, 0.15, 0.25)
DEFAULT_REPLICATES = 3
SCHEMES = ("uniform", "per-variant", "array")
#: Cells per block of the ``uniform`` scheme (part of the mask definition).
UNIFORM_BLOCK_CELLS = 1 << 22
#: Variants per block of the ``per-variant`` scheme (part of the mask definition).
PER_VARIANT_BLOCK = 4096


def check_level(level: float) -> float:
    """Return ``level`` as a float, or raise ``ImpbenchError`` unless 0 < level < 1."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise ImpbenchError(f"masking level {level!r} is not a number") from None
    if not (0.0 < value < 1.0):
        raise ImpbenchError(f"masking level {level!r} is outside (0, 1)")
    return value


def replicate_seed(dataset_hash: str, level: float, replicate: int) -> np.random.SeedSequence:
    """The seed of one masked replicate.

    ``SeedSequence([int(dataset_hash, 16), round(level * 10_000), replicate])``; see the module
    docstring for why the level enters in basis points.
    """
    try:
        hash_value = int(str(dataset_hash), 16)
    except ValueError:
        raise ImpbenchError(f"dataset hash {dataset_hash!r} is not a hexadecimal string") from None
    level = check_level(level)
    if int(replicate) != replicate or replicate < 0:
        raise ImpbenchError(f"replicate {replicate!r} must be a non-negative integer")
    return np.random.SeedSequence([hash_value, round(level * 10_000), int(replicate)])


def make_mask(
    codes: np.ndarray,
    rate: float,
    seed: "np.random.SeedSequence | int",
    scheme: str = "uniform",
    typed: "np.ndarray | None" = None,
) -> np.ndarray:
    """Choose the cells to hide.

    codes : uint8, shape (n_samples, n_variants); only cells with codes 1-4 can be chosen.
    rate : fraction to mask, 0 < rate < 1.
    seed : a ``SeedSequence`` (from ``replicate_seed``) or an int.
    scheme : "uniform", "per-variant" or "array" (see the module docstring).
    typed : bool (n_variants,), only for "array": the typed variants (None draws them).
    Returns bool, shape (n_samples, n_variants), True at masked cells.
    """
    rate = check_level(rate)
    if scheme not in SCHEMES:
        raise ImpbenchError(f"unknown masking scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D (n_samples, n_variants), got shape {codes.shape}")
    rng = np.random.default_rng(seed)
    if scheme == "array":
        typed = array_typed_variants(codes.shape[1], rate, rng, typed)
        return is_call(codes) & ~typed[None, :]
    if typed is not None:
        raise ImpbenchError(f"typed sites apply to the 'array' scheme only, not {scheme!r}")
    if scheme == "uniform":
        return _uniform_mask(is_call(codes), rate, rng)
    return _per_variant_mask(codes, rate, rng)


def array_typed_variants(
    n_variants: int,
    rate: float,
    seed: "np.random.SeedSequence | int | np.random.Generator",
    typed: "np.ndarray | None" = None,
) -> np.ndarray:
    """The typed variants of the ``array`` scheme: bool (n_variants,), True where typed.

    ``typed`` given: checked (bool-like, right length, at least one typed and one hidden
    variant) and returned as a bool copy. Otherwise ``n_variants - round(rate * n_variants)``
    variants (kept within 1..n_variants-1) evenly spread by index with a seeded offset (module
    docstring). Raises ``ImpbenchError`` when there are fewer than two variants or the given
    set types none or all of them.
    """
    if typed is not None:
        typed = np.asarray(typed)
        if typed.shape != (n_variants,):
            raise ImpbenchError(f"typed sites: {typed.shape} entries for {n_variants} variants")
        typed = typed.astype(bool)
        n_typed = int(typed.sum())
        if n_typed == 0 or n_typed == n_variants:
            raise ImpbenchError(
                f"typed sites: {n_typed} of {n_variants} variants typed; the array scheme needs some typed and some hidden"
            )
        return typed
    if n_variants < 2:
        raise ImpbenchError(f"the array scheme needs at least 2 variants, the dataset has {n_variants}")
    rate = check_level(rate)
    n_typed = min(max(n_variants - round(rate * n_variants), 1), n_variants - 1)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    bounds = (np.arange(n_typed + 1, dtype=np.int64) * n_variants + n_typed - 1) // n_typed
    widths = np.diff(bounds)  # >= 1 since n_typed <= n_variants
    index = bounds[:-1] + np.floor(rng.random(n_typed) * widths).astype(np.int64)
    typed = np.zeros(n_variants, dtype=bool)
    typed[np.minimum(index, bounds[1:] - 1)] = True
    return typed


def _uniform_mask(maskable: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    flat = maskable.ravel()
    n_cells = flat.size
    starts = np.arange(0, n_cells, UNIFORM_BLOCK_CELLS, dtype=np.int64)
    block_counts = np.array([np.count_nonzero(flat[a : a + UNIFORM_BLOCK_CELLS]) for a in starts], dtype=np.int64)
    n_target = round(rate * int(block_counts.sum()))
    mask = np.zeros(n_cells, dtype=bool)
    if n_target == 0:
        return mask.reshape(maskable.shape)
    if len(block_counts) == 1:
        block_targets = np.array([n_target], dtype=np.int64)
    else:
        block_targets = rng.multivariate_hypergeometric(block_counts, n_target)
    for start, n_block, k_block in zip(starts, block_counts, block_targets):
        if k_block == 0:
            continue
        candidates = np.flatnonzero(flat[start : start + UNIFORM_BLOCK_CELLS])
        chosen = rng.choice(int(n_block), size=int(k_block), replace=False)
        mask[start + candidates[chosen]] = True
    return mask.reshape(maskable.shape)


def per_variant_targets(codes: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-variant numbers of masked carriers and non-carriers under ``per-variant``.

    codes : uint8 (n_samples, n_variants). Returns two int64 arrays of shape (n_variants,):
    ``carriers_masked`` (``c_j``) and ``noncarriers_masked`` (``k_j - c_j``).
    """
    codes = np.asarray(codes)
    maskable = is_call(codes)
    n_maskable = maskable.sum(axis=0, dtype=np.int64)
    n_carriers = (maskable & (codes != HOM_REF)).sum(axis=0, dtype=np.int64)
    n_target = np.rint(rate * n_maskable).astype(np.int64)
    carriers = np.where(n_maskable > 0, (2 * n_target * n_carriers + n_maskable) // (2 * np.maximum(n_maskable, 1)), 0)
    return carriers, n_target - carriers


def _per_variant_mask(codes: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    n_samples, n_variants = codes.shape
    mask = np.zeros((n_samples, n_variants), dtype=bool)
    carriers_masked, noncarriers_masked = per_variant_targets(codes, rate)
    rank = np.arange(n_samples, dtype=np.int64)[None, :]
    for start in range(0, n_variants, PER_VARIANT_BLOCK):
        stop = min(start + PER_VARIANT_BLOCK, n_variants)
        # variant-major (n_block, n_samples) so that each variant's sort runs on contiguous memory
        block_codes = np.ascontiguousarray(codes[:, start:stop].T)
        block_maskable = is_call(block_codes)
        carrier = block_maskable & (block_codes != HOM_REF)
        # group 0 = carrier, 1 = non-carrier, 2 = not maskable; a uniform key orders each group
        group = np.where(block_maskable, np.where(carrier, 0.0, 1.0), 2.0)
        keys = rng.random((stop - start, n_samples))
        order = np.argsort(group + keys, axis=1)
        n_carrier = carrier.sum(axis=1, dtype=np.int64)[:, None]
        c = carriers_masked[start:stop, None]
        b = noncarriers_masked[start:stop, None]
        chosen_rank = (rank < c) | ((rank >= n_carrier) & (rank < n_carrier + b))
        block_mask = np.zeros_like(chosen_rank)
        np.put_along_axis(block_mask, order, chosen_rank, axis=1)
        mask[:, start:stop] = block_mask.T
    return mask


def replicate_masks(
    codes: np.ndarray,
    dataset_hash: str,
    levels: Sequence[float] = DEFAULT_LEVELS,
    replicates: int = DEFAULT_REPLICATES,
    scheme: str = "uniform",
    typed: "np.ndarray | None" = None,
) -> Iterator[tuple[float, int, np.ndarray]]:
    """Yield ``(level, replicate, mask)`` for every level x replicate, in that order.

    typed : bool (n_variants,), for the ``array`` scheme only (see ``make_mask``)."""
    if int(replicates) != replicates or replicates < 1:
        raise ImpbenchError(f"replicates must be a positive integer, got {replicates!r}")
    for level in levels:
        level = check_level(level)
        for replicate in range(int(replicates)):
            yield level, replicate, make_mask(codes, level, replicate_seed(dataset_hash, level, replicate), scheme, typed)


def mask_sha256(mask: np.ndarray) -> str:
    """SHA-256 (hex) of a mask: of ``"<n_samples>x<n_variants>:"`` (ASCII) followed by the
    mask's bits packed in row-major order (``np.packbits``, big bit order, zero-padded)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    digest = hashlib.sha256()
    digest.update(f"{mask.shape[0]}x{mask.shape[1]}:".encode("ascii"))
    digest.update(np.packbits(mask, axis=None).tobytes())
    return digest.hexdigest()


def apply_mask(codes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A uint8 copy of ``codes`` with ``MISSING`` (0) where ``mask`` is True."""
    codes = np.asarray(codes)
    mask = np.asarray(mask, dtype=bool)
    if codes.shape != mask.shape:
        raise ValueError(f"mask shape {mask.shape} != codes shape {codes.shape}")
    out = np.array(codes, dtype=np.uint8, copy=True)
    out[mask] = MISSING
    return out


#: Relative difference between achieved and requested masking rate above which to warn.
RATE_TOLERANCE = 0.10


def achieved_rate(codes: np.ndarray, mask: np.ndarray) -> dict:
    """What a mask actually hid, for the manifest and the report.

    codes : uint8 (n_samples, n_variants), the unmasked codes; mask : bool, same shape.
    Returns ``{"masked_cells", "maskable_cells", "rate", "carrier_rate"}``: ``rate`` = masked
    / maskable cells (codes 1-4); ``carrier_rate`` the same over carrier cells (codes 2-4),
    which ``per-variant`` masks less often at rare variants. Rates are NaN without cells.
    """
    codes = np.asarray(codes)
    mask = np.asarray(mask, dtype=bool)
    maskable = is_call(codes)
    carrier = maskable & (codes != HOM_REF)
    n_maskable = int(maskable.sum())
    n_carrier = int(carrier.sum())
    n_masked = int((mask & maskable).sum())
    n_masked_carrier = int((mask & carrier).sum())
    return {
        "masked_cells": n_masked,
        "maskable_cells": n_maskable,
        "rate": n_masked / n_maskable if n_maskable else float("nan"),
        "carrier_rate": n_masked_carrier / n_carrier if n_carrier else float("nan"),
    }


def rate_warning(requested: float, achieved: float, tolerance: float = RATE_TOLERANCE) -> str | None:
    """A one-line warning when ``achieved`` differs from ``requested`` by more than
    ``tolerance`` relative (|achieved - requested| > tolerance x requested), else None."""
    if not np.isfinite(achieved):
        return f"masking level {requested:g}: no maskable cell, nothing was masked"
    if abs(achieved - requested) > tolerance * requested:
        return (f"masking level {requested:g} masked {achieved:.4g} of the cells "
                f"({(achieved - requested) / requested:+.0%} relative; per-SNP rounding of the scheme)")  # fmt: skip
    return None
