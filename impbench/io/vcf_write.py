"""VCF out: ``write_vcf`` (GT, or GT:DS:GP with INFO AF/DR2) and ``GenotypeVcfWriter``.

Writing builds each genotype column as fixed-width bytes with numpy (one byte table lookup per
cell, no Python object per genotype) and compresses it as BGZF (``impbench.io.bgzf``), so the
output is indexable by ``tabix`` and read by ``bcftools``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import CODE_ALLELE0, CODE_ALLELE1, CODE_GT, N_CODES, GenotypeMatrix
from impbench.files import name_os_error
from impbench.io.bgzf import BgzfWriter

if TYPE_CHECKING:  # pragma: no cover
    from impbench.imputers.base import Imputation

__all__ = ["write_vcf", "GenotypeVcfWriter", "dosage_r2"]

#: GT text per code as bytes, uint8 shape (N_CODES, 3): "0|0", "0|1", ..., "./." for 0 and 5.
_GT_BYTES = np.frombuffer("".join(CODE_GT[: N_CODES]).encode("ascii"), dtype=np.uint8).reshape(N_CODES, 3)
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
_TAB, _NEWLINE, _COLON, _COMMA, _DOT = (ord(c) for c in "\t\n:,.")

#: Variants per text chunk handed to the compressor.
_WRITE_CHUNK = 2048


def _fixed_decimals(values: np.ndarray) -> np.ndarray:
    """Values in [0, 9.9995] as 5 ASCII bytes "d.ddd" each.

    values : float, any shape (...). Returns uint8 shape (..., 5). NaN is written as 0.
    """
    milli = np.rint(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0) * 1000.0)
    milli = np.clip(milli, 0, 9999).astype(np.int32)
    out = np.empty(milli.shape + (5,), dtype=np.uint8)
    out[..., 0] = _DIGITS[milli // 1000]
    out[..., 1] = _DOT
    out[..., 2] = _DIGITS[(milli // 100) % 10]
    out[..., 3] = _DIGITS[(milli // 10) % 10]
    out[..., 4] = _DIGITS[milli % 10]
    return out


def dosage_r2(dosage: np.ndarray, genotype_probs: np.ndarray) -> np.ndarray:
    """Beagle's DR2: the estimated squared correlation of the estimated and the true ALT dose.

    Following Browning & Browning (2009, Am J Hum Genet 84:210-223, appendix) as Beagle 5
    computes it (``vcf.R2Estimator.doseR2``): with expected dose ``d_i = P1 + 2 P2`` and
    expected squared dose ``e_i = P1 + 4 P2`` of sample ``i`` (``Pk`` = probability of ``k``
    ALT alleles) over ``n`` samples,

        DR2 = [sum d_i^2 - (sum d_i)^2 / n] / [sum e_i - (sum d_i)^2 / n],

    i.e. the variance of the estimated dose over the expected variance of the true dose; the
    numerator is clipped at 0 and DR2 is 0 where the denominator is below 1e-8 (monomorphic).

    dosage : float, shape (n_samples, n_variants); genotype_probs : float, shape
    (n_samples, n_variants, 3) over 0, 1, 2 ALT alleles. Returns float64 shape (n_variants,).
    """
    dose = np.asarray(dosage, dtype=np.float64)
    probs = np.asarray(genotype_probs, dtype=np.float64)
    n = dose.shape[0]
    if n == 0:
        return np.zeros(dose.shape[1] if dose.ndim == 2 else 0)
    sum_dose = dose.sum(axis=0)
    mean_term = sum_dose * sum_dose / n
    numerator = np.maximum((dose * dose).sum(axis=0) - mean_term, 0.0)
    denominator = (probs[..., 1] + 4.0 * probs[..., 2]).sum(axis=0) - mean_term
    out = np.zeros_like(numerator)
    ok = denominator >= 1e-8
    out[ok] = numerator[ok] / denominator[ok]
    return out


def _genotype_probs(imputation: "Imputation", rows: np.ndarray, cols: slice) -> np.ndarray:
    """Unphased P(0/0), P(het), P(1/1) for a block: float32 shape (n_rows, n_cols, 3)."""
    if imputation.probs is not None:
        phased = np.asarray(imputation.probs[rows, cols], dtype=np.float32)
        return np.stack([phased[..., 0], phased[..., 1] + phased[..., 2], phased[..., 3]], axis=-1)
    calls = np.asarray(imputation.calls[rows, cols])
    dose_class = (CODE_ALLELE0[calls].astype(np.int16) + CODE_ALLELE1[calls]).clip(-1, 2)
    probs = np.zeros(calls.shape + (3,), dtype=np.float32)
    for k in range(3):
        probs[..., k] = dose_class == k
    return probs


def _header(matrix: GenotypeMatrix, sample_ids: np.ndarray, imputed: bool, masked: bool,
            meta: Mapping[str, str] | None = None, contig_length: int | None = None) -> bytes:
    length = contig_length if contig_length is not None else (int(matrix.positions.max()) if matrix.n_variants else 0)
    lines = [
        "##fileformat=VCFv4.2",
        "##source=impbench",
        f"##contig=<ID={matrix.contig},length={length}>",
        '##FILTER=<ID=PASS,Description="All filters passed">',
    ]
    for key, value in (meta or {}).items():
        text = " ".join(str(value).split())  # one line
        lines.append(f"##{key}={text}")
    if imputed:
        lines += [
            '##INFO=<ID=AF,Number=A,Type=Float,Description="Estimated ALT allele frequency (mean DS / 2)">',
            '##INFO=<ID=DR2,Number=A,Type=Float,Description="Dosage R-squared: estimated squared '
            'correlation between estimated and true ALT allele dose (Beagle\'s DR2)">',
        ]
    lines.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    if imputed:
        lines += [
            '##FORMAT=<ID=DS,Number=A,Type=Float,Description="Estimated ALT allele dose [P(0/1)+2*P(1/1)]">',
            '##FORMAT=<ID=GP,Number=G,Type=Float,Description="Estimated genotype probabilities P(0/0), P(0/1), P(1/1)">',
        ]
    if masked:
        lines.append(
            '##FORMAT=<ID=MK,Number=1,Type=Integer,Description="1 if the genotype was masked (imputed), 0 if observed">'
        )
    columns = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
    if len(sample_ids):
        columns += ["FORMAT", *map(str, sample_ids)]
    lines.append("\t".join(columns))
    return ("\n".join(lines) + "\n").encode("ascii")


def _select_rows(array: np.ndarray, rows: np.ndarray, n_matrix: int, what: str) -> np.ndarray:
    """Rows of ``array`` for the written samples (``array`` covers the matrix or the selection)."""
    if array.shape[0] == n_matrix:
        return rows
    if array.shape[0] == len(rows):
        return np.arange(len(rows))
    raise ValueError(f"{what} has {array.shape[0]} rows; expected {n_matrix} or {len(rows)}")


def write_vcf(
    matrix: GenotypeMatrix,
    path: str | os.PathLike,
    *,
    imputation: "Imputation | None" = None,
    masked: np.ndarray | None = None,
    sample_index: np.ndarray | None = None,
    level: int | None = None,
    index: bool = True,
    meta: Mapping[str, str] | None = None,
    dr2: np.ndarray | None = None,
    contig_length: int | None = None,
) -> Path:
    """Write ``matrix`` (or an imputation of it) as a bgzipped VCF 4.2 at ``path``.

    matrix : the samples and variants (``codes`` uint8 (n_samples, n_variants)).
    imputation : None writes FORMAT GT only, phased ``a|b`` from ``matrix.codes`` (code 0 as
        ``./.``). An ``Imputation`` writes FORMAT GT:DS:GP: GT from ``imputation.calls``, DS
        from ``imputation.dosage`` and GP the unphased P(0/0), P(het), P(1/1) from ``probs``
        (the two het codes summed) or, when ``probs`` is None, 0/1 from the hard call; INFO
        ``AF`` (mean DS / 2) and ``DR2`` (see ``dosage_r2``).
    masked : bool (n_samples, n_variants) or None; when given, FORMAT ``MK`` (1 masked, 0
        observed) is added.
    sample_index : int indices or bool mask of the rows of ``matrix`` to write (default all).
        ``imputation`` and ``masked`` may cover either all rows of ``matrix`` (then the same
        rows are taken) or exactly the selected rows.
    level : zlib level of the BGZF blocks; default 6 for GT only and 1 with an imputation
        (its DS/GP text is bulky and compresses slowly at higher levels). index : write a tabix index (``PATH.tbi``) when
        ``tabix`` is on PATH.

    meta : extra header lines ``##key=value`` (what made the file: impbench's version, the
        command, imputer, level, replicate, scheme, mask SHA-256).
    dr2 : float (n_variants,) or None; INFO DR2 to write (e.g. estimated from the masked cells
        only, or the imputer's own); None computes it over the written cells (``dosage_r2``).
    contig_length : the ``##contig`` line's length; default the last variant's position (a
        lower bound of the contig's length, which the store does not record).

    DS and GP are written with 3 decimals. The file is written under a temporary name in the
    target folder and renamed when complete (its index too). Returns the path.
    """
    path = Path(path)
    if level is None:
        level = 6 if imputation is None else 1
    rows = np.arange(matrix.n_samples)
    if sample_index is not None:
        rows = rows[np.asarray(sample_index)]
    sample_ids = matrix.sample_ids[rows]
    n_out = len(rows)
    imputed = imputation is not None
    if imputed:
        calls = np.asarray(imputation.calls)
        dosage = np.asarray(imputation.dosage)
        if calls.shape[1] != matrix.n_variants:
            raise ValueError(f"imputation has {calls.shape[1]} variants, matrix {matrix.n_variants}")
        call_rows = _select_rows(calls, rows, matrix.n_samples, "imputation.calls")
    if masked is not None:
        masked = np.asarray(masked, dtype=bool)
        if masked.shape[1] != matrix.n_variants:
            raise ValueError(f"masked has {masked.shape[1]} variants, matrix {matrix.n_variants}")
        mask_rows = _select_rows(masked, rows, matrix.n_samples, "masked")

    # Fixed width of one genotype cell, separator included.
    cell_width = 3 + (1 + 5 + 1 + 17 if imputed else 0) + (2 if masked is not None else 0) + 1
    format_field = "GT" + (":DS:GP" if imputed else "") + (":MK" if masked is not None else "")
    variant_ids = [("." if (v is None or v == "") else str(v)) for v in matrix.variant_ids]

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.vcf.gz", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_index = Path(tmp_name + ".tbi")
    try:
        with BgzfWriter(tmp, level=level) as out:
            out.write(_header(matrix, sample_ids, imputed, masked is not None, meta, contig_length))
            for start in range(0, matrix.n_variants, _WRITE_CHUNK):
                cols = slice(start, min(start + _WRITE_CHUNK, matrix.n_variants))
                n_cols = cols.stop - cols.start
                cells = np.empty((n_cols, n_out, cell_width), dtype=np.uint8)
                if imputed:
                    block_calls = calls[call_rows, cols].T  # (n_cols, n_out)
                    block_dosage = np.asarray(dosage[call_rows, cols], dtype=np.float64).T
                    block_probs = _genotype_probs(imputation, call_rows, cols).transpose(1, 0, 2)
                    cells[..., 0:3] = _GT_BYTES[block_calls]
                    cells[..., 3] = _COLON
                    cells[..., 4:9] = _fixed_decimals(block_dosage)
                    cells[..., 9] = _COLON
                    gp = _fixed_decimals(block_probs)  # (n_cols, n_out, 3, 5)
                    cells[..., 10:15] = gp[..., 0, :]
                    cells[..., 15] = _COMMA
                    cells[..., 16:21] = gp[..., 1, :]
                    cells[..., 21] = _COMMA
                    cells[..., 22:27] = gp[..., 2, :]
                    allele_freq = block_dosage.mean(axis=1) / 2.0 if n_out else np.zeros(n_cols)
                    if dr2 is None:
                        r2 = dosage_r2(block_dosage.T, block_probs.transpose(1, 0, 2))
                    else:
                        r2 = np.asarray(dr2, dtype=np.float64)[cols]
                    infos = [f"AF={af:.4f};DR2={d:.3f}" if np.isfinite(d) else f"AF={af:.4f}"
                             for af, d in zip(allele_freq, r2)]
                else:
                    cells[..., 0:3] = _GT_BYTES[matrix.codes[rows, cols].T]
                    infos = ["."] * n_cols
                if masked is not None:
                    cells[..., cell_width - 3] = _COLON
                    cells[..., cell_width - 2] = np.where(masked[mask_rows, cols].T, ord("1"), ord("0"))
                cells[..., cell_width - 1] = _TAB
                cells[:, -1, cell_width - 1] = _NEWLINE
                body = cells.reshape(n_cols, n_out * cell_width)
                positions = matrix.positions[cols]
                text = bytearray()
                for j in range(n_cols):
                    v = start + j
                    site = f"{matrix.contig}\t{positions[j]}\t{variant_ids[v]}\t{matrix.ref[v]}\t{matrix.alt[v]}\t.\tPASS\t{infos[j]}"
                    if n_out:
                        text += f"{site}\t{format_field}\t".encode("ascii")
                        text += body[j].data
                    else:
                        text += f"{site}\n".encode("ascii")
                out.write(text)
        if index and shutil.which("tabix") and matrix.n_variants:
            result = subprocess.run(["tabix", "-f", "-p", "vcf", str(tmp)], capture_output=True, text=True)
            if result.returncode != 0:
                raise ImpbenchError(f"{path}: tabix failed to index the written VCF: {result.stderr.strip()}")
        os.replace(tmp, path)
        if tmp_index.exists():
            os.replace(tmp_index, str(path) + ".tbi")
        else:
            Path(str(path) + ".tbi").unlink(missing_ok=True)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        tmp_index.unlink(missing_ok=True)
        name_os_error(error, path)
        raise
    return path


class GenotypeVcfWriter:
    """Stream phased genotypes (FORMAT GT) into a bgzipped VCF, batch by batch.

    For data too large to hold as one ``GenotypeMatrix`` (simulated chromosome-sized VCFs):
    ``add`` takes variant-major codes. Written under a temporary name; ``close`` renames it
    (and writes a tabix index when ``tabix`` is on PATH); ``abort`` (or an exception inside
    ``with``) removes it.

    contig : chromosome name; sample_ids : str (n_samples,); level : zlib level.
    """

    def __init__(self, path: str | os.PathLike, contig: str, sample_ids, *, level: int = 6, index: bool = True, threads: int | None = None):
        self.path = Path(path)
        self.contig = str(contig)
        self.sample_ids = np.asarray(sample_ids, dtype=object)
        self.index = index
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp.vcf.gz", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp_name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._tmp, 0o666 & ~umask)
        self._out = BgzfWriter(self._tmp, level=level, threads=threads)
        empty = GenotypeMatrix(
            codes=np.zeros((len(self.sample_ids), 0), np.uint8), positions=[], contig=self.contig, ref=[], alt=[],
            variant_ids=[], sample_ids=self.sample_ids,
        )  # fmt: skip
        self._out.write(_header(empty, self.sample_ids, False, False))
        self.n_variants = 0

    def add(self, codes: np.ndarray, positions, ref, alt, variant_ids=None) -> None:
        """Append variants: codes uint8 (n_batch, n_samples) variant-major; the rest (n_batch,)."""
        codes = np.asarray(codes, dtype=np.uint8)
        n_cols, n_out = codes.shape
        if n_out != len(self.sample_ids):
            raise ValueError(f"codes have {n_out} samples, the header {len(self.sample_ids)}")
        for start in range(0, n_cols, _WRITE_CHUNK):
            stop = min(start + _WRITE_CHUNK, n_cols)
            cells = np.empty((stop - start, n_out, 4), dtype=np.uint8)
            cells[..., 0:3] = _GT_BYTES[codes[start:stop]]
            cells[..., 3] = _TAB
            cells[:, -1, 3] = _NEWLINE
            body = cells.reshape(stop - start, n_out * 4)
            text = bytearray()
            for j in range(start, stop):
                vid = "." if variant_ids is None or not variant_ids[j] else variant_ids[j]
                text += f"{self.contig}\t{positions[j]}\t{vid}\t{ref[j]}\t{alt[j]}\t.\tPASS\t.\tGT\t".encode("ascii")
                text += body[j - start].data
            try:
                self._out.write(text)
            except OSError as error:  # the caller aborts; the report names the file
                name_os_error(error, self.path)
                raise
        self.n_variants += n_cols

    def close(self) -> Path:
        tmp_index = Path(str(self._tmp) + ".tbi")
        try:
            self._out.close()
            if self.index and shutil.which("tabix") and self.n_variants:
                result = subprocess.run(["tabix", "-f", "-p", "vcf", str(self._tmp)], capture_output=True, text=True)
                if result.returncode != 0:
                    raise ImpbenchError(f"{self.path}: tabix failed to index the written VCF: {result.stderr.strip()}")
            os.replace(self._tmp, self.path)
            if tmp_index.exists():
                os.replace(tmp_index, str(self.path) + ".tbi")
            else:
                Path(str(self.path) + ".tbi").unlink(missing_ok=True)
        except BaseException as error:
            self.abort()
            name_os_error(error, self.path)
            raise
        return self.path

    def abort(self) -> None:
        self._out.abort()
        self._tmp.unlink(missing_ok=True)
        Path(str(self._tmp) + ".tbi").unlink(missing_ok=True)

    def __enter__(self) -> "GenotypeVcfWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
