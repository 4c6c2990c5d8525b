"""``allele-freq``: fill each missing genotype from the panel's ALT allele frequency.

Each haplotype of a missing genotype carries the ALT allele with probability ``f``, the
variant's ALT frequency in the panel (with a pseudocount, so that no probability is exactly
0 or 1). The four phased codes then have Hardy-Weinberg probabilities
``(1-f)^2, (1-f)f, f(1-f), f^2``; the call is drawn from them at random ("flip a coin"), seeded
by the run's seed, or, when ``sample = false``, the most probable genotype as
``Imputation.from_probs`` chooses it (dosage class first: the two het codes summed).

It ignores linkage entirely, so it is a weak imputer: its point is to show every part of a
plugin in a few lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import CALL_CODES, MISSING, GenotypeMatrix, alt_allele_frequency
from impbench.imputers.base import Imputation, Imputer, RunContext, require_same_variants


@dataclass
class AlleleFrequencyOptions:
    """sample : draw each call at random from its probabilities (seeded); False takes the most
    probable code. pseudocount : alleles of each kind added to the panel's counts."""

    sample: bool = True
    pseudocount: float = 0.5


class AlleleFrequencyImputer(Imputer):
    name: ClassVar[str] = "allele-freq"
    reference_free: ClassVar[bool] = True
    Options: ClassVar[type] = AlleleFrequencyOptions
    description: ClassVar[str] = "example plugin: calls drawn from the panel's allele frequency (HWE)"

    def fit(self, panel: GenotypeMatrix, val: GenotypeMatrix | None, ctx: RunContext) -> None:
        if self.options.pseudocount < 0:
            raise ImpbenchError(f"option allele-freq.pseudocount must be >= 0, got {self.options.pseudocount}")
        n_called = (panel.codes != MISSING).sum(axis=0)
        alt_count = np.nan_to_num(alt_allele_frequency(panel.codes)) * 2 * n_called
        pseudo = self.options.pseudocount
        with np.errstate(invalid="ignore", divide="ignore"):
            freq = (alt_count + pseudo) / (2 * n_called + 2 * pseudo)
        self._alt_freq = np.nan_to_num(freq, nan=0.5).astype(np.float64)  # (n_variants,)
        # keep the variant table (not the genotypes) to check targets against
        self._variants = panel.take_variants(np.arange(panel.n_variants)).take_samples(np.arange(0))
        ctx.logger.info("allele-freq: fitted on %d samples x %d variants", panel.n_samples, panel.n_variants)

    def impute(self, target: GenotypeMatrix, ctx: RunContext) -> Imputation:
        require_same_variants(self.name, self._variants, target)
        f = self._alt_freq
        per_variant = np.stack([(1 - f) ** 2, (1 - f) * f, f * (1 - f), f**2], axis=1)  # (n_variants, 4)
        probs = np.broadcast_to(per_variant, target.codes.shape + (4,)).astype(np.float32)
        imputation = Imputation.from_probs(probs, target.codes)  # observed cells kept, one-hot there
        if self.options.sample:
            rng = np.random.default_rng(ctx.seed)
            # inverse-CDF draw for every cell at once
            cumulative = np.cumsum(per_variant, axis=1)
            u = rng.random(target.codes.shape)
            drawn = CALL_CODES[(u[..., None] > cumulative[None, :, :3]).sum(axis=-1)]
            observed = target.codes != MISSING
            imputation.calls = np.where(observed, target.codes, drawn).astype(np.uint8)
        ctx.progress("impute", 1, 1)
        return imputation

    def manifest_info(self) -> dict:
        return {"mean_alt_frequency": float(self._alt_freq.mean()) if hasattr(self, "_alt_freq") else None}
