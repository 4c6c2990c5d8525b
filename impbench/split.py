"""Train/validation/test split of samples, stratified by cohort x sex."""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitSettings:
    """fractions : train/val/test fractions (8:1:1 by default); seed : the split's seed."""

    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
