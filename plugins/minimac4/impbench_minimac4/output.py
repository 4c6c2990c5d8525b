"""Reading Minimac4's output VCF back onto the target's cells.

Records are matched to target variants by contig, position, REF and ALT; samples by id.
Minimac4 4.x writes every panel marker (INFO ``IMPUTED``, or ``TYPED`` for markers in the
target), with INFO ``R2`` (its estimate of the dosage r²) and the FORMAT fields asked for
(``GT,DS,HDS,GP``; their order may differ between records). HDS holds the ALT dosage of each
haplotype, from which the four phased codes get their probabilities (haplotypes independent,
as Minimac4's own GP assumes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import HOM_REF, GenotypeMatrix, code_dosage, codes_from_alleles, is_call
from impbench.imputers.base import Imputation


@dataclass
class Minimac4Output:
    """Minimac4's answer on the target's (n_samples, n_variants) grid.

    covered : bool (n_variants,), True where exactly one record matched.
    calls : uint8 (n_samples, n_variants), GT codes (0 where not covered).
    ds : float32 (n_samples, n_variants), DS (NaN where not covered).
    hds : float32 (n_samples, n_variants, 2), HDS (NaN where not covered).
    gp : float32 (n_samples, n_variants, 3), GP (NaN where not covered).
    r2 : float32 (n_variants,), INFO R2 (NaN where not covered).
    imputed : bool (n_variants,), INFO flag IMPUTED.
    n_records, n_ignored : records read and records matching no target variant.
    """

    covered: np.ndarray
    calls: np.ndarray
    ds: np.ndarray
    hds: np.ndarray
    gp: np.ndarray
    r2: np.ndarray
    imputed: np.ndarray
    n_records: int = 0
    n_ignored: int = 0


def _field(record, name: str, columns: np.ndarray, width: int) -> np.ndarray:
    try:
        values = record.format(name)
    except KeyError:
        values = None
    if values is None or np.shape(values)[1] < width:
        return np.full((len(columns), width), np.nan, dtype=np.float32)
    return np.asarray(values, dtype=np.float32)[columns, :width]


def read_minimac4_output(path: Path, target: GenotypeMatrix) -> Minimac4Output:
    """Lay Minimac4's output VCF at ``path`` onto ``target``; ``ImpbenchError`` when unreadable
    or lacking a target sample."""
    from cyvcf2 import VCF

    try:
        vcf = VCF(str(path), lazy=True, threads=1)
    except (OSError, IOError) as err:
        raise ImpbenchError(f"minimac4 output {path}: cannot read it ({err})") from None
    samples = {sample: i for i, sample in enumerate(vcf.samples)}
    absent = [s for s in target.sample_ids.tolist() if s not in samples]
    if absent:
        vcf.close()
        raise ImpbenchError(f"minimac4 output {path} lacks {len(absent)} target sample(s), e.g. {absent[0]!r}")
    columns = np.array([samples[s] for s in target.sample_ids.tolist()], dtype=np.int64)
    n, m = target.codes.shape
    index: dict[tuple[int, str, str], list[int]] = {}
    for j, key in enumerate(zip(target.positions.tolist(), target.ref.tolist(), target.alt.tolist())):
        index.setdefault(key, []).append(j)
    calls = np.zeros((n, m), dtype=np.uint8)
    ds = np.full((n, m), np.nan, dtype=np.float32)
    hds = np.full((n, m, 2), np.nan, dtype=np.float32)
    gp = np.full((n, m, 3), np.nan, dtype=np.float32)
    r2 = np.full(m, np.nan, dtype=np.float32)
    imputed = np.zeros(m, dtype=bool)
    seen = np.zeros(m, dtype=np.int64)
    n_records = n_ignored = 0
    for record in vcf:
        n_records += 1
        alts = record.ALT
        matched = index.get((record.POS, record.REF, alts[0])) if record.CHROM == target.contig and len(alts) == 1 else None
        if matched is None:
            n_ignored += 1
            continue
        alleles = record.genotype.array()[columns]
        codes = codes_from_alleles(alleles[:, 0], alleles[:, 1])
        record_r2 = record.INFO.get("R2")
        for j in matched:
            seen[j] += 1
            calls[:, j] = codes
            ds[:, j] = _field(record, "DS", columns, 1)[:, 0]
            hds[:, j] = _field(record, "HDS", columns, 2)
            gp[:, j] = _field(record, "GP", columns, 3)
            r2[j] = np.nan if record_r2 is None else float(record_r2)
            imputed[j] = record.INFO.get("IMPUTED") is not None
    vcf.close()
    covered = seen == 1
    calls[:, ~covered] = 0
    ds[:, ~covered] = np.nan
    hds[:, ~covered] = np.nan
    gp[:, ~covered] = np.nan
    r2[~covered] = np.nan
    return Minimac4Output(covered, calls, ds, hds, gp, r2, imputed & covered, n_records, n_ignored)


def haplotype_dosage_probs(hds: np.ndarray) -> np.ndarray:
    """Probabilities over codes 1-4 from HDS (ALT dosage of each haplotype), float (..., 2).

    Returns float32 (..., 4) ordered 0|0, 0|1, 1|0, 1|1 (haplotypes taken as independent).
    """
    p = np.clip(np.asarray(hds, dtype=np.float64), 0.0, 1.0)
    p0, p1 = p[..., 0], p[..., 1]
    return np.stack([(1 - p0) * (1 - p1), (1 - p0) * p1, p0 * (1 - p1), p0 * p1], axis=-1).astype(np.float32)


def assemble_imputation(target: GenotypeMatrix, output: Minimac4Output) -> Imputation:
    """The ``Imputation`` for ``target``.

    Observed cells keep the target's code (one-hot probs, their dosage). Masked cells at
    covered variants: calls = the most probable code from HDS (GT where HDS is absent),
    dosage = DS (from HDS, then GT, where absent), probs from HDS. Masked cells at uncovered
    variants: 0|0 (not scored under ``standard``). ``quality`` = Minimac4's R2 per variant.
    """
    codes = target.codes
    observed = is_call(codes)
    fill = observed.shape
    usable = (~observed) & output.covered[None, :]
    hds_ok = usable & np.isfinite(output.hds).all(axis=-1)
    code_probs = haplotype_dosage_probs(np.where(hds_ok[..., None], output.hds, 0.0))
    hds_calls = (np.argmax(code_probs, axis=-1) + 1).astype(np.uint8)
    gt_calls = np.where(is_call(output.calls), output.calls, HOM_REF)
    masked_calls = np.where(hds_ok, hds_calls, np.where(usable, gt_calls, HOM_REF))
    calls = np.where(observed, codes, masked_calls).astype(np.uint8)

    probs = np.zeros(fill + (4,), dtype=np.float32)
    np.put_along_axis(probs, (calls.astype(np.int64) - 1)[..., None], 1.0, axis=-1)
    probs = np.where(hds_ok[..., None], code_probs, probs).astype(np.float32)

    dosage = code_dosage(calls).astype(np.float32)
    ds_ok = usable & np.isfinite(output.ds)
    dosage = np.where(hds_ok, code_probs @ np.array([0, 1, 1, 2], dtype=np.float32), dosage)
    dosage = np.where(ds_ok, np.clip(output.ds, 0.0, 2.0), dosage).astype(np.float32)
    return Imputation(calls=calls, dosage=dosage, probs=probs, covered=output.covered.copy(),
                      quality=output.r2.astype(np.float32))
