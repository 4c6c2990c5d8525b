"""The fast text path of ``VcfReader``: the records of a (b)gzipped or plain VCF whose FORMAT is
``GT`` alone, with one-character alleles, parsed in bulk with numpy instead of one htslib
record at a time.

A chunk of decompressed text (whole lines) is parsed at once: each line's genotype section is
the last ``4 * n_samples - 1`` bytes before its newline, which holds a genotype only when every
fourth byte is a tab and each genotype is ``allele sep allele`` (allele ``0``-``9`` or ``.``,
sep ``|`` or ``/``). Each genotype's four bytes, read as one integer, index a table of the codes
with flags that cyvcf2's ``genotype.array()`` would give (``code_raw_genotypes``), so the
reader's checks, filters and messages are the same on both paths. A chunk with any line that does not fit (other
FORMAT fields, haploid or multi-digit genotypes, a malformed line) is not parsed here:
``TextRecords`` stops before it and the reader goes on through cyvcf2 from that record, which
also reports every error the same way.

Decompression (zlib, which releases the GIL) runs on a worker thread, ahead of the parsing.
"""

from __future__ import annotations

import gzip
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np

from impbench.genotypes import ALLELES_CODE, MISSING

#: Bytes of decompressed text read at a time.
TEXT_CHUNK_BYTES = 1 << 24
#: Lines whose genotype bytes are decoded at once (bounds the temporaries).
GATHER_LINES = 256

_TAB, _NEWLINE = 9, 10

# The genotype code of both read paths: a code 0-4 (``impbench.genotypes``) in the low bits, and
# flags for what is not a diploid biallelic phased genotype (the reader raises, or counts
# unphased hets when allowed). cyvcf2's ``genotype.array()`` gives (allele0, allele1, phased)
# per sample as int16, alleles -1 for missing and -2 for "vector end" (a haploid call); one table
# lookup turns the three into a code plus flags: key = (allele0 + 4) * 16 + (allele1 + 4) * 2 +
# phased.
GT_CODE_BITS = 0x1F
FLAG_UNPHASED_HET = np.uint8(0x80)
FLAG_HAPLOID = np.uint8(0x40)
FLAG_INVALID = np.uint8(0x20)
#: a text genotype the text path does not read (never a value of the code table)
NOT_TEXT = np.uint8(0xFF)
_RAW_KEY_OFFSET = np.int16(4 * 16 + 4 * 2)


def _raw_gt_table() -> np.ndarray:
    table = np.zeros(128, dtype=np.uint8)
    for a0 in range(-4, 4):
        for a1 in range(-4, 4):
            for phased in (0, 1):
                key = (a0 + 4) * 16 + (a1 + 4) * 2 + phased
                if a1 == -2:
                    table[key] = FLAG_HAPLOID
                elif a0 not in (-1, 0, 1) or a1 not in (-1, 0, 1):
                    table[key] = FLAG_INVALID
                elif a0 == -1 or a1 == -1:
                    table[key] = MISSING
                else:
                    table[key] = ALLELES_CODE[a0, a1] | (FLAG_UNPHASED_HET if (not phased and a0 != a1) else 0)
    return table


_RAW_GT_TABLE = _raw_gt_table()


def code_raw_genotypes(raw: np.ndarray) -> np.ndarray:
    """Codes with flags, uint8 (...,), of cyvcf2 genotypes int16 (..., 3)."""
    key = raw[..., 0] << 4
    key += raw[..., 1] << 1
    key += raw[..., 2]
    key += _RAW_KEY_OFFSET
    np.clip(key, 0, len(_RAW_GT_TABLE) - 1, out=key)  # out-of-range alleles land on flagged entries
    return _RAW_GT_TABLE[key]


_CELL_TABLE: np.ndarray | None = None


def _cell_table() -> np.ndarray:
    """uint8 (2**24,): the code with flags of a text genotype's three bytes ``allele sep allele``
    read as a little-endian integer (``a0 | sep << 8 | a1 << 16``), the same as cyvcf2's array
    coded by ``code_raw_genotypes``; ``NOT_TEXT`` for bytes that are not such a genotype."""
    global _CELL_TABLE
    if _CELL_TABLE is None:
        allele = np.full(256, 12, dtype=np.int64)  # 12: not an allele
        allele[ord("0") : ord("9") + 1] = np.arange(10)
        allele[ord(".")] = 10
        phased = np.full(256, 2, dtype=np.int64)  # 2: not a separator
        phased[ord("/")], phased[ord("|")] = 0, 1
        small = np.full((13, 3, 13), NOT_TEXT, dtype=np.uint8)  # [allele0, phased, allele1]
        for a0 in range(11):
            for ph in range(2):
                for a1 in range(11):
                    raw = np.array([[-1 if a0 == 10 else a0, -1 if a1 == 10 else a1, ph]], dtype=np.int16)
                    small[a0, ph, a1] = code_raw_genotypes(raw)[0]
        byte = np.arange(256)
        _CELL_TABLE = small[allele[byte][None, None, :], phased[byte][None, :, None], allele[byte][:, None, None]].reshape(-1)
    return _CELL_TABLE


class NotText(Exception):
    """The file cannot be read on the text path (from its first record on)."""


def _open_text(path: Path, kind: str):
    return gzip.open(path, "rb") if kind in ("bgzf", "gzip") else open(path, "rb")


class TextRecords:
    """Iterate a VCF's records as ``(chrom, pos, ref, alts, id, coded)`` tuples, where coded is
    uint8 (n_samples,), codes with flags, as ``code_raw_genotypes`` gives them from cyvcf2's
    ``genotype.array()``; ``alts`` is a list (empty for ALT ``.``) and ``id`` None for ``.``.

    Iteration stops early, without error, before the first chunk that does not fit the text
    path (or that fails to decompress); ``n_done`` is then the number of records yielded, and
    ``complete`` False. path, kind : the file and ``sniff_vcf``'s kind ("bgzf", "gzip", "plain").
    """

    def __init__(self, path: Path, kind: str, n_samples: int, chunk_bytes: int = TEXT_CHUNK_BYTES):
        if kind not in ("bgzf", "gzip", "plain"):
            raise NotText(kind)
        self.path, self.kind, self.n_samples = Path(path), kind, int(n_samples)
        self.chunk_bytes = int(chunk_bytes)
        self.n_done = 0
        self.complete = False

    def __iter__(self) -> Iterator[tuple]:
        for metas, genotypes in self._chunks():
            for i, meta in enumerate(metas):
                self.n_done += 1
                yield (*meta, genotypes[i])
        # _chunks sets complete when it read the whole file

    def _chunks(self) -> Iterator[tuple[list, np.ndarray]]:
        pool = ThreadPoolExecutor(1)
        handle = None
        try:
            handle = _open_text(self.path, self.kind)
            pending = pool.submit(handle.read, self.chunk_bytes)
            rest = b""
            in_header = True
            while True:
                data = pending.result()
                if data:
                    pending = pool.submit(handle.read, self.chunk_bytes)
                buffer = rest + data
                end = buffer.rfind(b"\n") + 1 if data else len(buffer)
                rest, buffer = buffer[end:], buffer[:end]
                if in_header:
                    chrom_line = buffer.find(b"#CHROM")
                    if chrom_line < 0 or (chrom_line > 0 and buffer[chrom_line - 1] != _NEWLINE):
                        if not data:
                            return
                        rest = buffer + rest  # the header goes on
                        continue
                    header_end = buffer.find(b"\n", chrom_line) + 1
                    if len(buffer[chrom_line:header_end].split(b"\t")) != 9 + self.n_samples:
                        return
                    buffer = buffer[header_end:]
                    in_header = False
                if buffer:
                    parsed = parse_text_lines(buffer, self.n_samples)
                    if parsed is None:
                        return
                    yield parsed
                if not data:
                    self.complete = True
                    return
        except (OSError, EOFError, zlib.error):
            return  # corrupt or truncated data: the cyvcf2 path reports it
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if handle is not None:
                handle.close()


def parse_text_lines(buffer: bytes, n_samples: int) -> tuple[list, np.ndarray] | None:
    """Parse whole record lines (each ending in a newline) of a GT-only VCF.

    Returns (metas, coded): metas a list of (chrom, pos, ref, alts, id) per line, coded uint8
    (n_lines, n_samples) codes with flags (as ``code_raw_genotypes`` gives them); or None when
    any line does not fit the text path.
    """
    text = np.frombuffer(buffer, dtype=np.uint8)
    ends = np.flatnonzero(text == _NEWLINE)
    if len(ends) == 0:
        return [], np.empty((0, n_samples, 3), dtype=np.int16)
    width = 4 * n_samples  # genotype bytes with their tabs, and the newline
    starts = np.concatenate([[0], ends[:-1] + 1])
    genotype_starts = ends + 1 - width
    if (genotype_starts - 1 <= starts).any() or (text[genotype_starts - 1] != _TAB).any():
        return None
    metas = []
    for start, stop in zip(starts.tolist(), (genotype_starts - 1).tolist()):
        fields = buffer[start:stop].split(b"\t")
        if len(fields) != 9 or fields[8] != b"GT":
            return None
        chrom, pos, vid, ref, alt = fields[0], fields[1], fields[2], fields[3], fields[4]
        if not pos.isdigit() or not chrom or not ref:
            return None
        metas.append((
            chrom.decode(), int(pos), ref.decode(),
            [] if alt == b"." else alt.decode().split(","),
            None if vid == b"." else vid.decode(),
        ))  # fmt: skip
    coded = np.empty((len(ends), n_samples), dtype=np.uint8)
    table = _cell_table()
    for first in range(0, len(ends), GATHER_LINES):
        lines = np.empty((min(GATHER_LINES, len(ends) - first), width), dtype=np.uint8)
        for row, start in enumerate(genotype_starts[first : first + GATHER_LINES].tolist()):
            lines[row] = text[start : start + width]
        cells = lines.view("<u4")  # (lines, n_samples): allele | sep << 8 | allele << 16 | tab << 24
        if ((cells[:, :-1] >> 24) != _TAB).any():
            return None
        block = coded[first : first + len(lines)]
        block[...] = table[cells & np.uint32(0xFFFFFF)]
        if (block == NOT_TEXT).any():
            return None
    return metas, coded
