"""The fast text path of ``VcfReader``: the records of a (b)gzipped or plain VCF whose FORMAT is
``GT`` alone, with one-character alleles, parsed in bulk with numpy instead of one htslib
record at a time.

A chunk of decompressed text (whole lines) is parsed at once: each line's genotype section is
the last ``4 * n_samples - 1`` bytes before its newline, which holds a genotype only when every
fourth byte is a tab and each genotype is ``allele sep allele`` (allele ``0``-``9`` or ``.``,
sep ``|`` or ``/``). The alleles and phase come out as cyvcf2's ``genotype.array()`` gives them
(int16 (n_samples, 3): allele0, allele1, phased; -1 for ``.``), so the reader's decoding,
filters and messages are the same on both paths. A chunk with any line that does not fit (other
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

#: Bytes of decompressed text read at a time.
TEXT_CHUNK_BYTES = 1 << 24
#: Lines whose genotype bytes are decoded at once (bounds the temporaries).
GATHER_LINES = 256

_TAB, _NEWLINE = 9, 10
#: allele byte -> allele index (0-9), -1 for '.', -100 for a byte that is not an allele
_ALLELE = np.full(256, -100, dtype=np.int16)
_ALLELE[ord("0") : ord("9") + 1] = np.arange(10)
_ALLELE[ord(".")] = -1
#: separator byte -> phased (1 '|', 0 '/'), -100 otherwise
_PHASED = np.full(256, -100, dtype=np.int16)
_PHASED[ord("|")], _PHASED[ord("/")] = 1, 0


class NotText(Exception):
    """The file cannot be read on the text path (from its first record on)."""


def _open_text(path: Path, kind: str):
    return gzip.open(path, "rb") if kind in ("bgzf", "gzip") else open(path, "rb")


class TextRecords:
    """Iterate a VCF's records as ``(chrom, pos, ref, alts, id, genotypes)`` tuples, where
    genotypes is int16 (n_samples, 3) like cyvcf2's ``genotype.array()``; ``alts`` is a list
    (empty for ALT ``.``) and ``id`` None for ``.``.

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

    Returns (metas, genotypes): metas a list of (chrom, pos, ref, alts, id) per line, genotypes
    int16 (n_lines, n_samples, 3); or None when any line does not fit the text path.
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
    genotypes = np.empty((len(ends), n_samples, 3), dtype=np.int16)
    for first in range(0, len(ends), GATHER_LINES):
        lines = np.empty((min(GATHER_LINES, len(ends) - first), width), dtype=np.uint8)
        for row, start in enumerate(genotype_starts[first : first + GATHER_LINES].tolist()):
            lines[row] = text[start : start + width]
        cells = lines.reshape(len(lines), n_samples, 4)  # allele, separator, allele, tab (newline last)
        block = genotypes[first : first + len(lines)]
        block[..., 0] = _ALLELE[cells[..., 0]]
        block[..., 2] = _PHASED[cells[..., 1]]
        block[..., 1] = _ALLELE[cells[..., 2]]
        if (cells[:, :-1, 3] != _TAB).any() or (block < -1).any():
            return None
    return metas, genotypes
