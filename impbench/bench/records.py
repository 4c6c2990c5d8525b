"""The run folder's JSON records, typed: the manifest and what it holds (dataset, settings, masks,
imputers, their fit and units), the done markers (``DoneMarker``) and the worker inputs
(``RunInputs``).

Each record is a dataclass with one ``to_json`` and one ``from_json``. ``from_json`` checks every
field against its annotation (``str``, ``int``, ``float``, ``bool``, ``None`` in a union, a
``Literal`` of allowed values, ``list[...]``, ``dict[str, ...]``, a nested record, ``Any`` for
free JSON) and raises ``ImpbenchError`` with one line naming the file and the field, e.g.
``results/x/manifest.json: field imputers.knn.status: expected one of 'ok', ..., got 'fine'``.
A field missing from the file takes its default (manifests written before a field existed
still load) and is left out again when written back unchanged; a key the record does not know
is kept as it is and written back, so reading and writing a file keeps its shape. Adding a
field to a record is one line: its annotation and default.

The run folder (``impbench.bench.results.RunFolder``) reads and writes these files; the runner
builds them; the report reads them back (``impbench.report.load``). Format: ``docs/results.md``.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from impbench.errors import ImpbenchError

#: Statuses of an imputer in the manifest (``docs/results.md``).
IMPUTER_STATUSES = ("running", "ok", "failed", "partial", "not_applicable", "interrupted")
#: Statuses of one attempt at a fit or a unit (``impbench.bench.units.Outcome``).
ATTEMPT_STATUSES = ("ok", "failed", "timed_out", "crashed", "not_applicable", "skipped", "interrupted")

ImputerStatus = Literal["running", "ok", "failed", "partial", "not_applicable", "interrupted"]
AttemptStatus = Literal["ok", "failed", "timed_out", "crashed", "not_applicable", "skipped", "interrupted"]
Protocol = Literal["standard", "paper"]
Scheme = Literal["uniform", "per-variant", "array"]
Executor = Literal["local", "inline", "slurm"]


class RecordError(ImpbenchError):
    """A field of a record that is missing, of the wrong type or not an allowed value."""


# ---------------------------------------------------------------------------- checking values
def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if origin is list:
        return f"a list of {_describe(typing.get_args(hint)[0])}"
    if origin is dict:
        return f"an object of {_describe(typing.get_args(hint)[1])}"
    if isinstance(hint, type) and issubclass(hint, Record):
        return "an object"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            type(None): "null"}.get(hint, "JSON")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check(value: Any, hint: Any, where: str, name: str) -> Any:
    """``value`` read from JSON as ``hint`` (nested records built), else ``RecordError``."""
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        others = [arg for arg in args if arg is not type(None)]
        nested = len(others) == 1 and (typing.get_origin(others[0]) in (list, dict)
                                       or (isinstance(others[0], type) and issubclass(others[0], Record)))
        if nested:  # ``Record | None``, ``list[...] | None``: the message of the field inside
            return _check(value, others[0], where, name)
        for arg in others:
            try:
                return _check(value, arg, where, name)
            except RecordError:
                pass
    elif origin is Literal:
        if value in typing.get_args(hint) and isinstance(value, str):
            return value
    elif origin is list:
        if isinstance(value, list):
            (item,) = typing.get_args(hint)
            return [_check(v, item, where, f"{name}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            item = typing.get_args(hint)[1]
            return {str(k): _check(v, item, where, f"{name}.{k}") for k, v in value.items()}
    elif isinstance(hint, type) and issubclass(hint, Record):
        if isinstance(value, dict):
            return hint.from_json(value, where, _prefix=f"{name}.")
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint in (str, bool):
        if isinstance(value, hint):
            return value
    else:  # pragma: no cover - a record annotated with a type this module does not read
        raise TypeError(f"records cannot read the annotation {hint!r} of {name}")
    raise RecordError(f"{where}: field {name}: expected {_describe(hint)}, got {_shown(value)}")


def _dump(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


class Record:
    """Base of the typed JSON records (a dataclass subclass; see the module docstring)."""

    @classmethod
    def from_json(cls, data: Any, where: str, *, _prefix: str = "") -> Any:
        """The record held by ``data`` (a dict read from the file ``where``), every field checked."""
        if not isinstance(data, dict):
            raise RecordError(f"{where}: {('field ' + _prefix.rstrip('.')) if _prefix else 'top level'}: "
                              f"expected an object, got {_shown(data)}")
        hints = _hints(cls)
        values = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name in data:
                values[f.name] = _check(data[f.name], hints[f.name], where, _prefix + f.name)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecordError(f"{where}: field {_prefix}{f.name} is missing")
        record = cls(**values)
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        object.__setattr__(record, "_extra", {k: v for k, v in data.items() if k not in known})
        object.__setattr__(record, "_absent", known - set(data))
        return record

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object: its fields in order, then keys it kept from the file."""
        out = {}
        absent = getattr(self, "_absent", ())
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name in absent and value == _default(f):
                continue  # absent from the file it was read from, and still its default
            out[f.name] = _dump(value)
        out.update(getattr(self, "_extra", {}))
        return out


# ---------------------------------------------------------------------------- the manifest's parts
@dataclass(kw_only=True)
class MaskRecord(Record):
    """One shared mask (``impbench.bench.rundata.mask_entry``)."""

    level: float
    replicate: int
    sha256: str
    n_masked: int = 0
    n_typed_variants: int | None = None
    achieved_rate: float | None = None
    carrier_rate: float | None = None
    warning: str | None = None


@dataclass(kw_only=True)
class ImputeRecord(Record):
    """Timings of one finished unit (the worker's ``StageMeter``)."""

    level: float
    replicate: int
    seconds: float | None = None
    peak_mb: float | None = None
    child_peak_mb: float | None = None
    n_covered: int | None = None


@dataclass(kw_only=True)
class FitRecord(Record):
    """The latest attempt at an imputer's fit (``impbench.bench.units.Outcome.record``)."""

    key: str
    status: AttemptStatus
    error: str | None = None
    signal: str | None = None
    exit_code: int | None = None
    log_tail: str | None = None
    attempt: str | None = None


@dataclass(kw_only=True)
class UnitRecord(Record):
    """The latest attempt at one unit (level, replicate) of an imputer."""

    level: float
    replicate: int
    status: AttemptStatus
    error: str | None = None
    signal: str | None = None
    exit_code: int | None = None
    log_tail: str | None = None
    attempt: str | None = None


@dataclass(kw_only=True)
class ImputerRecord(Record):
    """One imputer of the run: where it comes from, its options, status, timings and attempts."""

    distribution: str = ""
    version: str = ""
    reference_free: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    status: ImputerStatus
    error: str | None = None
    fit_seconds: float | None = None
    fit_peak_mb: float | None = None
    fit_child_peak_mb: float | None = None
    impute: list[ImputeRecord] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    units: list[UnitRecord] = field(default_factory=list)
    fit: FitRecord | None = None


@dataclass(kw_only=True)
class DatasetRecord(Record):
    """The dataset the run read (its store and splits)."""

    name: str = ""
    hash: str = ""
    store: str = ""
    contig: str = ""
    n_variants: int = 0
    n_samples: dict[str, int] = field(default_factory=dict)
    train_cohort: str | None = None
    panel_cohort: str | None = None
    test_cohort: str | None = None
    qc: Any = None


@dataclass(kw_only=True)
class BootstrapRecord(Record):
    n: int = 1000
    seed: int = 0
    resamples: str | None = None
    block_length: int | None = None
    n_blocks: int | None = None


@dataclass(kw_only=True)
class SettingsRecord(Record):
    """What the run was asked to do (``impbench.bench.settings.RunSettings``, resolved)."""

    levels: list[float] = field(default_factory=list)
    replicates: int = 0
    scheme: Scheme = "uniform"
    protocols: list[Protocol] = field(default_factory=lambda: ["standard"])
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    executor: Executor = "local"
    jobs: int = 1
    time_limit: float | None = None
    time_limits: dict[str, float] = field(default_factory=dict)
    slurm: dict[str, Any] | None = None
    nproc: int = 1
    write_vcf: bool = False
    bin_edges: list[float] = field(default_factory=list)
    bootstrap: BootstrapRecord = field(default_factory=BootstrapRecord)
    min_variant_cells: int | None = None
    maf_classes: list[list[Any]] = field(default_factory=list)
    typed_sites: str | None = None
    typed_density: float | None = None
    typed: str | None = None
    genetic_map: str | None = None


@dataclass(kw_only=True)
class Manifest(Record):
    """``manifest.json``: versions, dataset, settings, masks and imputers of a run."""

    impbench_version: str = ""
    created: str | None = None
    updated: str | None = None
    command: str = ""
    versions: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] | None = None
    dataset: DatasetRecord = field(default_factory=DatasetRecord)
    maf_source: str | None = None
    cohort_maf: dict[str, Any] = field(default_factory=dict)
    orientation: str | None = None
    settings: SettingsRecord = field(default_factory=SettingsRecord)
    identity: dict[str, Any] | None = None
    masks: list[MaskRecord] = field(default_factory=list)
    imputers: dict[str, ImputerRecord] = field(default_factory=dict)


# ---------------------------------------------------------------------------- done markers
#: Version of the done-marker format.
MARKER_FORMAT = 1


@dataclass(kw_only=True)
class DoneMarker(Record):
    """``done/<imputer>.L<level>.r<replicate>.json``: one finished unit, the record of truth the
    tables are rebuilt from. Its keys (``unit_key``: imputer, level, replicate, scheme, mask hash;
    ``fit_key``), timings, and its rows per table (``impbench.bench.unit.UnitScores.rows``:
    ``replicates``, ``per_sample``, ``confusion``, ``calibration``, ``variant_quality``)."""

    format: int = MARKER_FORMAT
    imputer: str
    mask_sha256: str
    n_masked: int
    fit_key: str
    unit_key: str
    level: float
    replicate: int
    seconds: float | None = None
    peak_mb: float | None = None
    child_peak_mb: float | None = None
    n_covered: int | None = None
    replicates: list[dict[str, Any]] = field(default_factory=list)
    per_sample: list[dict[str, Any]] = field(default_factory=list)
    confusion: list[dict[str, Any]] = field(default_factory=list)
    calibration: list[dict[str, Any]] = field(default_factory=list)
    variant_quality: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------- the worker inputs
#: Version of ``work/inputs.json``.
INPUTS_FORMAT = 1


@dataclass(kw_only=True)
class ImputerInput(Record):
    """An imputer as a worker rebuilds it: its class named (``impbench.imputers.registry.ImputerRef``:
    name, plugin, module, qualified name), never pickled; its options as ``options_to_json``
    wrote them; the card's table for it."""

    name: str
    plugin: str
    module: str
    qualname: str
    options: dict[str, Any] = field(default_factory=dict)
    card_options: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class ScoringInput(Record):
    protocols: list[Protocol]
    bin_edges: list[float]
    min_variant_cells: int
    write_vcf: bool
    command: str
    scheme: Scheme
    block_length: int = 0


@dataclass(kw_only=True)
class ContextInput(Record):
    """What every ``RunContext`` of the run shares (``impbench.imputers.base.RunContext``)."""

    device: str
    seed: int
    nproc: int
    dataset: str
    dataset_hash: str
    scheme: Scheme
    segment_layout: list[int] | None = None
    genetic_map: str | None = None


@dataclass(kw_only=True)
class RunInputs(Record):
    """``work/inputs.json``: what every worker of a run reads besides its spec.

    store : the path of the run's HDF5 store, or None when the store has no file (an in-memory
        store of tests and notebooks), which is then pickled beside (``work/store.pkl``).
    arrays : the npz file beside holding ``alt_freq`` (float64, n_variants) and, under the
        array scheme, ``typed`` (bool, n_variants).
    """

    format: int = INPUTS_FORMAT
    store: str | None = None
    arrays: str = "inputs.npz"
    train_cohort: str | None = None
    test_cohort: str | None = None
    scoring: ScoringInput
    context: ContextInput
    imputers: dict[str, ImputerInput] = field(default_factory=dict)
