"""``tag-snp``: fill each missing genotype from the best-tagging neighbouring variant.

At fit time, each variant ``v`` gets a *tag*: the variant within ``window`` positions of it
whose panel dosage correlates best with ``v``'s (largest r²), and a table of ``v``'s genotype
probabilities given the tag's dosage class (0, 1, 2), counted in the panel with a pseudocount.
At impute time, a missing cell (sample t, variant v) reads the row of that table for t's tag
genotype; when the tag is missing too, the panel's genotype frequencies of ``v``. Calls and
dosages come from ``Imputation.from_probs``.

It uses linkage between two variants only, so it is a weak imputer (between ``allele-freq``
and ``knn``); its point is to show every part of a plugin (options with a check, fit, a
vectorised impute that returns probabilities, manifest info, progress) in a few lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import CODE_DOSAGE_CLASS, GenotypeMatrix, is_call
from impbench.imputers.base import Imputation, Imputer, RunContext, require_same_variants


@dataclass
class TagSnpOptions:
    """window : variants on each side searched for the tag. pseudocount : added to every
    genotype count of the tables (keeps probabilities off 0 and 1)."""

    window: int = 10
    pseudocount: float = 0.5

    def check(self) -> None:
        if self.window < 1:
            raise ImpbenchError(f"option tag-snp.window must be at least 1, got {self.window}")
        if not self.pseudocount >= 0:
            raise ImpbenchError(f"option tag-snp.pseudocount must be >= 0, got {self.pseudocount}")


def best_tags(dosage: np.ndarray, called: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The best-correlated neighbour of every variant and its r².

    dosage : float64 (n_samples, n_variants), 0 where not called; called : bool, same shape.
    Returns int64 (n_variants,) tag indices (a variant with no neighbour tags itself) and
    float64 (n_variants,) r² (0 where undefined).
    """
    n_variants = dosage.shape[1]
    tag, best = np.arange(n_variants), np.zeros(n_variants)
    for offset in range(1, min(window, n_variants - 1) + 1):
        both = called[:, :-offset] & called[:, offset:]
        x, y, n = dosage[:, :-offset] * both, dosage[:, offset:] * both, np.maximum(both.sum(axis=0), 1)
        cov = (x * y).sum(axis=0) / n - x.sum(axis=0) * y.sum(axis=0) / n**2
        var_x = (x**2).sum(axis=0) / n - (x.sum(axis=0) / n) ** 2
        var_y = (y**2).sum(axis=0) / n - (y.sum(axis=0) / n) ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            r2 = np.nan_to_num(cov**2 / (var_x * var_y))
        left, right = np.arange(n_variants - offset), np.arange(offset, n_variants)
        for v, u in ((left, right), (right, left)):  # v tagged by u = v + offset, and by v - offset
            better = r2 > best[v]
            tag[v[better]], best[v[better]] = u[better], r2[better]
    return tag, best


class TagSnpImputer(Imputer):
    name: ClassVar[str] = "tag-snp"
    reference_free: ClassVar[bool] = True
    Options: ClassVar[type] = TagSnpOptions
    description: ClassVar[str] = "example plugin: genotype given the best-correlated neighbouring variant"

    def fit(self, panel: GenotypeMatrix, val: GenotypeMatrix | None, ctx: RunContext) -> None:
        self.options.check()
        called = is_call(panel.codes)
        dosage = np.where(called, CODE_DOSAGE_CLASS[panel.codes], 0).astype(np.float64)
        self._tag, self._tag_r2 = best_tags(dosage, called, self.options.window)
        n_variants = panel.n_variants
        # counts[v, k, c]: panel samples with tag class k and code c (1-4) at v; k = 3: tag missing
        tag_class = np.where(called[:, self._tag], CODE_DOSAGE_CLASS[panel.codes[:, self._tag]], 3)
        flat = (np.arange(n_variants) * 16 + tag_class * 4 + panel.codes.astype(np.int64) - 1)[called]
        counts = np.bincount(flat, minlength=n_variants * 16).reshape(n_variants, 4, 4).astype(np.float64)
        counts += self.options.pseudocount
        marginal = counts.sum(axis=1, keepdims=True)  # (n_variants, 1, 4): ignoring the tag
        tables = np.concatenate([counts[:, :3], marginal], axis=1)  # row 3: the tag is missing
        with np.errstate(invalid="ignore", divide="ignore"):
            tables = tables / tables.sum(axis=2, keepdims=True)
        self._tables = np.nan_to_num(tables, nan=0.25).astype(np.float32)  # (n_variants, 4, 4)
        # keep the variant table (not the genotypes) to check targets against
        self._variants = panel.take_variants(np.arange(n_variants)).take_samples(np.arange(0))
        ctx.logger.info("tag-snp: %d variants, median tag r² %.3f", n_variants, float(np.median(self._tag_r2)))

    def impute(self, target: GenotypeMatrix, ctx: RunContext) -> Imputation:
        require_same_variants(self.name, self._variants, target)
        tag_codes = target.codes[:, self._tag]  # (n_samples, n_variants)
        tag_class = np.where(is_call(tag_codes), CODE_DOSAGE_CLASS[tag_codes], 3)
        probs = self._tables[np.arange(target.n_variants)[None, :], tag_class]  # (n_samples, n_variants, 4)
        ctx.progress("impute", 1, 1)
        return Imputation.from_probs(probs, target.codes)  # observed cells kept, one-hot there

    def manifest_info(self) -> dict:
        return {"median_tag_r2": float(np.median(self._tag_r2)) if hasattr(self, "_tag_r2") else None}
