"""``Moments``: per-group sufficient statistics of paired values (count, means, sums of squared
deviations and co-deviation), merged and combined without subtracting large sums (two-pass
and Chan et al.'s pairwise update). ``impbench.scoring.pooled`` re-exports it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Moments"]


class Moments(NamedTuple):
    """Per-group sufficient statistics of paired values (x, y): count, means, sums of squared
    deviations from the mean and the sum of co-deviations. Arrays of one shape."""

    n: np.ndarray
    mean_x: np.ndarray
    mean_y: np.ndarray
    m2_x: np.ndarray
    m2_y: np.ndarray
    c_xy: np.ndarray

    @classmethod
    def zeros(cls, shape) -> "Moments":
        return cls(*(np.zeros(shape) for _ in range(6)))

    @classmethod
    def of(cls, group: np.ndarray, n_groups: int, x: np.ndarray, y: np.ndarray) -> "Moments":
        """Two-pass moments of (x, y) grouped by ``group`` (int array, values < n_groups)."""
        n = np.bincount(group, minlength=n_groups).astype(np.float64)
        safe = np.maximum(n, 1.0)
        mean_x = np.bincount(group, weights=x, minlength=n_groups) / safe
        mean_y = np.bincount(group, weights=y, minlength=n_groups) / safe
        dx = x - mean_x[group]
        dy = y - mean_y[group]
        return cls(
            n,
            mean_x,
            mean_y,
            np.bincount(group, weights=dx * dx, minlength=n_groups),
            np.bincount(group, weights=dy * dy, minlength=n_groups),
            np.bincount(group, weights=dx * dy, minlength=n_groups),
        )

    def merge(self, other: "Moments") -> "Moments":
        """Moments of the union of two disjoint sets of cells (Chan et al. pairwise update)."""
        n = self.n + other.n
        safe = np.maximum(n, 1.0)
        delta_x = other.mean_x - self.mean_x
        delta_y = other.mean_y - self.mean_y
        weight = self.n * other.n / safe
        return Moments(
            n,
            np.where(other.n > 0, self.mean_x + delta_x * (other.n / safe), self.mean_x),
            np.where(other.n > 0, self.mean_y + delta_y * (other.n / safe), self.mean_y),
            self.m2_x + other.m2_x + delta_x * delta_x * weight,
            self.m2_y + other.m2_y + delta_y * delta_y * weight,
            self.c_xy + other.c_xy + delta_x * delta_y * weight,
        )

    def combine(self, group: np.ndarray, n_groups: int) -> "Moments":
        """Moments of unions of 1-D groups: item ``i`` goes to ``group[i]``."""
        n = np.bincount(group, weights=self.n, minlength=n_groups)
        safe = np.maximum(n, 1.0)
        mean_x = np.bincount(group, weights=self.n * self.mean_x, minlength=n_groups) / safe
        mean_y = np.bincount(group, weights=self.n * self.mean_y, minlength=n_groups) / safe
        dx = self.mean_x - mean_x[group]
        dy = self.mean_y - mean_y[group]
        return Moments(
            n,
            mean_x,
            mean_y,
            np.bincount(group, weights=self.m2_x + self.n * dx * dx, minlength=n_groups),
            np.bincount(group, weights=self.m2_y + self.n * dy * dy, minlength=n_groups),
            np.bincount(group, weights=self.c_xy + self.n * dx * dy, minlength=n_groups),
        )

    def total(self, axis: int) -> "Moments":
        """Moments of the union of all groups along ``axis`` (that axis removed)."""
        n = self.n.sum(axis=axis)
        safe = np.maximum(n, 1.0)
        mean_x = (self.n * self.mean_x).sum(axis=axis) / safe
        mean_y = (self.n * self.mean_y).sum(axis=axis) / safe
        dx = self.mean_x - np.expand_dims(mean_x, axis)
        dy = self.mean_y - np.expand_dims(mean_y, axis)
        return Moments(
            n,
            mean_x,
            mean_y,
            (self.m2_x + self.n * dx * dx).sum(axis=axis),
            (self.m2_y + self.n * dy * dy).sum(axis=axis),
            (self.c_xy + self.n * dx * dy).sum(axis=axis),
        )

    def weighted(self, weights: np.ndarray) -> "Moments":
        """Moments of multisets of samples. self : arrays (S, R) (sample x group); weights :
        (B, S) non-negative integer multiplicities. Returns arrays (B, R)."""
        w = np.asarray(weights, dtype=np.float64)
        n = w @ self.n
        safe = np.maximum(n, 1.0)
        mean_x = (w @ (self.n * self.mean_x)) / safe
        mean_y = (w @ (self.n * self.mean_y)) / safe
        dx = self.mean_x[None] - mean_x[:, None]  # (B, S, R)
        dy = self.mean_y[None] - mean_y[:, None]
        wn = w[:, :, None] * self.n[None]
        wn_dx = wn * dx
        return Moments(
            n,
            mean_x,
            mean_y,
            w @ self.m2_x + (wn_dx * dx).sum(axis=1),
            w @ self.m2_y + (wn * dy * dy).sum(axis=1),
            w @ self.c_xy + (wn_dx * dy).sum(axis=1),
        )

    def take(self, index) -> "Moments":
        return Moments(*(a[index] for a in self))

    def r2(self) -> np.ndarray:
        """Squared Pearson correlation of truth x and prediction y, clipped to 1. NaN where the
        truth is constant (no variance to explain; includes groups of fewer than two cells);
        0 where the truth varies but the prediction is constant (it explains none of it)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            value = self.c_xy * self.c_xy / (self.m2_x * self.m2_y)
        value = np.where(self.m2_y > 0, np.minimum(value, 1.0), 0.0)
        return np.where(self.m2_x > 0, value, np.nan)
