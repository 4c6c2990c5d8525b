"""Quality control of ingested genotypes: biallelic SNPs, missingness, HWE, MAF."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QCSettings:
    """QC settings of a dataset card (defaults from the BiU-Net paper).

    snps_only : keep biallelic SNPs only (indels, multiallelic sites dropped and counted).
    max_sample_missing : drop samples with a larger fraction of missing genotypes.
    drop_variant_missing : drop variants with any missing genotype (after the sample filter).
    hwe_p : drop variants whose HWE exact-test p-value is <= this (0 disables).
    min_maf : drop variants whose folded MAF is < this.
    per_split : False (default): HWE and MAF on the training split; True reproduces the
        paper: each split filtered on its own, then the intersection of kept variants.
    allow_unphased : accept unphased genotypes (read as if phased, in VCF order).
    """

    snps_only: bool = True
    max_sample_missing: float = 0.05
    drop_variant_missing: bool = True
    hwe_p: float = 1e-6
    min_maf: float = 0.001
    per_split: bool = False
    allow_unphased: bool = False
