"""The imputer contract: ``Imputer``, ``Imputation`` and ``RunContext``.

A plugin subclasses ``Imputer``; the harness calls ``fit`` once on the training split and
``impute`` once per masked replicate. Everything a plugin needs from the harness comes in
through ``RunContext``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from impbench.errors import ImpbenchError, ImputerError
from impbench.files import to_jsonable
from impbench.genotypes import GenotypeMatrix
from impbench.imputers.segments import SegmentLayout
from impbench.progress import ProgressFn, no_progress



@dataclass
class RunContext:
    """What the harness gives an imputer.

    work_dir : a folder the imputer may write to (checkpoints, logs, temporary files); it
        exists and persists across ``fit`` and ``impute`` of one run.
    device : "auto", "cpu", "cuda", "cuda:1", ... as asked for; a torch imputer resolves
        "auto" itself (``impbench.nn.resolve_device``), so the harness never imports torch.
    threads : CPU threads the imputer may use.
    seed : the run's seed; an imputer is deterministic given it (on CPU).
    nproc : processes to train with (``torchrun``); 1 means in-process.
    progress : progress callback, see ``ProgressFn``.
    logger : where to write messages.
    dataset : the dataset card's name; ``dataset_hash`` its content hash (for checkpoints).
    card_options : the card's per-imputer defaults for this imputer (e.g. a Beagle panel).
    segment_layout : the card's segment length and overlap (``SegmentLayout``), or None.
    scheme : the masking scheme of the run ("uniform", "per-variant", "array"). An imputer that
        cannot work in it raises ``impbench.errors.ImputerNotApplicable``.
    typed : bool (n_variants,) or None; under "array", the typed variants (observed in every
        target sample; all others are hidden in every target sample).
    genetic_map : the card's genetic map (PLINK or gmap format), or None.
    """

    work_dir: Path
    device: str = "cpu"
    threads: int = 1
    seed: int = 0
    nproc: int = 1
    progress: ProgressFn = no_progress
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("impbench"))
    dataset: str = ""
    dataset_hash: str = ""
    card_options: Mapping[str, Any] = field(default_factory=dict)
    segment_layout: SegmentLayout | None = None
    scheme: str = "uniform"
    typed: np.ndarray | None = None
    genetic_map: Path | None = None

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)


#: Probabilities closer than this are tied in ``Imputation.from_probs`` (float32 rounding).
PROBABILITY_TIE = 1e-6
#: Cells (samples x variants) that ``Imputation.from_probs`` converts at once.
FROM_PROBS_BLOCK_CELLS = 1 << 18


@dataclass
class Imputation:
    """An imputer's answer for a target matrix of shape (n_samples, n_variants).

    calls : uint8, shape (n_samples, n_variants), codes 1-4 everywhere (observed cells
        included, equal to the observed code).
    dosage : float32, shape (n_samples, n_variants), expected ALT dosage in [0, 2].
    probs : float32, shape (n_samples, n_variants, 4) or None; probabilities over the four
        phased codes (1, 2, 3, 4), each row summing to 1.
    covered : bool, shape (n_variants,); False where the imputer could not place the variant
        (its calls there are then not scored under the ``standard`` protocol).
    quality : float32, shape (n_variants,) or None; the imputer's own per-variant estimate of
        its dosage r² (Beagle's DR2, Minimac4's R2); NaN where it gave none.
    raw_calls : uint8, shape (n_samples, n_variants) or None; a tool's own calls at every cell
        before observed codes were restored (Beagle re-phases observed heterozygotes). The
        ``paper`` protocol scores these, as the published evaluation scored raw output;
        ``standard`` scores ``calls``. None: the same as ``calls``.
    """

    calls: np.ndarray
    dosage: np.ndarray
    probs: np.ndarray | None = None
    covered: np.ndarray | None = None
    quality: np.ndarray | None = None
    raw_calls: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.covered is None:
            self.covered = np.ones(np.shape(self.calls)[1], dtype=bool)

    @classmethod
    def from_probs(
        cls,
        probs: np.ndarray,
        target_codes: np.ndarray,
        covered: np.ndarray | None = None,
        *,
        overwrite: bool = False,
        block_cells: int | None = None,
    ) -> "Imputation":
        """The one conversion of probabilities into an answer (baselines, ``impbench.nn``, plugins).

        probs : float (n_samples, n_variants, 4) over the phased codes 1, 2, 3, 4; read only at
            cells where ``target_codes`` is missing (not a code 1-4). Any array-like, a
            broadcast view included (``major`` passes one row of probabilities per variant).
        target_codes : uint8 (n_samples, n_variants), the imputer's input (0 where masked).
        covered : bool (n_variants,) or None (every variant covered).
        overwrite : the caller gives ``probs`` away: when it is a writeable float32 array, it
            becomes the answer's ``probs`` (one-hot written into its observed cells) instead of
            being copied, which saves 16 bytes a cell. Otherwise a float32 copy is made.
        block_cells : cells converted at once (default ``FROM_PROBS_BLOCK_CELLS``); the
            temporaries hold ~40 bytes a cell of one block (~10 MB), so the peak memory is the answer's
            arrays (calls, dosage and probs: 21 bytes a cell, 5 with ``overwrite``) plus a
            constant, whatever the size of the target.

        Call: the dosage class with the highest total probability (0|0; 0|1 + 1|0 summed;
        1|1), ties to the lower class; for a het, the more probable phase (tie: 0|1).
        Probabilities within ``PROBABILITY_TIE`` count as tied. So
        probabilities (0.4, 0.3, 0.3, 0) give a het, where an argmax over the four codes would
        give 0|0. Observed cells (codes 1-4) keep their code and get one-hot probabilities.
        The dosage is ``probs @ (0, 1, 1, 2)`` summed as ``(p0 * 0 + p1) + (p2 + 2 p3)`` in
        float32 (the order of a whole-array BLAS product), clipped to [0, 2]. Block by block, the
        result is the same, bit for bit, as converting the whole array at once
        (``impbench.testing.reference_imputation``).
        """
        target_codes = np.asarray(target_codes)
        probs = np.asarray(probs)
        if probs.shape != target_codes.shape + (4,):
            raise ValueError(f"probs shape {probs.shape} != target shape {target_codes.shape} + (4,)")
        in_place = overwrite and probs.dtype == np.float32 and probs.flags.writeable
        out_probs = probs if in_place else np.empty(probs.shape, dtype=np.float32)
        calls = np.empty(target_codes.shape, dtype=np.uint8)
        dosage = np.empty(target_codes.shape, dtype=np.float32)
        for rows, cols in cell_blocks(target_codes.shape, block_cells or FROM_PROBS_BLOCK_CELLS):
            block = out_probs[rows, cols]  # a view: (block_rows, block_cols, 4)
            if not in_place:
                block[...] = probs[rows, cols]
            _convert_block(block, target_codes[rows, cols], calls[rows, cols], dosage[rows, cols])
        return cls(calls=calls, dosage=dosage, probs=out_probs, covered=covered)


def cell_blocks(shape: tuple[int, int], block_cells: int):
    """(row slice, column slice) tiles of an (n_rows, n_columns) array of about ``block_cells``
    cells each, in C order: whole rows when a row fits, otherwise pieces of one row."""
    n_rows, n_columns = shape
    if n_rows == 0 or n_columns == 0:
        return
    rows_per_block = max(1, block_cells // n_columns)
    columns_per_block = n_columns if rows_per_block > 1 else min(n_columns, max(1, block_cells))
    for row0 in range(0, n_rows, rows_per_block):
        rows = slice(row0, min(n_rows, row0 + rows_per_block))
        for column0 in range(0, n_columns, columns_per_block):
            yield rows, slice(column0, min(n_columns, column0 + columns_per_block))


def _convert_block(probs: np.ndarray, codes: np.ndarray, calls: np.ndarray, dosage: np.ndarray) -> None:
    """``Imputation.from_probs`` on one tile, in place: probs float32 (r, c, 4) (observed cells
    set one-hot), codes uint8 (r, c); calls uint8 (r, c) and dosage float32 (r, c) written."""
    from impbench.genotypes import HET_01, HET_10, HOM_ALT, HOM_REF, is_call

    observed = is_call(codes)
    if observed.any():
        probs[observed] = _CODE_ONE_HOT[codes[observed]]
    class_probs = np.stack([probs[..., 0], probs[..., 1] + probs[..., 2], probs[..., 3]], axis=-1)
    # the first class within PROBABILITY_TIE of the best: ties (up to float32 rounding of
    # sums such as 1/5 + 2/5 vs 3/5) go to the lower class
    best = class_probs.max(axis=-1, keepdims=True)
    dosage_class = np.argmax(class_probs >= best - PROBABILITY_TIE, axis=-1)
    del class_probs, best
    het_code = np.where(probs[..., 2] > probs[..., 1] + PROBABILITY_TIE, np.uint8(HET_10), np.uint8(HET_01))
    calls[...] = np.choose(dosage_class, [np.uint8(HOM_REF), het_code, np.uint8(HOM_ALT)])
    np.copyto(calls, codes, where=observed, casting="unsafe")
    # probs @ (0, 1, 1, 2), summed in a fixed order, (p0 * 0 + p1) + (p2 + 2 p3), so that a cell's
    # dosage does not depend on the block it is in (BLAS's order depends on the array's shape)
    np.multiply(probs[..., 0], np.float32(0), out=dosage)
    dosage += probs[..., 1]
    pair = probs[..., 3] * np.float32(2)
    pair += probs[..., 2]
    dosage += pair
    np.clip(dosage, 0.0, 2.0, out=dosage)


#: float32 (6, 4): the one-hot probabilities of each code (rows 1-4; rows 0 and 5 unused).
_CODE_ONE_HOT = np.vstack([np.zeros(4), np.eye(4), np.zeros(4)]).astype(np.float32)


def check_imputation(name: str, result: object, target: GenotypeMatrix) -> Imputation:
    """Validate a plugin's result against its target; raise ``ImputerError`` naming the plugin."""
    if not isinstance(result, Imputation):
        raise ImputerError(name, f"impute() returned {type(result).__name__}, not an Imputation")
    shape = target.codes.shape
    calls = np.asarray(result.calls)
    if calls.shape != shape:
        raise ImputerError(name, f"calls have shape {calls.shape}, expected {shape}")
    if calls.dtype != np.uint8:
        raise ImputerError(name, f"calls have dtype {calls.dtype}, expected uint8")
    if calls.size and (calls.min() < 1 or calls.max() > 4):
        raise ImputerError(name, f"calls hold codes outside 1-4 (min {calls.min()}, max {calls.max()})")
    dosage = np.asarray(result.dosage)
    if dosage.shape != shape:
        raise ImputerError(name, f"dosage has shape {dosage.shape}, expected {shape}")
    if dosage.size and (not np.isfinite(dosage).all() or dosage.min() < -1e-4 or dosage.max() > 2 + 1e-4):
        raise ImputerError(name, "dosage holds values outside [0, 2] or non-finite values")
    if result.probs is not None:
        probs = np.asarray(result.probs)
        if probs.shape != shape + (4,):
            raise ImputerError(name, f"probs have shape {probs.shape}, expected {shape + (4,)}")
        if probs.size and not np.isfinite(probs).all():
            raise ImputerError(name, "probs hold NaN or infinite values")
    if result.raw_calls is not None:
        raw = np.asarray(result.raw_calls)
        if raw.shape != shape or (raw.size and (raw.min() < 1 or raw.max() > 4)):
            raise ImputerError(name, f"raw_calls must be codes 1-4 of shape {shape}")
    if result.quality is not None and np.shape(result.quality) != (shape[1],):
        raise ImputerError(name, f"quality must have shape ({shape[1]},), got {np.shape(result.quality)}")
    covered = np.asarray(result.covered)
    if covered.shape != (shape[1],) or covered.dtype != bool:
        raise ImputerError(name, f"covered must be bool of shape ({shape[1]},), got {covered.dtype} {covered.shape}")
    return result


@dataclass
class NoOptions:
    """An imputer without settings."""


class Imputer(ABC):
    """Base class of every imputer plugin.

    Subclasses set ``name``, ``reference_free`` and ``Options`` (a dataclass whose fields have
    defaults), and implement ``fit`` and ``impute``. ``impute`` must keep every observed
    (non-zero) code of the target unchanged in ``calls``.
    """

    name: ClassVar[str]
    reference_free: ClassVar[bool] = True
    Options: ClassVar[type] = NoOptions
    #: One line shown by ``impbench plugins``.
    description: ClassVar[str] = ""
    #: Whether its work should hold a GPU when the run has one (``--device auto|cuda``).
    uses_gpu: ClassVar[bool] = False

    def __init__(self, options: Any = None):
        self.options = options if options is not None else self.Options()

    def manifest_info(self) -> dict:
        """Extra facts for the run manifest (tool version, mode that ran, ...); JSON-able."""
        return {}

    @abstractmethod
    def fit(self, panel: GenotypeMatrix, val: GenotypeMatrix | None, ctx: RunContext) -> None:
        """Learn from (or store) the panel: the training split, fully observed."""

    @abstractmethod
    def impute(self, target: GenotypeMatrix, ctx: RunContext) -> Imputation:
        """Fill the cells of ``target.codes`` equal to 0 (missing)."""


_SIMPLE_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _resolve_annotation(annotation: Any) -> tuple[Any, bool]:
    """(the field's type without ``None``, whether None is allowed)."""
    if isinstance(annotation, str):
        parts = [p.strip() for p in annotation.split("|")]
        optional = "None" in parts
        parts = [p for p in parts if p != "None"]
        return (_SIMPLE_TYPES.get(parts[0], str) if parts else str), optional
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return (args[0] if args else str), len(args) < len(typing.get_args(annotation))
    return annotation, False


def _kind(value: Any) -> str:
    """How a value reads in a message: TOML's words, never ``np.float64(...)``."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (int, float)):
        return f"the number {value!r}" if not hasattr(value, "item") else f"the number {value.item()!r}"
    return repr(value)


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert a CLI string or a TOML value to the type of an options field: ``int`` takes
    integers only (not 2.5, not true), ``float`` finite numbers (not inf or nan, not true),
    ``bool`` true/false (strings: 1/0, yes/no, on/off), ``str`` text (or an integer, as text);
    an optional field also takes "none"/"null"/"" from the command line. ``ImpbenchError``
    naming the option otherwise."""
    annotation, optional = _resolve_annotation(annotation)
    if optional and (value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", ""))):
        return None
    if annotation not in (int, float, bool, str):
        return value
    if isinstance(value, str):
        text = value.strip()
        if annotation is str:
            return value
        if annotation is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ImpbenchError(f"option {key}: cannot read {value!r} as a boolean (true or false)")
        try:
            number = int(text) if annotation is int else float(text)
        except ValueError:
            what = "an integer" if annotation is int else "a number"
            raise ImpbenchError(f"option {key}: cannot read {value!r} as {what}") from None
        value = number
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ImpbenchError(f"option {key}: must be true or false, not {_kind(value)}")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        wanted = {int: "an integer", float: "a number", str: "text"}[annotation]
        raise ImpbenchError(f"option {key}: must be {wanted}, not {_kind(value)}")
    if annotation is str:
        if isinstance(value, float):
            raise ImpbenchError(f"option {key}: must be text, not {_kind(value)}")
        return str(value)
    if annotation is int:
        if isinstance(value, float) or not isinstance(value, int):
            raise ImpbenchError(f"option {key}: must be an integer, not {_kind(value)}")
        return int(value)
    number = float(value)
    if not math.isfinite(number):
        raise ImpbenchError(f"option {key}: must be a finite number, not {_kind(value)}")
    return number


def make_options(options_cls: type, values: Mapping[str, Any], imputer: str = "") -> Any:
    """Build an options dataclass from a mapping of (possibly string) values.

    Unknown keys raise ``ImpbenchError`` naming the valid ones. A ``preset`` key, when the
    options class has a classmethod ``from_preset(name)``, selects the base before the other
    values apply. When the options class defines ``check(self)``, it is called on the result:
    it raises ``ImpbenchError`` (one line naming the option) for an impossible value, so a bad
    option fails when the run is planned, before any dataset is prepared.
    """
    if not dataclasses.is_dataclass(options_cls):
        raise TypeError(f"{options_cls!r} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ImpbenchError(
            f"unknown option(s) {', '.join(unknown)} for imputer {imputer or options_cls.__name__}; "
            f"valid: {', '.join(sorted(fields)) or '(none)'}"
        )
    hints = typing.get_type_hints(options_cls)
    converted = {k: _coerce(v, hints.get(k, str), f"{imputer}.{k}" if imputer else k) for k, v in values.items()}
    preset = converted.pop("preset", None)
    if preset is not None and hasattr(options_cls, "from_preset"):
        options = dataclasses.replace(options_cls.from_preset(preset), **converted)
    else:
        if preset is not None:
            converted["preset"] = preset
        options = options_cls(**converted)
    check = getattr(options, "check", None)
    if callable(check):
        check()
    return options


def options_to_json(options: Any) -> dict[str, Any]:
    """An options dataclass as a JSON object: the one serialisation of options (the manifest,
    the fit key, the worker inputs and every spec that rebuilds an imputer use it)."""
    if not dataclasses.is_dataclass(options) or isinstance(options, type):
        raise TypeError(f"{options!r} is not an options dataclass")
    return to_jsonable(dataclasses.asdict(options))


def options_from_json(options_cls: type, data: Mapping[str, Any], imputer: str = "") -> Any:
    """Options rebuilt from ``options_to_json``'s object: ``make_options`` (every key a field, each
    value of its field's type) and so the class's ``check()``; ``ImpbenchError`` otherwise."""
    if not isinstance(data, Mapping):
        raise ImpbenchError(f"options of imputer {imputer or options_cls.__name__}: expected an object, got {data!r}")
    return make_options(options_cls, dict(data), imputer)


#: The metadata key of an options field that names a program (``program_option``).
PROGRAM = "program"


def program_option(default: Any = None, **kwargs: Any) -> Any:
    """A field of an imputer's ``Options`` that names an executable or interpreter (a ``java``,
    a jar, a tool's binary). Such a value may come from the command line (``--opt``),
    ``--options FILE`` or the environment, never from a dataset card: cards are shared like
    data files and describe data, not programs (``card_option_values`` refuses it there)::

        @dataclass
        class MyOptions:
            tool: str | None = program_option()
    """
    metadata = dict(kwargs.pop("metadata", None) or {})
    metadata[PROGRAM] = True
    return field(default=default, metadata=metadata, **kwargs)


def program_options(options_cls: type) -> tuple[str, ...]:
    """The names of the fields of ``options_cls`` declared with ``program_option``."""
    return tuple(f.name for f in dataclasses.fields(options_cls) if f.metadata.get(PROGRAM))


def card_option_values(options_cls: type, table: Mapping[str, Any], imputer: str, card: Any) -> dict[str, Any]:
    """The keys of a card's ``[imputers.<imputer>]`` table that are fields of ``options_cls``
    (the card's option defaults). ``ImpbenchError`` naming the card and the key when one of
    them names a program (``program_option``): a card may not choose what runs."""
    programs = set(program_options(options_cls))
    refused = sorted(k for k in table if k in programs)
    if refused:
        raise ImpbenchError(
            f"{card}: [imputers.{imputer}] {refused[0]} names a program, which a dataset card may not set; "
            f"give it with --opt {imputer}.{refused[0]}=..., --options FILE or the environment"
        )
    fields = {f.name for f in dataclasses.fields(options_cls)}
    return {k: v for k, v in table.items() if k in fields}


def require_same_variants(name: str, reference: GenotypeMatrix, target: GenotypeMatrix) -> None:
    """Raise ``ImputerError`` naming the plugin when ``target``'s variants differ from ``reference``'s.

    An imputer that learned (or stored) a panel calls this at the top of ``impute``.
    """
    if reference.same_variants(target):
        return
    if reference.contig != target.contig:
        why = f"contig {target.contig!r}, the panel's is {reference.contig!r}"
    elif reference.n_variants != target.n_variants:
        why = f"{target.n_variants} variants, the panel has {reference.n_variants}"
    else:
        differ = ~(
            (reference.positions == target.positions)
            & (reference.ref == target.ref)
            & (reference.alt == target.alt)
        )
        first = int(np.flatnonzero(differ)[0])
        why = (
            f"{int(differ.sum())} variants differ from the panel's "
            f"(first at index {first}: {target.contig}:{target.positions[first]} "
            f"vs {reference.contig}:{reference.positions[first]})"
        )
    raise ImputerError(name, f"the target's variants differ from the panel's: {why}")
