"""Units as independent work: the keys of fits and unit results, work items and their folders.

A **fit** is keyed by (imputer, options, dataset hash, training cohort), plus what else reaches
``fit`` and can change its result (seed, scheme, typed sites, segment layout): ``fit_key``. Its
artifact lives in ``models/<imputer>/fit/<key>/``: the imputer's work folder during the fit,
then ``imputer.pkl`` (the fitted imputer, pickled and signed: ``impbench.bench.exec.trust``) and ``fit.json`` (its outcome). A finished
fit is reused by every unit and by a rerun with the same key.

A **unit** result is keyed by (imputer, level, replicate, scheme, mask hash): ``unit_key``. Each
attempt at a unit runs in its own folder ``models/<imputer>/attempts/<unit>-<n>/`` (``n``
counts attempts, claimed by an atomic ``mkdir``): spec, worker log, progress, outcome, and the
imputer's work folder for that call. Stale or concurrent attempts never share a folder.

``WorkItem`` is what an executor runs: one fit or one unit, with the JSON spec a worker reads
(``python -m impbench.bench.exec.worker SPEC.json``), the item it depends on, whether it holds a
GPU, and its time limit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from impbench.bench.exec import trust
from impbench.files import to_jsonable, write_json
from impbench.imputers.base import options_to_json

#: Version of the worker spec format.
SPEC_FORMAT = 1
FIT_PICKLE = "imputer.pkl"
FIT_RESULT = "fit.json"
SPEC_NAME = "spec.json"
RESULT_NAME = "result.json"
LOG_NAME = "worker.log"
PROGRESS_NAME = "progress.json"


def _digest(payload: Any) -> str:
    text = json.dumps(to_jsonable(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fit_key(imputer: str, options: Any, dataset_hash: str, training_cohort: str | None, **context: Any) -> str:
    """16 hex digits naming a fit: (imputer, options, dataset hash, training cohort) and the
    other fit inputs given as ``context`` (seed, scheme, typed sites, segment layout)."""
    opts = options_to_json(options) if dataclasses.is_dataclass(options) else options
    return _digest({"imputer": imputer, "options": opts, "dataset_hash": dataset_hash,
                    "training_cohort": training_cohort, **context})


def unit_key(imputer: str, level: float, replicate: int, scheme: str, mask_sha256: str) -> str:
    """16 hex digits naming a unit result: (imputer, level, replicate, scheme, mask hash)."""
    return _digest({"imputer": imputer, "level": float(level), "replicate": int(replicate), "scheme": scheme,
                    "mask_sha256": mask_sha256})


def fit_dir(run_dir: Path, imputer: str, key: str) -> Path:
    return Path(run_dir) / "models" / imputer / "fit" / key


def fit_done(run_dir: Path, imputer: str, key: str, warn: Callable[[str], None] | None = None) -> dict | None:
    """The outcome of a finished, successful fit (``fit.json``) whose pickle this user signed,
    else None (the fit is then recomputed). A pickle whose tag is missing or wrong (another
    user's folder, or an altered file) is never unpickled: ``warn`` gets one line saying so."""
    folder = fit_dir(run_dir, imputer, key)
    try:
        result = json.loads((folder / FIT_RESULT).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or result.get("status") != "ok" or not (folder / FIT_PICKLE).is_file():
        return None
    why = trust.verify(folder / FIT_PICKLE, trust.FIT)
    if why is not None:
        (warn or _log_warning)(f"warning: {imputer}: not reusing its fit {key}, not trusted: {why}; fitting again")
        return None
    return result


def _log_warning(message: str) -> None:
    import logging

    logging.getLogger("impbench").warning(message)


def new_attempt_dir(parent: Path, stem: str) -> Path:
    """``parent/<stem>-<n>``, the first ``n`` (from 1) whose folder this call could create."""
    parent.mkdir(parents=True, exist_ok=True)
    existing = [p.name for p in parent.glob(f"{stem}-*")]
    n = 1 + max((int(name.rsplit("-", 1)[1]) for name in existing if name.rsplit("-", 1)[1].isdigit()), default=0)
    while True:
        path = parent / f"{stem}-{n}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


@dataclass
class WorkItem:
    """One fit or one unit for an executor.

    label : ``knn fit`` or ``knn L0.05 r1`` (progress, messages).
    spec : the worker's JSON spec (without the paths of the attempt, which the executor adds).
    depends_on : the label of the item that must succeed first (a unit's fit), or None.
    attempts_parent, attempt_stem : where the attempt folder is claimed (``new_attempt_dir``).
    gpu : holds one GPU while it runs. time_limit : seconds, or None.
    """

    kind: str
    imputer: str
    label: str
    spec: dict[str, Any]
    attempts_parent: Path
    attempt_stem: str
    depends_on: str | None = None
    gpu: bool = False
    time_limit: float | None = None
    level: float | None = None
    replicate: int | None = None
    attempt_dir: Path | None = field(default=None, repr=False)

    def claim_attempt(self) -> Path:
        """Create this attempt's folder and write its spec there; returns the spec's path."""
        self.attempt_dir = new_attempt_dir(self.attempts_parent, self.attempt_stem)
        spec = dict(self.spec, attempt_dir=str(self.attempt_dir))
        return write_json(self.attempt_dir / SPEC_NAME, spec)


@dataclass
class Outcome:
    """How an attempt ended.

    status : ``ok``, ``failed`` (the plugin raised, exited or answered badly), ``timed_out``,
        ``crashed`` (the worker died without a result: a signal, ``os._exit``, an OOM kill),
        ``not_applicable``, ``skipped`` (its fit did not succeed) or ``interrupted``.
    error : one line (None when ok). signal : the signal's name when the worker died of one.
    exit_code : the worker's exit status when it exited. log_tail : the last lines of its log.
    result : the worker's ``result.json`` (timings, info), or {}.
    """

    status: str
    error: str | None = None
    signal: str | None = None
    exit_code: int | None = None
    log_tail: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    attempt_dir: Path | None = None

    def record(self) -> dict[str, Any]:
        """The manifest's record of an attempt that did not succeed."""
        return {"status": self.status, "error": self.error, "signal": self.signal, "exit_code": self.exit_code,
                "log_tail": self.log_tail, "attempt": None if self.attempt_dir is None else str(self.attempt_dir)}


def log_tail(path: Path, n_lines: int = 15, max_chars: int = 2000) -> str | None:
    """The last ``n_lines`` non-empty lines of a log file (at most ``max_chars``), or None."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    tail = "\n".join(lines[-n_lines:])
    return tail[-max_chars:] if tail else None
