"""Checkpoints: atomic writes, safe loading (``weights_only=True``), and the fingerprint that
ties a checkpoint to the options and the data it was trained on.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from impbench.errors import ImpbenchError
from impbench.files import atomic_write

LATEST = "latest.pt"
BEST = "best.pt"
#: Bumped when the checkpoint layout changes; older checkpoints are then refused.
FORMAT_VERSION = 3


def array_digest(*arrays: np.ndarray | None) -> str:
    """A short content hash of arrays (shape, dtype and bytes), e.g. of the training panel."""
    h = hashlib.blake2b(digest_size=16)
    for array in arrays:
        if array is None:
            h.update(b"none")
            continue
        array = np.ascontiguousarray(array)
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(memoryview(array).cast("B"))
    return h.hexdigest()


def fingerprint(imputer: str, options: dict[str, Any], dataset_hash: str, data_digest: str, world_size: int = 1) -> dict[str, Any]:
    """What a checkpoint must match to be reused: the imputer, the options that shape learning
    (``NNOptions.learning_fields`` with the segment layout resolved), the dataset's hash and a
    digest of the exact training and validation data, and the DDP world size (each rank draws
    its own masks, so another world size learns another model)."""
    return {
        "format": FORMAT_VERSION,
        "imputer": imputer,
        "dataset_hash": dataset_hash,
        "data": data_digest,
        "options": dict(options),
        "world_size": int(world_size),
    }


def mismatches(saved: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Human-readable differences between two fingerprints ("option epochs: 10 in the
    checkpoint, 20 now"); empty when they match."""
    out = []
    for key in ("format", "imputer", "dataset_hash", "data", "world_size"):
        if saved.get(key) != expected.get(key):
            label = {"data": "training data digest", "dataset_hash": "dataset hash", "format": "checkpoint format", "world_size": "DDP world size"}.get(key, key)
            out.append(f"{label}: {saved.get(key)!r} in the checkpoint, {expected.get(key)!r} now")
    saved_options = saved.get("options", {})
    expected_options = expected.get("options", {})
    for key in sorted(set(saved_options) | set(expected_options)):
        if saved_options.get(key, "(absent)") != expected_options.get(key, "(absent)"):
            out.append(f"option {key}: {saved_options.get(key, '(absent)')!r} in the checkpoint, {expected_options.get(key, '(absent)')!r} now")
    return out


def check(path: Path, saved: dict[str, Any], expected: dict[str, Any], imputer: str) -> None:
    """Raise ``ImpbenchError`` naming every mismatch between a checkpoint and this run."""
    diffs = mismatches(saved, expected)
    if diffs:
        raise ImpbenchError(
            f"checkpoint {path} was trained under other settings or data ({'; '.join(diffs)}); "
            f"delete {path.parent} or pass --opt {imputer}.resume=false to train afresh"
        )


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` with ``torch.save`` atomically (``impbench.files.atomic_write``)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(path, buffer.getvalue())


def load(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain containers only).

    Raises ``ImpbenchError`` naming the file when it cannot be read.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise ImpbenchError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # corrupt file, foreign pickle, ...
        raise ImpbenchError(f"checkpoint {path} cannot be read safely: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(payload, dict) or "fingerprint" not in payload:
        raise ImpbenchError(f"checkpoint {path} is not an impbench checkpoint (no fingerprint)")
    return payload
