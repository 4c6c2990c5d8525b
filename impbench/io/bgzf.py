"""BGZF, the blocked gzip that ``bgzip``, ``bcftools`` and ``tabix`` read and write.

SAM/BAM specification, section 4.1: gzip members of at most 64 KiB, each with a "BC" extra
field holding the member's size, and a fixed empty member as end-of-file marker.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, Iterable

#: Uncompressed bytes per BGZF block (what bgzip uses).
_BGZF_BLOCK = 0xFF00
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def is_bgzf_header(head: bytes) -> bool:
    """True when ``head`` (a file's first 16 bytes or more) starts a BGZF block: a gzip member
    with the FEXTRA flag whose first extra subfield is ``BC`` (SAM/BAM specification 4.1)."""
    return len(head) >= 14 and head[:4] == b"\x1f\x8b\x08\x04" and head[12:14] == b"BC"


def has_bgzf_eof(path: str | os.PathLike) -> bool:
    """True when the file ends with the BGZF end-of-file marker (the empty block every BGZF
    writer closes with). A BGZF file without it was cut short: htslib only warns and reads
    the records before the cut as if they were all."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() < len(_BGZF_EOF):
            return False
        handle.seek(-len(_BGZF_EOF), os.SEEK_END)
        return handle.read() == _BGZF_EOF


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
