"""A card to its prepared store: resolve the source once, one store key, ``prepare(card)``.

The flow: ``source_identity(card)`` says cheaply what the card's data *is* (a simulated card's
normalised spec and simulator versions; a file card's resolved paths, sizes and modification
times), and fails with one line when a file is missing. ``store_path(card, identity)`` hashes
that identity with the ingest settings into the one store key. When no store exists there,
``resolve_source`` materialises the source (simulating into the cache when needed) and
``impbench.data.ingest.ingest`` builds the store.

Layout of the cache (``$IMPBENCH_CACHE``, default ``~/.cache/impbench``):
``sim/<name>-<hash>/`` simulated sources, ``stores/<name>-<hash>.h5`` prepared stores.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from impbench.data.cards import DatasetCard, source_file_problems, mirror_hint, cache_dir, get_card
from impbench.data.ingest import IngestSettings, Source, ingest
from impbench.data.simulate import SIMULATION_VERSION, parse_simulation, simulate_dataset
from impbench.data.store import STORE_FORMAT, DatasetStore, remove_stale_temps, store_lock
from impbench.errors import DiskError, ImpbenchError
from impbench.files import DISK_ERRNOS, file_fingerprint, os_error_line
from impbench.progress import ProgressFn

#: Bump when the store's name must change for unchanged settings (e.g. a new store layout).
STORE_KEY_VERSION = 1


def _digest(value: Any, n: int = 12) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def simulation_key(card: DatasetCard) -> dict:
    """What identifies a simulated card's data: its normalised spec and the simulator versions."""
    return {
        "spec": parse_simulation(card.simulation, str(card.path)),
        "simulation_version": SIMULATION_VERSION,
        "msprime": _package_version("msprime"),
        "stdpopsim": _package_version("stdpopsim"),
    }


def simulation_dir(card: DatasetCard) -> Path:
    """``cache_dir()/sim/<name>-<hash>/``: where a simulated card's VCF and sheet are cached."""
    return cache_dir() / "sim" / f"{card.name}-{_digest(simulation_key(card))}"


def _missing_files_error(card: DatasetCard, long_msgs: list[str]) -> ImpbenchError:
    mirror = f"; install it with: apt-get install {card.package}" if card.package else ""
    mirror += f"; or use its simulated mirror: impbench prepare --dataset {card.mirrors}" if card.mirrors else ""
    return ImpbenchError(f"dataset {card.name!r} ({card.path}) needs " + " and ".join(long_msgs) + mirror)


def _identity_of(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        return file_fingerprint(path)
    except OSError:
        return {"path": str(path.resolve()), "missing": True}


def source_identity(card: DatasetCard, *, strict: bool = True) -> dict:
    """What the card's data is, without reading or simulating it (see the module docstring).

    strict : raise one ``ImpbenchError`` naming what to set (and the simulated mirror) when a
    file card's file is missing; otherwise record it as missing."""
    if card.kind == "simulated":
        return {"simulation": simulation_key(card)}
    long_msgs, _, (vcf, sheet) = source_file_problems(card)
    if long_msgs and strict:
        raise _missing_files_error(card, long_msgs)
    return {"vcf": _identity_of(vcf), "samples": _identity_of(sheet)}


def ingest_settings(card: DatasetCard) -> IngestSettings:
    """The card's ingest settings (QC, split, region, sample-sheet columns)."""
    return IngestSettings(qc=card.qc, split=card.split, region=card.region, columns=dict(card.sample_columns))


def store_key(card: DatasetCard, identity: dict | None = None) -> dict:
    """What a prepared store depends on: the source's identity and the ingest settings."""
    identity = source_identity(card, strict=False) if identity is None else identity
    return {
        "version": STORE_KEY_VERSION,
        "store_format": STORE_FORMAT,
        "source": identity,
        "settings": ingest_settings(card).record(),
    }


def store_path(card: DatasetCard, identity: dict | None = None) -> Path:
    """``cache_dir()/stores/<name>-<hash>.h5``, the hash over ``store_key(card)``."""
    return cache_dir() / "stores" / f"{card.name}-{_digest(store_key(card, identity))}.h5"


def card_status(card: DatasetCard) -> str:
    """"prepared" (its store exists), "ready" (its source is present, or it is simulated), or
    "needs file X (set $VAR) — simulated mirror: sim-x" (the first missing file; "and 1 more
    file" when the sample sheet is missing too)."""
    if card.kind == "file":
        _, short, _ = source_file_problems(card)
        if short:
            more = f" and {len(short) - 1} more file" if len(short) > 1 else ""
            return f"needs {short[0]}{more}{mirror_hint(card)}"
    return "prepared" if store_path(card).exists() else "ready"


def resolve_source(card: DatasetCard, identity: dict | None = None, progress: ProgressFn | None = None) -> Source:
    """The card's data on disk, once: a simulated card is simulated into its cache folder
    (reused when complete); a file card's paths are checked (one ``ImpbenchError`` when a file
    is missing)."""
    identity = source_identity(card) if identity is None else identity
    if card.kind == "simulated":
        vcf, sheet = simulate_dataset(
            parse_simulation(card.simulation, str(card.path)), card.name, simulation_dir(card), progress=progress
        )
        return Source(vcf=vcf, sheet=sheet, identity=identity)
    _, _, (vcf, sheet) = source_file_problems(card)
    assert vcf is not None
    return Source(vcf=vcf, sheet=sheet, identity=identity)


def prepare(
    card_or_name: DatasetCard | str,
    *,
    extra_dirs=None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> DatasetStore:
    """Ingest, QC, split and store a dataset; reuse its store when one exists (unless
    ``force``). ``progress(stage, done, total)`` reports long work.

    The build holds ``store_lock`` on the store: a concurrent prepare of the same store waits
    and reuses what the first built, and the temporary files of a killed prepare are removed
    before building. A store that cannot be opened, and a write that fails (disk full, quota,
    read-only or forbidden folder), are one ``ImpbenchError`` line naming the path; the first
    says how to rebuild the store (``--force``).
    """
    card = get_card(card_or_name, extra_dirs) if isinstance(card_or_name, str) else card_or_name
    identity = source_identity(card)  # a missing file fails here, before anything is built
    out_path = store_path(card, identity)
    if out_path.exists() and not force:
        return DatasetStore.open(out_path, card.name)
    try:
        with store_lock(out_path):
            if out_path.exists() and not force:  # built by a concurrent prepare while we waited
                return DatasetStore.open(out_path, card.name)
            remove_stale_temps(out_path)
            source = resolve_source(card, identity, progress=progress)
            record = {"kind": card.kind, **({"simulation": identity["simulation"]} if card.kind == "simulated" else {})}
            return ingest(source, ingest_settings(card), out_path, card.name, card=record, progress=progress)
    except OSError as error:  # the lock, the simulated source, the cache folders
        kind = DiskError if error.errno in DISK_ERRNOS else ImpbenchError
        raise kind(f"cannot prepare dataset {card.name!r}: {os_error_line(error, out_path)}") from None
