"""What travels from the runner to its workers, without pickling a class.

- ``work/inputs.json``: the typed ``impbench.bench.records.RunInputs`` (each imputer's class by
  reference, ``impbench.imputers.registry.ImputerRef``; its options as ``options_to_json`` wrote
  them, rebuilt and checked by ``options_from_json``; the scoring and context settings; the
  store's path), ``work/inputs.npz`` (``alt_freq``, ``typed``), and ``work/store.pkl`` only for
  a store without a file (``impbench.testing.InMemoryStore``);
- ``imputer.pkl`` of a fit: the fitted imputer's state (``dump_fitted``), its class and options
  class left as references that ``load_fitted`` fills in from the class the reference names.

So a plugin whose classes pickle cannot name (built in a function) runs like any other.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from impbench.bench.exec import trust
from impbench.bench.records import INPUTS_FORMAT, ContextInput, ImputerInput, RunInputs, ScoringInput
from impbench.errors import ImpbenchError
from impbench.files import atomic_write, write_json
from impbench.imputers.base import options_to_json
from impbench.imputers.registry import imputer_ref

_INPUTS_CACHE: dict[tuple[str, int], "WorkerInputs"] = {}

#: The run's inputs for its workers, beside each other under ``<run>/work/``.
INPUTS_NAME = "inputs.json"
ARRAYS_NAME = "inputs.npz"
STORE_PICKLE = "store.pkl"


#: Key prefix of the cohorts' training ALT frequencies in ``inputs.npz``.
COHORT_FREQ_PREFIX = "cohort_alt_freq/"


def inputs_path(run_dir: Path) -> Path:
    return Path(run_dir) / "work" / INPUTS_NAME


def run_inputs(plan: Any, store: Any, bin_edges: Any, block_length: int = 0) -> RunInputs:
    """The ``RunInputs`` of a ``RunPlan`` (``impbench.bench.settings``) on ``store``, with the
    run's resolved MAF bin edges and bootstrap block length (bp); the store's path and the arrays are added by ``write_inputs``."""
    s = plan.settings
    layout, genetic_map = plan.segment_layout, plan.genetic_map
    imputers = {}
    for p in plan.imputers:
        ref = imputer_ref(p.name)
        imputers[p.name] = ImputerInput(name=ref.name, plugin=ref.plugin, module=ref.module, qualname=ref.qualname,
                                        options=options_to_json(p.options), card_options=dict(p.card_options))
    return RunInputs(
        train_cohort=s.training_cohort, test_cohort=s.test_cohort,
        scoring=ScoringInput(protocols=list(s.protocols), bin_edges=[float(e) for e in bin_edges],
                             min_variant_cells=s.min_variant_cells, write_vcf=s.write_vcf, command=s.command,
                             scheme=s.scheme, block_length=int(block_length)),
        context=ContextInput(device=s.device, seed=s.seed, nproc=s.nproc, dataset=str(store.name),
                             dataset_hash=str(store.dataset_hash), scheme=s.scheme,
                             segment_layout=None if layout is None else [layout.length, layout.overlap],
                             genetic_map=None if genetic_map is None else str(genetic_map)),
        imputers=imputers,
    )


def write_inputs(run_dir: Path, inputs: RunInputs, store: Any, alt_freq: np.ndarray, typed: np.ndarray | None,
                 cohort_alt_freq: dict[str, np.ndarray] | None = None) -> Path:
    """Write the run's inputs for its workers (each file atomically): ``inputs.json`` (the typed
    ``RunInputs``: imputer classes by name, options as JSON), ``inputs.npz`` (``alt_freq``,
    ``typed``, and ``cohort_alt_freq/<cohort>`` per cohort) and, for a store without a file
    (``InMemoryStore``), ``store.pkl``."""
    from impbench.data.store import DatasetStore

    folder = inputs_path(run_dir).parent
    buffer = io.BytesIO()
    arrays = {"alt_freq": np.asarray(alt_freq)}  # dtypes kept: the scores must not change
    if typed is not None:
        arrays["typed"] = np.asarray(typed)
    for cohort, freq in (cohort_alt_freq or {}).items():
        arrays[COHORT_FREQ_PREFIX + cohort] = np.asarray(freq)
    np.savez(buffer, **arrays)
    atomic_write(folder / ARRAYS_NAME, buffer.getvalue())
    if isinstance(store, DatasetStore):
        inputs = dataclasses.replace(inputs, store=str(Path(store.path).resolve()), arrays=ARRAYS_NAME)
    else:
        inputs = dataclasses.replace(inputs, store=None, arrays=ARRAYS_NAME)
        atomic_write(folder / STORE_PICKLE, trust.dumps(store, trust.INPUTS))  # signed: never loaded untrusted
    return write_json(inputs_path(run_dir), inputs.to_json())


@dataclass
class WorkerInputs:
    """The run's inputs as a worker holds them: the typed record, the store, the arrays.

    alt_freq : float (n_variants,), as the runner computed it. typed : bool (n_variants,) under the
        array scheme, else None. cohort_alt_freq : cohort -> float (n_variants,) ALT frequency of
        that cohort's training samples (cohort rows bin by it), or None.
    """

    record: RunInputs
    store: Any
    alt_freq: np.ndarray
    typed: np.ndarray | None
    path: Path
    cohort_alt_freq: dict[str, np.ndarray] | None = None

    def imputer(self, name: str) -> Any:
        """A new imputer ``name`` with its options: the class found by its reference (never
        unpickled), the options rebuilt from JSON and checked (``options_from_json``)."""
        from impbench.imputers.base import options_from_json

        cls = self.imputer_class(name)
        return cls(options_from_json(cls.Options, self.record.imputers[name].options, name))

    def imputer_class(self, name: str) -> type:
        """The class of imputer ``name``, found by its reference (``resolve_imputer``)."""
        from impbench.imputers.registry import ImputerRef, resolve_imputer

        entry = self.record.imputers[name]
        return resolve_imputer(ImputerRef(entry.name, entry.plugin, entry.module, entry.qualname))


def load_inputs(path: Path) -> WorkerInputs:
    """The inputs written by ``write_inputs`` (kept for the next unit of this process while the
    file is unchanged); ``ImpbenchError`` naming the file and field of a malformed one."""
    path = Path(path)
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _INPUTS_CACHE:
        _INPUTS_CACHE.clear()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ImpbenchError(f"{path}: cannot read the run's worker inputs ({exc})") from None
        record = RunInputs.from_json(data, str(path))
        if record.format != INPUTS_FORMAT:
            raise ImpbenchError(f"{path}: worker inputs of format {record.format}, this impbench reads {INPUTS_FORMAT}")
        with np.load(path.parent / record.arrays) as arrays:
            alt_freq = arrays["alt_freq"]
            typed = arrays["typed"] if "typed" in arrays.files else None
            cohort_alt_freq = {name[len(COHORT_FREQ_PREFIX):]: arrays[name] for name in arrays.files
                               if name.startswith(COHORT_FREQ_PREFIX)} or None
        if record.store is not None:
            from impbench.data.store import DatasetStore

            store = DatasetStore.open(record.store, name=record.context.dataset)
        else:
            store = trust.load(path.parent / STORE_PICKLE, trust.INPUTS)
        if str(store.dataset_hash) != record.context.dataset_hash:
            raise ImpbenchError(f"{path}: the store's dataset hash {str(store.dataset_hash)[:12]} is not the run's "
                                f"{record.context.dataset_hash[:12]} (the store changed during the run)")
        _INPUTS_CACHE[key] = WorkerInputs(record, store, alt_freq, typed, path, cohort_alt_freq)
    return _INPUTS_CACHE[key]


class _FittedPickler(pickle.Pickler):
    """Pickles a fitted imputer with its class and its options class named, not pickled."""

    def __init__(self, file: Any, cls: type) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.classes = {id(cls): "imputer-class", id(cls.Options): "options-class"}

    def persistent_id(self, obj: Any) -> str | None:
        return self.classes.get(id(obj)) if isinstance(obj, type) else None


class _FittedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, cls: type) -> None:
        super().__init__(file)
        self.classes = {"imputer-class": cls, "options-class": cls.Options}

    def persistent_load(self, pid: Any) -> type:
        if pid not in self.classes:
            raise pickle.UnpicklingError(f"unknown class reference {pid!r}")
        return self.classes[pid]


def dump_fitted(imputer: Any) -> bytes:
    """A fitted imputer's state as bytes for ``imputer.pkl``; its class and options class are
    left as references that ``load_fitted`` fills in (so a class built in a function, which
    pickle cannot name, still travels)."""
    buffer = io.BytesIO()
    _FittedPickler(buffer, type(imputer)).dump(imputer)
    return buffer.getvalue()


def load_fitted(payload: bytes, cls: type) -> Any:
    """The imputer ``dump_fitted`` wrote, with ``cls`` (its class, from its reference)."""
    return _FittedUnpickler(io.BytesIO(payload), cls).load()
