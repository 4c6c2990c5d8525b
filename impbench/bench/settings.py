"""What ``impbench run`` was asked to do: ``RunSettings``, their parsing and validation, and
the plan (imputers with their options) that the runner carries out.

``plan_run`` validates everything that can be checked without data (levels, scheme, device
syntax, imputer names, options) once, before any slow work, and returns a ``RunPlan``.

Option layers, lowest first: the dataset card's per-imputer table (only keys that are fields
of the imputer's ``Options``), ``--options FILE.toml``, ``--opt NAME.KEY=VALUE``; every key of
the card's table also reaches the imputer as ``RunContext.card_options``.
"""

from __future__ import annotations

import os
import re
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from impbench.bench.exec.gpus import gpu_driver_present
from impbench.bench.masking import SCHEMES
from impbench.errors import ImpbenchError
from impbench.imputers.base import Imputer, card_option_values, make_options, options_from_json, options_to_json
from impbench.imputers.registry import get_imputer, get_imputers
from impbench.imputers.segments import SegmentLayout

DEFAULT_LEVELS = (0.05, 0.15, 0.25)
DEFAULT_REPLICATES = 3
PROTOCOL_CHOICES = ("standard", "paper", "both")
#: ``--executor`` choices (``impbench.bench.exec.executor``, ``impbench.bench.exec.slurm_executor``).
EXECUTORS = ("local", "inline", "slurm")
#: Bounds that keep a typo from computing for days: replicates per level, bootstrap resamples.
MAX_REPLICATES = 1000
MAX_BOOTSTRAP = 100_000
#: The largest ``--seed`` / ``--bootstrap-seed`` (numpy's seeds are non-negative; JSON-safe).
MAX_SEED = 2**63 - 1
#: The options file's table of Slurm options (not an imputer's).
SLURM_TABLE = "slurm"


@dataclass
class RunSettings:
    """What ``impbench run`` was asked to do (the CLI flags, parsed).

    imputers : names, or None for every registered imputer.
    options : imputer name -> {key: value} from ``--options``/``--opt`` (values may be strings).
    cards : extra folders of dataset cards (``--cards``).
    executor : ``local`` (worker processes), ``inline`` (in this process, no isolation) or
        ``slurm`` (Slurm jobs). slurm : the ``SlurmOptions`` of ``--slurm``/``[slurm]`` (None: none given).
    jobs : work items run at once (``--jobs``). time_limit : seconds a fit or a unit may take
        (``--time-limit``), or None; time_limits : imputer name -> seconds (``--time-limit-for``).
    levels_explicit : whether ``levels`` were asked for (``--levels`` given); None: when they
        differ from ``DEFAULT_LEVELS``. Under ``--scheme array`` with typed sites, asked-for
        levels the typed sites override are an error (``impbench.bench.rundata.array_levels``).
    block_length : bp per genomic block of the two-way bootstrap (``--block-length``; 0: samples
        only), or None for ``impbench.scoring.bootstrap.block_length_for``'s default.
    """

    dataset: str
    imputers: Sequence[str] | None = None
    levels: Sequence[float] = DEFAULT_LEVELS
    replicates: int = DEFAULT_REPLICATES
    scheme: str = "uniform"
    protocol: str = "standard"
    out: Path = Path("results")
    run_name: str | None = None
    device: str = "auto"
    threads: int | None = None
    seed: int = 0
    nproc: int = 1
    train_cohort: str | None = None
    test_cohort: str | None = None
    write_vcf: bool = False
    cards: Sequence[Path] = ()
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    bin_edges: Sequence[float] | None = None
    command: str = ""
    n_boot: int = 1000
    bootstrap_seed: int = 0
    min_variant_cells: int = 5
    maf_classes: Sequence[tuple[str, float, float]] | None = None
    typed_sites: Path | None = None
    typed_density: float | None = None
    panel_cohort: str | None = None
    executor: str = "local"
    jobs: int = 1
    time_limit: float | None = None
    time_limits: Mapping[str, float] = field(default_factory=dict)
    slurm: Any = None
    levels_explicit: bool | None = None
    block_length: int | None = None

    @property
    def training_cohort(self) -> str | None:
        """The cohort the reference panel and the reference-free training set come from."""
        return self.panel_cohort or self.train_cohort

    @property
    def protocols(self) -> tuple[str, ...]:
        return ("standard", "paper") if self.protocol == "both" else (self.protocol,)


def parse_levels(text: str) -> tuple[float, ...]:
    """``"0.05,0.15"`` -> (0.05, 0.15); ``ImpbenchError`` unless every level is in (0, 1)."""
    levels = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            raise ImpbenchError(f"--levels: {item!r} is not a number") from None
        levels.append(value)
    if not levels:
        raise ImpbenchError("--levels: give at least one masking level, e.g. 0.05,0.15,0.25")
    return tuple(levels)


def parse_opt(text: str) -> tuple[str, str, str]:
    """``"biunet.epochs=5"`` -> ("biunet", "epochs", "5")."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)\s*=(.*)", text)
    if not match:
        raise ImpbenchError(f"--opt {text!r}: expected NAME.KEY=VALUE, e.g. knn.k=5")
    return match.group(1), match.group(2), match.group(3).strip()


def read_options_file(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """A TOML file of per-imputer tables (``[biunet]`` ``epochs = 5``) -> {imputer: {key: value}};
    the ``[slurm]`` table is not an imputer's (``read_slurm_table``)."""
    tables = _read_toml_tables(path)
    tables.pop(SLURM_TABLE, None)
    return tables


def read_slurm_table(path: str | os.PathLike) -> dict[str, Any]:
    """The ``[slurm]`` table of an options file ({} when it has none)."""
    return _read_toml_tables(path).get(SLURM_TABLE, {})


def _read_toml_tables(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ImpbenchError(f"{path}: options file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ImpbenchError(f"{path}: not valid TOML ({exc})") from None
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ImpbenchError(f"{path}: {name!r} must be a table [{name}] of options, not a value")
    return {name: dict(table) for name, table in data.items()}


def parse_time_limit_for(texts: Sequence[str]) -> dict[str, float]:
    """``["beagle=600", "knn=5"]`` -> {"beagle": 600.0, "knn": 5.0} (``--time-limit-for``)."""
    limits: dict[str, float] = {}
    for text in texts:
        match = re.fullmatch(r"\s*([A-Za-z0-9_-]+)\s*=\s*([^=\s]+)\s*", text)
        if not match:
            raise ImpbenchError(f"--time-limit-for {text!r}: expected NAME=SECONDS, e.g. beagle=600")
        try:
            limits[match.group(1)] = float(match.group(2))
        except ValueError:
            raise ImpbenchError(f"--time-limit-for {text!r}: {match.group(2)!r} is not a number of seconds") from None
    return limits


def merge_options(*layers: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Later layers override earlier ones, key by key within each imputer."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for name, table in layer.items():
            merged.setdefault(name, {}).update(table)
    return merged


def check_device(device: str) -> str:
    """``ImpbenchError`` unless ``device`` is auto, cpu, cuda or cuda:N; for an explicit CUDA
    device also when this machine plainly has no GPU driver. Torch is never imported here:
    a torch imputer resolves "auto" and checks the GPU itself (``impbench.nn``)."""
    device = device.strip().lower()
    if device in ("auto", "cpu"):
        return device
    if not re.fullmatch(r"cuda(?::\d+)?", device):
        raise ImpbenchError(f"--device {device!r} is unknown; use auto, cpu, cuda or cuda:N")
    if not gpu_driver_present():
        raise ImpbenchError(f"--device {device}: no CUDA GPU is available (no GPU driver on this machine); use --device cpu")
    return device


def validate_settings(settings: RunSettings) -> None:
    """``ImpbenchError`` for a setting that can never work (checked before any work starts)."""
    for level in settings.levels:
        if not (0.0 < level < 1.0):
            raise ImpbenchError(f"--levels: masking level {level:g} is outside (0, 1)")
    if len(set(settings.levels)) != len(settings.levels):
        raise ImpbenchError("--levels: a level is given twice")
    if settings.replicates < 1:
        raise ImpbenchError(f"--replicates must be at least 1, got {settings.replicates}")
    if settings.scheme not in SCHEMES:
        raise ImpbenchError(f"--scheme {settings.scheme!r} is unknown; valid: {', '.join(SCHEMES)}")
    if settings.protocol not in PROTOCOL_CHOICES:
        raise ImpbenchError(f"--protocol {settings.protocol!r} is unknown; valid: {', '.join(PROTOCOL_CHOICES)}")
    if settings.threads is not None and settings.threads < 1:
        raise ImpbenchError(f"--threads must be at least 1, got {settings.threads}")
    if settings.nproc < 1:
        raise ImpbenchError(f"--nproc must be at least 1, got {settings.nproc}")
    check_device(settings.device)
    if settings.executor not in EXECUTORS:
        raise ImpbenchError(f"--executor {settings.executor!r} is unknown; valid: {', '.join(EXECUTORS)}")
    if settings.executor == "slurm":
        from impbench.bench.exec.slurm import slurm_available

        reason = slurm_available()
        if reason is not None:
            raise ImpbenchError(f"--executor slurm: {reason}")
    if settings.jobs < 1:
        raise ImpbenchError(f"--jobs must be at least 1, got {settings.jobs}")
    for flag, value in [("--time-limit", settings.time_limit),
                        *((f"--time-limit-for {name}", v) for name, v in settings.time_limits.items())]:
        if value is not None and not (value > 0 and value < float("inf")):
            raise ImpbenchError(f"{flag}: the time limit must be a positive number of seconds, got {value:g}")
    if settings.block_length is not None and (int(settings.block_length) != settings.block_length
                                              or settings.block_length < 0):
        raise ImpbenchError(f"--block-length must be a whole number of bp >= 0, got {settings.block_length!r}")
    for flag, seed in (("--seed", settings.seed), ("--bootstrap-seed", settings.bootstrap_seed)):
        if not 0 <= seed <= MAX_SEED:
            raise ImpbenchError(f"{flag} must be an integer in [0, 2**63 - 1], got {seed}")
    if settings.n_boot < 1:
        raise ImpbenchError(f"--bootstrap must be at least 1, got {settings.n_boot}")
    if settings.n_boot > MAX_BOOTSTRAP:
        raise ImpbenchError(f"--bootstrap {settings.n_boot}: at most {MAX_BOOTSTRAP:,} resamples")
    if settings.replicates > MAX_REPLICATES:
        raise ImpbenchError(f"--replicates {settings.replicates}: at most {MAX_REPLICATES:,}")
    if settings.maf_classes is not None:  # up front, not after the dataset is prepared
        from impbench.scoring.classes import class_bins
        from impbench.scoring.metrics import DEFAULT_BIN_EDGES

        class_bins(settings.bin_edges if settings.bin_edges is not None else DEFAULT_BIN_EDGES, settings.maf_classes)
    if settings.min_variant_cells < 2:
        raise ImpbenchError(f"--min-variant-cells must be at least 2, got {settings.min_variant_cells}")
    if settings.panel_cohort and settings.train_cohort and settings.panel_cohort != settings.train_cohort:
        raise ImpbenchError(
            f"--panel-cohort {settings.panel_cohort!r} and --train-cohort {settings.train_cohort!r} disagree; "
            "the panel is the training set: give one of them"
        )
    array_flags = [flag for flag, value in (("--typed-sites", settings.typed_sites), ("--typed-density", settings.typed_density))
                   if value is not None]
    if array_flags and settings.scheme != "array":
        raise ImpbenchError(f"{' and '.join(array_flags)} need --scheme array")
    if len(array_flags) == 2:
        raise ImpbenchError("give --typed-sites or --typed-density, not both")
    if settings.typed_density is not None and not 0.0 < settings.typed_density < 1.0:
        raise ImpbenchError(f"--typed-density {settings.typed_density:g}: must be in (0, 1)")
    if settings.run_name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", settings.run_name):
        raise ImpbenchError(f"--run {settings.run_name!r}: use letters, digits, '.', '_' and '-'")


@dataclass
class ImputerPlan:
    """One imputer of the run: its class, options and the units it still has to do."""

    name: str
    cls: type[Imputer]
    options: Any
    card_options: dict[str, Any]
    distribution: str
    version: str


def plan_imputers(settings: RunSettings, card: Any = None) -> list[ImputerPlan]:
    """Resolve imputer names and build their options (card defaults < options file < --opt)."""
    registered = get_imputers()
    names = list(settings.imputers) if settings.imputers else list(registered)
    if not names:
        raise ImpbenchError("no imputer is registered; install a plugin or check IMPBENCH_LOAD_PLUGINS")
    seen = set()
    for name in names:
        if name in seen:
            raise ImpbenchError(f"--imputers: {name!r} is given twice")
        seen.add(name)
        get_imputer(name)  # raises listing the valid names
    unknown = sorted(set(settings.time_limits) - set(names))
    if unknown:
        raise ImpbenchError(f"--time-limit-for names imputer(s) not in this run: {', '.join(unknown)}; "
                            f"the run's imputers: {', '.join(names)}")
    unknown = sorted(set(settings.options) - set(registered))
    if unknown:
        raise ImpbenchError(
            f"options given for unknown imputer(s) {', '.join(unknown)}; available: {', '.join(registered)}"
        )
    card_tables = dict(getattr(card, "imputers", None) or {})
    plans = []
    for name in names:
        info = registered[name]
        card_values = dict(card_tables.get(name, {}) or {})
        values = card_option_values(info.cls.Options, card_values, name, getattr(card, "path", "the dataset card"))
        values.update(settings.options.get(name, {}))
        options = make_options(info.cls.Options, values, name)
        check_options_travel(name, info.cls, options)
        plans.append(ImputerPlan(name, info.cls, options, card_values, info.distribution, info.version))
    return plans


def check_options_travel(name: str, cls: type[Imputer], options: Any) -> None:
    """``ImpbenchError`` unless ``options`` survive their JSON (``options_to_json``, then
    ``options_from_json``, as a worker rebuilds them) unchanged."""
    data = options_to_json(options)
    try:
        rebuilt = options_from_json(cls.Options, data, name)
    except ImpbenchError as exc:
        raise ImpbenchError(f"imputer {name!r}: its options cannot be rebuilt from their JSON ({exc})") from None
    before, after = dataclasses.asdict(options), dataclasses.asdict(rebuilt)
    if before != after or options_to_json(rebuilt) != data:
        differ = sorted(k for k in before if after.get(k) != before[k])
        raise ImpbenchError(f"imputer {name!r}: option(s) {', '.join(differ)} change when rebuilt from JSON "
                            "(values must be JSON numbers, strings, booleans, lists or null)")


@dataclass
class RunPlan:
    """A validated run: its settings, the imputers with their options, the segment layout of
    the card, and where the run folder is."""

    settings: RunSettings
    imputers: list[ImputerPlan]
    segment_layout: SegmentLayout | None
    run_dir: Path
    threads: int
    genetic_map: Path | None = None


def plan_run(settings: RunSettings, card: Any = None, dataset_name: str | None = None) -> RunPlan:
    """Validate ``settings`` and plan the run (imputers, options, run folder) once."""
    import datetime as _dt

    validate_settings(settings)
    plans = plan_imputers(settings, card)
    layout = None
    if card is not None and getattr(card, "segment_length", None) is not None:
        layout = SegmentLayout(int(card.segment_length), int(card.segment_overlap))
    genetic_map = card.resolve(card.map) if card is not None and hasattr(card, "resolve") else None
    if (settings.scheme == "array" and settings.typed_sites is None and settings.typed_density is None
            and card is not None and getattr(card, "typed_sites", None)):
        settings = dataclasses.replace(settings, typed_sites=card.resolve(card.typed_sites))
    if settings.typed_sites is not None and not Path(settings.typed_sites).is_file():
        raise ImpbenchError(f"--typed-sites {settings.typed_sites}: file not found")
    run_name = settings.run_name or _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(settings.out) / str(dataset_name or settings.dataset) / run_name
    return RunPlan(settings, plans, layout, run_dir, worker_threads(settings.threads, settings.jobs), genetic_map)


def worker_threads(threads: int | None, jobs: int, cores: int | None = None) -> int:
    """Threads each worker may use: ``--threads`` (default: all cores) divided so that
    jobs x threads <= cores, at least 1."""
    cores = cores or os.cpu_count() or 1
    share = max(1, cores // max(1, jobs))
    return min(threads, share) if threads else share
