"""The HDF5 store of a prepared dataset (h5py).

Layout (one file per dataset + settings)::

    /                      attrs: format, name, contig, n_variants, dataset_hash,
                                  qc_report, settings, inputs (JSON strings)
    /samples/{sample_ids,cohort,sex,split}     every kept sample, in VCF order
    /variants/{positions,ref,alt,variant_ids}  every kept variant, in position order
    /splits/<split>/codes        uint8 (n_split_samples, n_variants), chunks (64, 4096), gzip
    /splits/<split>/sample_index int64 rows of /samples, in the order of the codes' rows

Each split is its own dataset, so reading one split reads none of the others. ``StoreWriter``
writes a store under a temporary name in the target folder and renames it when complete; its
chunks are compressed on a thread pool (zlib releases the GIL) and written with HDF5's direct
chunk write, so they read back with the standard gzip filter.

``dataset_hash`` is the SHA-256 of the store's content: a header (format, contig, split
names, sample and variant tables) followed by the SHA-256 of every codes chunk, split by
split in chunk order. It does not depend on the file's bytes (HDF5 metadata, timestamps).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator
from typing import Any

import numpy as np

from impbench.data import h5errors
from impbench.errors import ImpbenchError
from impbench.genotypes import GenotypeMatrix
from impbench.data.split import SPLITS

STORE_FORMAT = 1
CHUNK_SAMPLES = 64
CHUNK_VARIANTS = 4096
#: zlib level of the codes chunks (genotype codes compress well already at level 1).
COMPRESSION_LEVEL = 1


def temp_pattern(path: Path) -> str:
    """The glob of ``StoreWriter``'s temporary files for the store ``path``: ``.NAME.*.tmp``."""
    return f".{path.name}.*.tmp"


@contextlib.contextmanager
def store_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the store ``path`` while building it: ``flock`` on
    ``.NAME.lock`` beside it, removed on release. A second prepare of the same store waits,
    then finds it built; the kernel drops the lock when its holder dies, so a killed prepare
    never blocks the next. (A waiter that wakes on a lock file already removed takes a new one.)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.parent / f".{path.name}.lock"
    while True:
        handle = open(lock_path, "a")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                current = os.stat(lock_path)
            except FileNotFoundError:
                current = None
            mine = os.fstat(handle.fileno())
            if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
                break
        except BaseException:
            handle.close()
            raise
        handle.close()  # the holder before us removed that file: lock the new one
    try:
        yield
    finally:
        try:
            lock_path.unlink(missing_ok=True)
        finally:
            handle.close()  # releases the lock


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files a killed build of the store ``path`` left beside it
    (``.NAME.*.tmp``); call it under ``store_lock(path)``, so no live build owns one.
    Returns the paths removed."""
    path = Path(path)
    removed = []
    for stale in sorted(path.parent.glob(temp_pattern(path))):
        stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed


def rebuild_hint(name: str | None) -> str:
    """What to run to rebuild a corrupt store of dataset ``name``."""
    return f"rebuild it: impbench prepare --dataset {name or 'NAME'} --force"


def _string_dtype():
    import h5py

    return h5py.string_dtype("utf-8")


def _as_str_array(values) -> np.ndarray:
    return np.array([str(v) for v in values], dtype=object)


def _table_digest(hasher: "hashlib._Hash", name: str, values: np.ndarray) -> None:
    hasher.update(name.encode() + b"\x00")
    if values.dtype == object:
        hasher.update("\x1f".join(map(str, values)).encode())
    else:
        hasher.update(np.ascontiguousarray(values).tobytes())
    hasher.update(b"\x1e")


def _compress_chunk(block: np.ndarray, shape: tuple[int, int]) -> tuple[bytes, bytes]:
    """zlib-compress ``block`` padded to the full chunk ``shape``; also its content digest."""
    if block.shape != shape:
        full = np.zeros(shape, dtype=np.uint8)
        full[: block.shape[0], : block.shape[1]] = block
        padded = full
    else:
        padded = np.ascontiguousarray(block)
    raw = padded.tobytes()
    digest = hashlib.sha256(np.ascontiguousarray(block).tobytes()).digest()
    return zlib.compress(raw, COMPRESSION_LEVEL), digest


class StoreWriter:
    """Write a store for a known set of samples (with split labels) and variants.

    Feed variant-major batches of codes (``add``) for the kept samples in order, then
    ``finish``; ``abort`` (or an exception inside ``with``) removes the temporary file.

    sample_ids, cohort, sex, split : object arrays (n_samples,) of the kept samples.
    n_variants : the number of variants that will be added in total, or None when unknown
        (the codes datasets then grow as variants arrive).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        name: str,
        contig: str,
        sample_ids,
        cohort,
        sex,
        split,
        n_variants: int | None = None,
        threads: int | None = None,
    ):
        import h5py

        self.path = Path(path)
        self.name = name
        self.contig = contig
        self.samples = {
            "sample_ids": _as_str_array(sample_ids),
            "cohort": _as_str_array(cohort),
            "sex": _as_str_array(sex),
            "split": _as_str_array(split),
        }
        self.n_variants = None if n_variants is None else int(n_variants)
        self._split_rows = {s: np.nonzero(self.samples["split"] == s)[0] for s in SPLITS}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self.tmp_path = Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp_path, 0o666 & ~umask)  # mkstemp's 0600 is not what a store needs
        self._file = h5py.File(self.tmp_path, "w")
        h5errors.quiet_dealloc_errors()
        self._threads = threads or min(4, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self._threads)
        self._pending: deque = deque()
        self._chunk_digests: dict[str, list[bytes]] = {s: [] for s in SPLITS}
        self._datasets = {}
        group = self._file.create_group("splits")
        for split_name, rows in self._split_rows.items():
            sub = group.create_group(split_name)
            sub.create_dataset("sample_index", data=rows.astype(np.int64))
            if len(rows):
                chunks = (min(CHUNK_SAMPLES, len(rows)), CHUNK_VARIANTS)
                self._datasets[split_name] = sub.create_dataset(
                    "codes", shape=(len(rows), 0), maxshape=(len(rows), None), dtype=np.uint8, chunks=chunks, compression="gzip"
                )
        self._slab = np.empty((CHUNK_VARIANTS, len(self.samples["sample_ids"])), dtype=np.uint8)
        self._slab_fill = 0
        self._written = 0
        self._variant_parts: dict[str, list[np.ndarray]] = {k: [] for k in ("positions", "ref", "alt", "variant_ids")}

    # ---------------------------------------------------------------------------------------
    def add(self, codes: np.ndarray, positions, ref, alt, variant_ids) -> None:
        """Append variants. codes : uint8 (n_batch, n_samples), variant-major."""
        codes = np.asarray(codes, dtype=np.uint8)
        if codes.ndim != 2 or codes.shape[1] != self._slab.shape[1]:
            raise ValueError(f"codes must have shape (n_batch, {self._slab.shape[1]}), got {codes.shape}")
        self._variant_parts["positions"].append(np.asarray(positions, dtype=np.int64))
        self._variant_parts["ref"].append(np.asarray(ref, dtype=object))
        self._variant_parts["alt"].append(np.asarray(alt, dtype=object))
        self._variant_parts["variant_ids"].append(np.asarray(variant_ids, dtype=object))
        start = 0
        while start < len(codes):
            take = min(CHUNK_VARIANTS - self._slab_fill, len(codes) - start)
            self._slab[self._slab_fill : self._slab_fill + take] = codes[start : start + take]
            self._slab_fill += take
            start += take
            if self._slab_fill == CHUNK_VARIANTS:
                try:
                    self._flush_slab()
                except RuntimeError as error:  # h5py's report of a failed write
                    raise h5errors.h5_os_error(error, self.tmp_path) from None

    def _flush_slab(self) -> None:
        width = self._slab_fill
        if width == 0:
            return
        column = self._written
        if self.n_variants is not None and column + width > self.n_variants:
            raise ValueError(f"more variants added than the {self.n_variants} announced")
        slab = self._slab[:width]
        for split_name, rows in self._split_rows.items():
            dataset = self._datasets.get(split_name)
            if dataset is None:
                continue
            dataset.resize(column + width, axis=1)
            block = slab[:, rows].T  # (n_split, width)
            chunk_shape = dataset.chunks
            for r0 in range(0, len(rows), chunk_shape[0]):
                piece = np.ascontiguousarray(block[r0 : r0 + chunk_shape[0]])
                future = self._pool.submit(_compress_chunk, piece, chunk_shape)
                self._pending.append((split_name, (r0, column), future))
        self._written += width
        self._slab_fill = 0
        self._drain(max_pending=32 * (self._threads + 1))

    def _drain(self, max_pending: int = 0) -> None:
        while len(self._pending) > max_pending:
            split_name, offset, future = self._pending.popleft()
            data, digest = future.result()
            self._datasets[split_name].id.write_direct_chunk(offset, data)
            self._chunk_digests[split_name].append(digest)

    # ---------------------------------------------------------------------------------------
    def finish(self, *, qc_report: dict, settings: dict, inputs: dict) -> "DatasetStore":
        """Write the tables and attributes, rename into place and return the opened store."""
        try:
            self._flush_slab()
            self._drain()
            if self.n_variants is not None and self._written != self.n_variants:
                raise ValueError(f"{self._written} variants added, {self.n_variants} announced")
            self.n_variants = self._written
            for split_name, rows in self._split_rows.items():
                if split_name not in self._datasets:  # an empty split
                    self._file["splits"][split_name].create_dataset("codes", shape=(0, self.n_variants), dtype=np.uint8)
            variants = {k: (np.concatenate(v) if v else np.empty(0, dtype=np.int64 if k == "positions" else object)) for k, v in self._variant_parts.items()}
            string = _string_dtype()
            samples_group = self._file.create_group("samples")
            for key, values in self.samples.items():
                samples_group.create_dataset(key, data=values.astype(object), dtype=string)
            variants_group = self._file.create_group("variants")
            variants_group.create_dataset("positions", data=variants["positions"])
            for key in ("ref", "alt", "variant_ids"):
                variants_group.create_dataset(key, data=_as_str_array(variants[key]), dtype=string, compression="gzip")
            hasher = hashlib.sha256()
            hasher.update(f"impbench-store/{STORE_FORMAT}\x00{self.contig}\x00".encode())
            for key, values in self.samples.items():
                _table_digest(hasher, f"samples/{key}", values)
            _table_digest(hasher, "variants/positions", variants["positions"])
            for key in ("ref", "alt", "variant_ids"):
                _table_digest(hasher, f"variants/{key}", _as_str_array(variants[key]))
            for split_name in SPLITS:
                hasher.update(f"splits/{split_name}\x00".encode())
                for digest in self._chunk_digests[split_name]:
                    hasher.update(digest)
            attrs = self._file.attrs
            attrs["format"] = STORE_FORMAT
            attrs["name"] = self.name
            attrs["contig"] = self.contig
            attrs["n_variants"] = self.n_variants
            attrs["dataset_hash"] = hasher.hexdigest()
            attrs["qc_report"] = json.dumps(qc_report, sort_keys=True)
            attrs["settings"] = json.dumps(settings, sort_keys=True)
            attrs["inputs"] = json.dumps(inputs, sort_keys=True)
            self._close_file()
            self._pool.shutdown()
            os.replace(self.tmp_path, self.path)
        except RuntimeError as error:  # h5py reports some failed writes (a full disk at close) so
            self.abort()
            raise h5errors.h5_os_error(error, self.tmp_path) from None
        except BaseException:
            self.abort()
            raise
        return DatasetStore.open(self.path)

    def _close_file(self) -> None:
        """Close the HDF5 file. When the close fails (a full disk: HDF5 cannot flush), the
        temporary file is emptied first, which frees its blocks, and closed again, so that HDF5
        holds no unflushed state (it would retry at exit, and crash); the first error is raised."""
        handle = self._file
        if handle is None:
            return
        try:
            handle.close()
        except BaseException:
            self._discard(handle)
            raise
        self._file = None

    def _discard(self, handle: Any) -> None:
        """Empty the temporary file (its space back) and close ``handle`` whatever it says."""
        self._file = None
        self._datasets.clear()
        with contextlib.suppress(OSError):
            os.truncate(self.tmp_path, 0)
        with contextlib.suppress(Exception):
            handle.close()
        h5errors.mark_unclean()

    def abort(self) -> None:
        """Stop and remove the temporary file."""
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            try:
                if self._file is not None:
                    self._discard(self._file)  # the store is given up: free its space before HDF5 flushes
            finally:
                self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


class DatasetStore:
    """A prepared dataset on disk (read-only).

    path, name, contig, n_variants, dataset_hash : as stored.
    qc_report : the QC report (``QCReport.as_dict()`` form). settings : the QC/split/card
    settings used. inputs : the fingerprint of the inputs (files, sizes, times).
    """

    def __init__(self, path: Path, attrs: dict[str, Any]):
        self.path = Path(path)
        self.name: str = attrs["name"]
        self.contig: str = attrs["contig"]
        self.n_variants: int = int(attrs["n_variants"])
        self.dataset_hash: str = attrs["dataset_hash"]
        self.qc_report: dict = json.loads(attrs["qc_report"])
        self.settings: dict = json.loads(attrs["settings"])
        self.inputs: dict = json.loads(attrs["inputs"])
        self._samples: dict[str, np.ndarray] | None = None
        self._variants: dict[str, np.ndarray] | None = None

    @classmethod
    def open(cls, path: str | os.PathLike, name: str | None = None) -> "DatasetStore":
        """Open a store; ``ImpbenchError`` naming the file when it is missing or not a store,
        and (for a damaged one) how to rebuild it. name : the dataset's name, for that hint."""
        import h5py

        path = Path(path)
        if not path.is_file():
            raise ImpbenchError(f"{path}: dataset store not found")
        try:
            with h5py.File(path, "r") as handle:
                attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}
        except OSError as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ImpbenchError(f"{path}: not a readable HDF5 dataset store ({reason}); {rebuild_hint(name)}") from None
        missing = {"format", "name", "contig", "n_variants", "dataset_hash", "qc_report", "settings", "inputs"} - set(attrs)
        if missing:
            raise ImpbenchError(
                f"{path}: not an impbench dataset store (missing {', '.join(sorted(missing))}); {rebuild_hint(name)}"
            )
        if int(attrs["format"]) != STORE_FORMAT:
            raise ImpbenchError(f"{path}: store format {attrs['format']} is not {STORE_FORMAT}; {rebuild_hint(name)}")
        try:
            return cls(path, attrs)
        except (ValueError, TypeError) as error:  # attributes that are not what a store writes
            raise ImpbenchError(f"{path}: corrupt dataset store ({error}); {rebuild_hint(name)}") from None

    def __repr__(self) -> str:
        return f"DatasetStore({str(self.path)!r}, name={self.name!r}, n_variants={self.n_variants}, hash={self.dataset_hash[:12]})"

    @contextlib.contextmanager
    def _reading(self) -> Iterator:
        """The open HDF5 file; a damaged store's errors become one ``ImpbenchError`` line."""
        import h5py

        try:
            with h5py.File(self.path, "r") as handle:
                yield handle
        except (OSError, KeyError, ValueError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ImpbenchError(f"{self.path}: corrupt dataset store ({reason}); {rebuild_hint(self.name)}") from None

    def _read_group(self, group: str) -> dict[str, np.ndarray]:
        import h5py

        with self._reading() as handle:
            out = {}
            for key, dataset in handle[group].items():
                if h5py.check_string_dtype(dataset.dtype) is not None:
                    out[key] = np.asarray(dataset.asstr()[()], dtype=object)
                else:
                    out[key] = dataset[()]
            return out

    def samples(self) -> dict[str, np.ndarray]:
        """sample_ids, cohort, sex, split: object arrays (n_samples,) of every kept sample."""
        if self._samples is None:
            self._samples = self._read_group("samples")
        return {k: v.copy() for k, v in self._samples.items()}

    def variants(self) -> dict[str, np.ndarray]:
        """positions int64, ref, alt, variant_ids object arrays (n_variants,)."""
        if self._variants is None:
            self._variants = self._read_group("variants")
        return dict(self._variants)

    def cohorts(self) -> list[str]:
        """The cohort labels present, sorted."""
        return sorted(set(map(str, self.samples()["cohort"])))

    def split_sizes(self) -> dict[str, int]:
        split = self.samples()["split"]
        return {s: int((split == s).sum()) for s in SPLITS}

    def read_split(self, split: str, cohort: str | None = None) -> GenotypeMatrix:
        """The genotypes of one split (optionally only one cohort's members of it).

        Reads that split's codes dataset only. Raises ``ImpbenchError`` listing the valid
        names for an unknown split or cohort.
        """
        if split not in SPLITS:
            raise ImpbenchError(f"{self.path}: unknown split {split!r}; valid: {', '.join(SPLITS)}")
        samples = self.samples()
        if cohort is not None and cohort not in set(samples["cohort"]):
            raise ImpbenchError(f"{self.path}: unknown cohort {cohort!r}; valid: {', '.join(self.cohorts())}")
        with self._reading() as handle:
            group = handle["splits"][split]
            rows = group["sample_index"][()]
            codes = group["codes"][()]
        if cohort is not None:
            keep = samples["cohort"][rows] == cohort
            rows = rows[keep]
            codes = codes[keep]
        variants = self.variants()
        return GenotypeMatrix(
            codes=codes,
            positions=variants["positions"],
            contig=self.contig,
            ref=variants["ref"],
            alt=variants["alt"],
            variant_ids=variants["variant_ids"],
            sample_ids=samples["sample_ids"][rows],
            cohort=samples["cohort"][rows],
            sex=samples["sex"][rows],
        )
