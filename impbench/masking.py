"""Deterministic masked replicates shared by every imputer. API:

- ``DEFAULT_LEVELS = (0.05, 0.15, 0.25)``, ``DEFAULT_REPLICATES = 3``, ``SCHEMES = ("uniform", "per-variant")``
- ``replicate_seed(dataset_hash: str, level: float, replicate: int) -> np.random.SeedSequence``
- ``make_mask(codes, rate, seed, scheme="uniform") -> bool (n_samples, n_variants)``
- ``mask_sha256(mask) -> str``
- ``apply_mask(codes, mask) -> uint8`` (a copy with code 0 where masked)
"""
