"""VCF out (``write_vcf``: GT, or GT:DS:GP with INFO AF/DR2) and in (``read_vcf``, cyvcf2).

Writing builds each genotype column as fixed-width bytes with numpy (one byte table lookup per
cell, no Python object per genotype) and compresses it as BGZF (the blocked gzip that
``bgzip``, ``bcftools`` and ``tabix`` read), so the output is indexable.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterable

import numpy as np

from impbench.errors import ImpbenchError
from impbench.genotypes import ALLELES_CODE, CODE_ALLELE0, CODE_ALLELE1, CODE_GT, MISSING, N_CODES, GenotypeMatrix

if TYPE_CHECKING:  # pragma: no cover
    from impbench.imputers.base import Imputation

__all__ = ["write_vcf", "GenotypeVcfWriter", "dosage_r2", "BgzfWriter", "read_vcf", "VcfReader", "VariantBatch", "SiteCounts", "Region"]

# --------------------------------------------------------------------------------------------
# BGZF (SAM/BAM specification, section 4.1): gzip members of at most 64 KiB, each with a "BC"
# extra field holding the member's size, and a fixed empty member as end-of-file marker.
# --------------------------------------------------------------------------------------------

#: Uncompressed bytes per BGZF block (what bgzip uses).
_BGZF_BLOCK = 0xFF00
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def _bgzf_block(data: bytes, level: int) -> bytes:
    """One BGZF block holding ``data`` (at most ``_BGZF_BLOCK`` bytes)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    payload = compressor.compress(data) + compressor.flush()
    if len(payload) > 0xFFFF - 25:  # incompressible: store it
        compressor = zlib.compressobj(0, zlib.DEFLATED, -15)
        payload = compressor.compress(data) + compressor.flush()
    block_size = len(payload) + 25  # 18-byte header + payload + CRC32 + ISIZE, minus 1
    header = struct.pack("<4BI2BH2BHH", 0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, 66, 67, 2, block_size)
    return header + payload + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data))


class BgzfWriter:
    """Write bytes to a BGZF file; blocks are compressed on ``threads`` threads (zlib frees the GIL).

    Use as a context manager; ``close`` writes the end-of-file marker.
    """

    def __init__(self, path: str | os.PathLike, level: int = 6, threads: int | None = None):
        self._file: BinaryIO = open(path, "wb")
        self._level = level
        self._pending = bytearray()
        self._threads = threads or min(4, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self._threads) if self._threads > 1 else None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._pending += data
        if len(self._pending) >= _BGZF_BLOCK * 16 * self._threads:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        n_full = len(self._pending) // _BGZF_BLOCK
        end = len(self._pending) if final else n_full * _BGZF_BLOCK
        view = bytes(self._pending[:end])
        del self._pending[:end]
        pieces = [view[i : i + _BGZF_BLOCK] for i in range(0, len(view), _BGZF_BLOCK)]
        if self._pool is not None and len(pieces) > 1:
            blocks: Iterable[bytes] = self._pool.map(lambda piece: _bgzf_block(piece, self._level), pieces)
        else:
            blocks = [_bgzf_block(piece, self._level) for piece in pieces]
        for block in blocks:
            self._file.write(block)

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._flush(final=True)
            self._file.write(_BGZF_EOF)
        finally:
            self._file.close()
            if self._pool is not None:
                self._pool.shutdown()

    def abort(self) -> None:
        """Close without finishing the file (the caller removes it)."""
        self._file.close()
        if self._pool is not None:
            self._pool.shutdown()

    def __enter__(self) -> "BgzfWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

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


def _header(matrix: GenotypeMatrix, sample_ids: np.ndarray, imputed: bool, masked: bool) -> bytes:
    lines = [
        "##fileformat=VCFv4.2",
        "##source=impbench",
        f"##contig=<ID={matrix.contig}>",
        '##FILTER=<ID=PASS,Description="All filters passed">',
    ]
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
            out.write(_header(matrix, sample_ids, imputed, masked is not None))
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
                    r2 = dosage_r2(block_dosage.T, block_probs.transpose(1, 0, 2))
                    infos = [f"AF={af:.4f};DR2={d:.3f}" for af, d in zip(allele_freq, r2)]
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
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp_index.unlink(missing_ok=True)
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
            self._out.write(text)
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
        except BaseException:
            self.abort()
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


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

#: Records per decoded batch.
DEFAULT_BATCH = 8192

# cyvcf2's ``genotype.array()`` gives (allele0, allele1, phased) per sample as int16, alleles
# -1 for missing and -2 for "vector end" (a haploid call). One table lookup turns the three
# into a code plus flags: key = (allele0 + 4) * 16 + (allele1 + 4) * 2 + phased.
MAX_CODE_BITS = 0x1F
_FLAG_UNPHASED_HET = np.uint8(0x80)
_FLAG_HAPLOID = np.uint8(0x40)
_FLAG_INVALID = np.uint8(0x20)
_KEY_OFFSET = np.int16(4 * 16 + 4 * 2)


def _build_raw_gt_lut() -> np.ndarray:
    lut = np.zeros(128, dtype=np.uint8)
    for a0 in range(-4, 4):
        for a1 in range(-4, 4):
            for phased in (0, 1):
                key = (a0 + 4) * 16 + (a1 + 4) * 2 + phased
                if a1 == -2:
                    lut[key] = _FLAG_HAPLOID
                elif a0 not in (-1, 0, 1) or a1 not in (-1, 0, 1):
                    lut[key] = _FLAG_INVALID
                elif a0 == -1 or a1 == -1:
                    lut[key] = MISSING
                else:
                    lut[key] = ALLELES_CODE[a0, a1] | (_FLAG_UNPHASED_HET if (not phased and a0 != a1) else 0)
    return lut


_RAW_GT_LUT = _build_raw_gt_lut()
_SNP_BASES = frozenset("ACGTacgt")


@dataclass(frozen=True)
class Region:
    """A genomic interval ``contig[:start-end]`` (1-based, inclusive; None = open)."""

    contig: str
    start: int | None = None
    end: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Region":
        """Parse ``chr``, ``chr:start-end``, ``chr:start-`` or ``chr:pos`` (commas allowed)."""
        text = str(text).strip().replace(",", "")
        contig, _, span = text.partition(":")
        if not contig:
            raise ImpbenchError(f"region {text!r}: no contig name (expected e.g. 22:16000000-17000000)")
        if not span:
            return cls(contig)
        lo, dash, hi = span.partition("-")
        try:
            start = int(lo) if lo else None
            end = int(hi) if hi else (None if dash else start)
        except ValueError:
            raise ImpbenchError(f"region {text!r}: start and end must be whole numbers (e.g. 22:16000000-17000000)") from None
        if start is not None and end is not None and end < start:
            raise ImpbenchError(f"region {text!r}: end is before start")
        return cls(contig, start, end)

    def __str__(self) -> str:
        if self.start is None and self.end is None:
            return self.contig
        return f"{self.contig}:{self.start or 1}-{'' if self.end is None else self.end}"

    def contains(self, position: int) -> bool:
        return (self.start is None or position >= self.start) and (self.end is None or position <= self.end)


@dataclass
class SiteCounts:
    """What the reader saw and dropped (records in the region, before any QC on genotypes).

    n_records : records read in the region.
    n_no_alt : records without an ALT allele (ALT ``.``), dropped.
    n_multiallelic : records with more than one ALT allele, dropped.
    n_non_snp : biallelic indels, MNPs and symbolic alleles, dropped (when SNPs only).
    n_duplicate_position : records sharing a position with another kept record; every record
        at such a position is dropped (``n_duplicate_sites`` positions).
    n_unphased_het : unphased heterozygous genotypes read as if phased (``allow_unphased``).
    n_kept : records passed on.
    """

    n_records: int = 0
    n_no_alt: int = 0
    n_multiallelic: int = 0
    n_non_snp: int = 0
    n_duplicate_position: int = 0
    n_duplicate_sites: int = 0
    n_unphased_het: int = 0
    n_kept: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class VariantBatch:
    """Consecutive kept records, variant-major.

    codes : uint8, shape (n_batch, n_samples) (note: variants are rows here).
    positions : int64 (n_batch,); ref, alt, variant_ids : object (n_batch,).
    """

    codes: np.ndarray
    positions: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    variant_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.positions)


def _sniff_vcf(path: Path) -> None:
    """Raise ImpbenchError unless ``path`` is a readable (b)gzipped or plain VCF, or a BCF."""
    if not path.exists():
        raise ImpbenchError(f"{path}: file not found")
    if path.is_dir():
        raise ImpbenchError(f"{path}: is a folder, not a VCF file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
        if head == b"\x1f\x8b":
            import gzip

            with gzip.open(path, "rb") as handle:
                head = handle.read(16)
        else:
            with open(path, "rb") as handle:
                head = handle.read(16)
    except OSError as error:
        raise ImpbenchError(f"{path}: cannot read ({error.strerror or error})") from None
    except EOFError:
        raise ImpbenchError(f"{path}: not a VCF (truncated gzip data)") from None
    if not (head.startswith(b"##fileformat=VCF") or head.startswith(b"BCF\x02")):
        raise ImpbenchError(f"{path}: not a VCF (it does not start with '##fileformat=VCF')")


def _has_index(path: Path) -> bool:
    return any(Path(str(path) + ext).exists() for ext in (".tbi", ".csi"))


def _header_contigs(raw_header: str) -> list[str]:
    contigs = []
    for line in raw_header.splitlines():
        if line.startswith("##contig=<"):
            for item in line[len("##contig=<") : -1].split(","):
                key, _, value = item.partition("=")
                if key == "ID":
                    contigs.append(value)
    return contigs


class VcfReader:
    """Stream a VCF (cyvcf2) as ``VariantBatch``es of phased genotype codes.

    path : VCF/BCF, plain, gzipped or bgzipped. region : ``Region``, a region string or None;
        with a tabix/CSI index the index is used, otherwise records are filtered while
        streaming. The contig name is matched with or without a ``chr`` prefix.
    allow_unphased : read unphased genotypes as if phased (alleles in VCF order); otherwise an
        unphased heterozygous genotype is an error (a homozygous one carries no phase and is
        accepted).
    snps_only : drop biallelic indels/MNPs/symbolic alleles (multiallelic records and records
        without ALT are always dropped). Dropped records are counted in ``counts``.
    batch_size : records per batch (a batch may be longer by the records at its last
        position, so that a duplicated position never straddles two batches).

    After iterating, ``counts`` holds the ``SiteCounts`` and ``contig`` the contig read.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        region: "Region | str | None" = None,
        *,
        allow_unphased: bool = False,
        snps_only: bool = True,
        batch_size: int = DEFAULT_BATCH,
        threads: int | None = None,
    ):
        self.path = Path(path)
        self.region = Region.parse(region) if isinstance(region, str) else region
        self.allow_unphased = allow_unphased
        self.snps_only = snps_only
        self.batch_size = int(batch_size)
        self.threads = threads if threads is not None else min(2, os.cpu_count() or 1)
        self.counts = SiteCounts()
        self.contig: str | None = None
        _sniff_vcf(self.path)
        self._vcf = self._open()
        self.sample_ids = np.asarray(self._vcf.samples, dtype=object)
        if len(set(self._vcf.samples)) != len(self._vcf.samples):
            raise ImpbenchError(f"{self.path}: the header names a sample twice")
        if len(self.sample_ids) == 0:
            raise ImpbenchError(f"{self.path}: the VCF has no samples (no genotype columns)")

    def _open(self):
        from cyvcf2 import VCF

        try:
            return VCF(str(self.path), threads=self.threads, lazy=True)
        except OSError as error:
            raise ImpbenchError(f"{self.path}: not a readable VCF ({error})") from None

    def _records(self) -> Iterable:
        """Records of the region (all records without a region)."""
        vcf = self._vcf
        region = self.region
        if region is None:
            return iter(vcf)
        names = _header_contigs(vcf.raw_header)
        contig = region.contig
        if names and contig not in names:
            alternative = contig[3:] if contig.startswith("chr") else "chr" + contig
            if alternative in names:
                contig = alternative
            else:
                shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
                raise ImpbenchError(f"{self.path}: region {region}: contig {region.contig!r} is not in the VCF (contigs: {shown})")
        self.region = region = Region(contig, region.start, region.end)
        if _has_index(self.path):
            try:
                records = vcf(str(region))
            except Exception as error:  # an index that does not fit the file
                raise ImpbenchError(f"{self.path}: cannot use the index for region {region} ({error})") from None
            # the index also returns records that start before the region and overlap it
            return (v for v in records if region.contains(v.POS))
        return (v for v in vcf if v.CHROM == contig and region.contains(v.POS))

    def batches(self) -> Iterable[VariantBatch]:
        """Yield ``VariantBatch``es of kept records in file order.

        Records are parsed into one of two raw buffers while the other is decoded on a worker
        thread (numpy releases the GIL), so decoding overlaps parsing.
        """
        n_samples = len(self.sample_ids)
        capacity = self.batch_size + 64
        buffers = [np.empty((capacity, n_samples, 3), dtype=np.int16) for _ in range(2)]
        current = 0
        raw = buffers[current]
        positions: list[int] = []
        refs: list[str] = []
        alts: list[str] = []
        ids: list[str] = []
        counts = self.counts
        snps_only = self.snps_only
        batch_size = self.batch_size
        last_pos = -1
        contig = None
        pending = None
        pool = ThreadPoolExecutor(1)
        try:
            for record in self._records():
                counts.n_records += 1
                if contig is None:
                    contig = self.contig = record.CHROM
                elif record.CHROM != contig:
                    raise ImpbenchError(
                        f"{self.path}: holds more than one contig ({contig}, {record.CHROM}); choose one with a region"
                    )
                pos = record.POS
                if pos < last_pos:
                    raise ImpbenchError(
                        f"{self.path}: records are not sorted by position ({contig}:{pos} after {last_pos}); "
                        "sort it with bcftools sort"
                    )
                alt = record.ALT
                if len(alt) != 1:
                    if len(alt) == 0:
                        counts.n_no_alt += 1
                    else:
                        counts.n_multiallelic += 1
                    continue
                ref = record.REF
                alt = alt[0]
                if snps_only and not (len(ref) == 1 and len(alt) == 1 and ref in _SNP_BASES and alt in _SNP_BASES):
                    counts.n_non_snp += 1
                    continue
                n_buffered = len(positions)
                if n_buffered >= batch_size and pos != last_pos:
                    future = pool.submit(self._decode, raw[:n_buffered], positions, refs, alts, ids)
                    if pending is not None:
                        yield pending.result()
                    pending = future
                    current ^= 1
                    raw = buffers[current]
                    positions, refs, alts, ids = [], [], [], []
                    n_buffered = 0
                elif n_buffered == len(raw):
                    raw = buffers[current] = np.concatenate([raw, np.empty_like(raw)])
                genotype = record.genotype
                if genotype is None:
                    raise ImpbenchError(f"{self.path}: record {contig}:{pos} has no GT field")
                array = genotype.array()
                if array.shape[1] != 3:
                    raise ImpbenchError(
                        f"{self.path}: record {contig}:{pos} is not diploid (ploidy {array.shape[1] - 1}); only diploid genotypes are supported"
                    )
                raw[n_buffered] = array
                positions.append(pos)
                refs.append(ref)
                alts.append(alt)
                ids.append(record.ID or ".")
                last_pos = pos
            if pending is not None:
                yield pending.result()
                pending = None
            if positions:
                yield self._decode(raw[: len(positions)], positions, refs, alts, ids)
        except ImpbenchError:
            raise
        except Exception as error:  # htslib parse errors, truncated files
            raise ImpbenchError(f"{self.path}: cannot read record {counts.n_records} ({type(error).__name__}: {error})") from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _decode(self, raw: np.ndarray, positions: list, refs: list, alts: list, ids: list) -> VariantBatch:
        """Codes from raw cyvcf2 genotypes (n_batch, n_samples, 3) int16; drops duplicated positions."""
        key = raw[:, :, 0] << 4
        key += raw[:, :, 1] << 1
        key += raw[:, :, 2]
        key += _KEY_OFFSET
        np.clip(key, 0, len(_RAW_GT_LUT) - 1, out=key)  # out-of-range alleles land on flagged entries
        coded = _RAW_GT_LUT[key]  # (n_batch, n_samples) uint8
        del key
        if coded.max(initial=0) > MAX_CODE_BITS:
            flags = coded & ~np.uint8(MAX_CODE_BITS)
            bad = (flags & (_FLAG_HAPLOID | _FLAG_INVALID)) != 0
            if bad.any():
                row = int(np.nonzero(bad.any(axis=1))[0][0])
                what = "a haploid genotype" if (flags[row] & _FLAG_HAPLOID).any() else "an allele index other than 0 or 1"
                raise ImpbenchError(
                    f"{self.path}: record {self.contig}:{positions[row]} has {what}; only diploid biallelic genotypes are supported"
                )
            unphased_het = flags != 0
            if not self.allow_unphased:
                row, col = (int(x[0]) for x in np.nonzero(unphased_het))
                raise ImpbenchError(
                    f"{self.path}: unphased genotypes (first at {self.contig}:{positions[row]}, sample "
                    f"{self.sample_ids[col]}); phase the VCF first or allow unphased genotypes in the card"
                )
            self.counts.n_unphased_het += int(np.count_nonzero(unphased_het))
            coded &= np.uint8(MAX_CODE_BITS)
        codes = coded
        pos = np.asarray(positions, dtype=np.int64)
        keep = np.ones(len(pos), dtype=bool)
        same = pos[1:] == pos[:-1]
        if same.any():
            keep[1:][same] = False
            keep[:-1][same] = False
            self.counts.n_duplicate_position += int((~keep).sum())
            self.counts.n_duplicate_sites += int(np.count_nonzero(np.diff(np.concatenate([[0], same.astype(np.int8)])) == 1))
        self.counts.n_kept += int(keep.sum())
        return VariantBatch(
            codes=codes[keep],
            positions=pos[keep],
            ref=np.asarray(refs, dtype=object)[keep],
            alt=np.asarray(alts, dtype=object)[keep],
            variant_ids=np.asarray(ids, dtype=object)[keep],
        )

    def read(self) -> GenotypeMatrix:
        """The whole (region of the) VCF as one ``GenotypeMatrix`` (for data that fits twice in memory)."""
        batches = list(self.batches())
        if not batches:
            where = f" in region {self.region}" if self.region else ""
            raise ImpbenchError(f"{self.path}: no usable variants{where} ({self.counts.n_records} records read)")
        return GenotypeMatrix(
            codes=np.ascontiguousarray(np.concatenate([b.codes for b in batches]).T),
            positions=np.concatenate([b.positions for b in batches]),
            contig=self.contig or (self.region.contig if self.region else ""),
            ref=np.concatenate([b.ref for b in batches]),
            alt=np.concatenate([b.alt for b in batches]),
            variant_ids=np.concatenate([b.variant_ids for b in batches]),
            sample_ids=self.sample_ids,
        )


def read_vcf(
    path: str | os.PathLike,
    region: "Region | str | None" = None,
    *,
    allow_unphased: bool = False,
    snps_only: bool = True,
    batch_size: int = DEFAULT_BATCH,
) -> GenotypeMatrix:
    """Read a phased VCF into a ``GenotypeMatrix`` (see ``VcfReader`` for the arguments).

    Multiallelic records, records without ALT, non-SNPs (when ``snps_only``) and every record at
    a duplicated position are dropped. Raises ``ImpbenchError`` naming the file when it is
    missing, not a VCF, unphased (unless allowed), or has no usable variant in the region.
    """
    return VcfReader(path, region, allow_unphased=allow_unphased, snps_only=snps_only, batch_size=batch_size).read()
