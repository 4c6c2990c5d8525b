"""Dataset cards: what a dataset is, where its data comes from, and how it is prepared.

A card is a TOML file ``<name>.toml`` (format: ``docs/datasets.md``). The built-in cards live
in the repository's ``datasets/`` folder, the single source of truth; an installed wheel
carries the same files as package data (``impbench/cards`` is a link to ``datasets/``). Users
add cards from their own folders through ``$IMPBENCH_DATASETS`` (an ``os.pathsep`` list) or
``--cards DIR``; a card there replaces a built-in card of the same name.

Sources: a *simulated* card (a ``[simulation]`` table) is simulated once and cached under
``cache_dir()/sim/``; a *file* card names a VCF (and sample sheet) through path templates that
may use ``${VAR}``, ``${VAR:-default}`` and ``~``; relative paths are relative to the card's
folder. ``prepare`` ingests the source into an HDF5 store under ``cache_dir()/stores/``, named
by a hash of the settings and the source's identity, so a second call reuses it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from impbench.errors import ImpbenchError
from impbench.data.qc import QCSettings
from impbench.data.simulate import SHEET_COLUMNS, parse_simulation
from impbench.data.split import SplitSettings

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

KINDS = ("simulated", "file")
#: Environment variable: the cache folder (simulations and prepared stores).
CACHE_ENV = "IMPBENCH_CACHE"
#: Environment variable: extra card folders, separated by os.pathsep.
CARDS_ENV = "IMPBENCH_DATASETS"

_TOP_KEYS = {
    "name",
    "description",
    "kind",
    "vcf",
    "samples",
    "region",
    "mirrors",
    "map",
    "typed_sites",
    "package",
    "segment_length",
    "segment_overlap",
    "sample_columns",
    "simulation",
    "qc",
    "split",
    "imputers",
}
_COLUMN_KEYS = ("id", "cohort", "sex")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^${}]*))?\}")
#: What a card's name (its file's stem) must look like: it becomes part of store, cache and run
#: folder names, so no path separators, no leading dot, no whitespace.
CARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: The longest segment a card may ask the neural imputers for (variants).
MAX_SEGMENT_LENGTH = 1 << 20
_REGION = re.compile(r"^[^:\s]+(:[0-9][0-9,]*(-[0-9][0-9,]*)?)?$")


@dataclass(frozen=True)
class DatasetCard:
    """One dataset card, validated.

    name : the file's stem; description : one line for ``impbench datasets``.
    path : the TOML file. kind : "simulated" (``simulation`` set) or "file" (``vcf`` set).
    simulation : the ``[simulation]`` table as written (see ``impbench.data.simulate``).
    vcf, samples : path templates of the VCF and the sample sheet (``${VAR}``,
        ``${VAR:-default}``, ``~``; relative to the card's folder); None when not given.
    sample_columns : {"id", "cohort", "sex"} column names of the sample sheet; empty for the
        1000 Genomes panel format (``sample pop super_pop gender``).
    region : "contig", "contig:start-end" (1-based, inclusive) or None for everything.
    qc, split : the QC and split settings. segment_length, segment_overlap : segmentation
        defaults of the neural imputers. imputers : per-imputer option defaults
        ({"beagle": {"ref": "..."}}). mirrors : for a real card, the simulated card that
        stands in for it. map : path template of a genetic map (PLINK or gmap format) for
        the reference-based imputers. typed_sites : path template of the array scheme's default
        typed sites (a VCF or a contig/position table). package : the Debian package that ships
        the card's files (named in the message when they are missing).
    """

    name: str
    description: str
    path: Path
    kind: str
    simulation: dict = field(default_factory=dict)
    vcf: str | None = None
    samples: str | None = None
    sample_columns: dict = field(default_factory=dict)
    region: str | None = None
    qc: QCSettings = field(default_factory=QCSettings)
    split: SplitSettings = field(default_factory=SplitSettings)
    segment_length: int = 128
    segment_overlap: int = 16
    imputers: dict = field(default_factory=dict)
    mirrors: str | None = None
    map: str | None = None
    typed_sites: str | None = None
    package: str | None = None

    @property
    def folder(self) -> Path:
        return self.path.parent

    def resolve(self, template: str | None) -> Path | None:
        """A path template of this card (``map``, ``typed_sites``) expanded like ``vcf``;
        None when not given or a variable without default is unset."""
        return None if template is None else expand_template(template, self.folder).path


# ---------------------------------------------------------------------------------------------
# Folders
# ---------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$IMPBENCH_CACHE``, or ``~/.cache/impbench``: simulations and prepared stores."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "impbench"


def builtin_card_dir() -> Path:
    """The built-in cards: ``impbench/cards``, which in a source checkout (or an editable
    install) is a link to the repository's ``datasets/`` and in a wheel holds copies of its
    files. Returned resolved, so a card's path names ``datasets/<name>.toml`` in a checkout."""
    package = Path(__file__).resolve().parent.parent
    cards = package / "cards"
    if cards.is_dir():
        return cards.resolve()
    # A checkout whose link was not created (e.g. git with core.symlinks=false).
    return package.parent / "datasets"


def card_dirs(extra: list | tuple | str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for cards, in order (later folders win on a name clash): the built-in
    cards, each folder of ``$IMPBENCH_DATASETS``, then ``extra`` (``--cards``). A folder named
    by the user that does not exist is an error."""
    dirs = [builtin_card_dir()]
    for entry in os.environ.get(CARDS_ENV, "").split(os.pathsep):
        if entry.strip():
            folder = Path(entry).expanduser()
            if not folder.is_dir():
                raise ImpbenchError(f"${CARDS_ENV} names {folder}, which is not a folder")
            dirs.append(folder)
    if extra is not None:
        extras = [extra] if isinstance(extra, (str, os.PathLike)) else list(extra)
        for entry in extras:
            folder = Path(entry).expanduser()
            if not folder.is_dir():
                raise ImpbenchError(f"cards folder {folder} does not exist or is not a folder")
            dirs.append(folder)
    unique: list[Path] = []
    for folder in dirs:
        if folder.resolve() not in [d.resolve() for d in unique]:
            unique.append(folder)
    return unique


# ---------------------------------------------------------------------------------------------
# Parsing and validation
# ---------------------------------------------------------------------------------------------


def _expect(value: Any, kind: type | tuple, key: str, path: Path) -> Any:
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ImpbenchError(f"{path}: {key} must be a number, not {value!r}")
    if not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ImpbenchError(f"{path}: {key} must be {name}, not {value!r}")
    return value


def _settings(cls: type, table: Any, section: str, path: Path):
    """A QCSettings/SplitSettings from a card table, checking names and types."""
    _expect(table, dict, f"[{section}]", path)
    known = {f.name: f for f in fields(cls)}
    defaults = cls()
    values = {}
    for key, value in table.items():
        if key not in known:
            raise ImpbenchError(
                f"{path}: unknown key {section}.{key} (known: {', '.join(known)})"
            )
        default = getattr(defaults, key)
        if isinstance(default, bool):
            _expect(value, bool, f"{section}.{key}", path)
        elif isinstance(default, (int, float)):
            value = _expect(value, (int, float), f"{section}.{key}", path)
            value = type(default)(value) if isinstance(default, float) else value
            if isinstance(default, int) and not isinstance(value, int):
                raise ImpbenchError(f"{path}: {section}.{key} must be an integer, not {value!r}")
        elif isinstance(default, tuple):
            _expect(value, list, f"{section}.{key}", path)
            if len(value) != len(default):
                raise ImpbenchError(
                    f"{path}: {section}.{key} must have {len(default)} values, not {len(value)}"
                )
            value = tuple(float(_expect(v, (int, float), f"{section}.{key}", path)) for v in value)
        values[key] = value
    settings = cls(**values)
    if cls is QCSettings:
        if not 0.0 <= settings.max_sample_missing <= 1.0:
            raise ImpbenchError(f"{path}: qc.max_sample_missing must lie in [0, 1]")
        if not 0.0 <= settings.hwe_p < 1.0:
            raise ImpbenchError(f"{path}: qc.hwe_p must lie in [0, 1)")
        if not 0.0 <= settings.min_maf <= 0.5:
            raise ImpbenchError(f"{path}: qc.min_maf must lie in [0, 0.5]")
    if cls is SplitSettings:
        fractions = settings.fractions
        if min(fractions) < 0 or fractions[0] <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
            raise ImpbenchError(
                f"{path}: split.fractions must be three non-negative numbers summing to 1 "
                f"with a positive training fraction, not {list(fractions)}"
            )
    return settings


def parse_card(path: str | os.PathLike) -> DatasetCard:
    """Read and validate one card file. Bad TOML, an unknown key or a wrong value raises
    ``ImpbenchError`` naming the file."""

    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ImpbenchError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ImpbenchError(f"{path}: not UTF-8 text (byte {exc.start}): a card is a TOML file") from None
    except OSError as exc:
        raise ImpbenchError(f"{path}: cannot read the card: {exc.strerror}") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ImpbenchError(
            f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})"
        )
    name = path.stem
    if not CARD_NAME.match(name):
        raise ImpbenchError(
            f"{path}: {name!r} is not a usable dataset name (the file's name without .toml: a letter or digit, "
            "then letters, digits, '.', '_' or '-', at most 64 characters)"
        )
    if "name" in data and data["name"] != name:
        raise ImpbenchError(f"{path}: name {data['name']!r} differs from the file name {name!r}")
    description = _expect(data.get("description", ""), str, "description", path)
    if not description.strip():
        raise ImpbenchError(f"{path}: a card needs a one-line 'description'")
    kind = data.get("kind") or ("simulated" if "simulation" in data else "file")
    if kind not in KINDS:
        raise ImpbenchError(f"{path}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    simulation: dict = {}
    if kind == "simulated":
        if "simulation" not in data:
            raise ImpbenchError(f"{path}: a simulated card needs a [simulation] table")
        if "vcf" in data or "samples" in data:
            raise ImpbenchError(f"{path}: a simulated card takes no 'vcf' or 'samples'")
        _expect(data["simulation"], dict, "[simulation]", path)
        parse_simulation(data["simulation"], str(path))  # validates; errors name the file
        simulation = data["simulation"]
    else:
        if "simulation" in data:
            raise ImpbenchError(f"{path}: a file card takes no [simulation] table")
        if not data.get("vcf"):
            raise ImpbenchError(f"{path}: a file card needs 'vcf' (a path, may use ${{VAR}})")
    strings = {}
    for key in ("vcf", "samples", "region", "mirrors", "map", "typed_sites", "package"):
        value = data.get(key)
        strings[key] = _expect(value, str, key, path) if value not in (None, "") else None
    if strings["region"] is not None and not _REGION.match(strings["region"]):
        raise ImpbenchError(
            f"{path}: region {strings['region']!r} is not 'contig' or 'contig:start-end'"
        )
    columns = _expect(data.get("sample_columns", {}), dict, "[sample_columns]", path)
    for key, value in columns.items():
        if key not in _COLUMN_KEYS:
            raise ImpbenchError(
                f"{path}: unknown key sample_columns.{key} (known: {', '.join(_COLUMN_KEYS)})"
            )
        _expect(value, str, f"sample_columns.{key}", path)
    if kind == "simulated" and not columns:
        columns = dict(SHEET_COLUMNS)
    if columns and "id" not in columns:
        raise ImpbenchError(f"{path}: sample_columns needs at least 'id'")
    if columns and kind == "file" and strings["samples"] is None:
        raise ImpbenchError(f"{path}: sample_columns is given but no 'samples' sheet")
    segment_length = _expect(data.get("segment_length", 128), int, "segment_length", path)
    segment_overlap = _expect(data.get("segment_overlap", 16), int, "segment_overlap", path)
    if segment_length > MAX_SEGMENT_LENGTH:
        raise ImpbenchError(f"{path}: segment_length is {segment_length:,}; at most {MAX_SEGMENT_LENGTH:,} variants")
    if segment_length < 2 or not 0 <= segment_overlap < segment_length:
        raise ImpbenchError(
            f"{path}: need segment_length >= 2 and 0 <= segment_overlap < segment_length "
            f"(got {segment_length}, {segment_overlap})"
        )
    imputers = _expect(data.get("imputers", {}), dict, "[imputers]", path)
    for imputer, options in imputers.items():
        _expect(options, dict, f"[imputers.{imputer}]", path)
        imputers[imputer] = {k: _expand_option(v, path.parent) for k, v in options.items()}
    return DatasetCard(
        name=name,
        description=" ".join(description.split()),
        path=path,
        kind=kind,
        simulation=simulation,
        vcf=strings["vcf"],
        samples=strings["samples"],
        sample_columns=dict(columns),
        region=strings["region"],
        qc=_settings(QCSettings, data.get("qc", {}), "qc", path),
        split=_settings(SplitSettings, data.get("split", {}), "split", path),
        segment_length=segment_length,
        segment_overlap=segment_overlap,
        imputers={k: dict(v) for k, v in imputers.items()},
        mirrors=strings["mirrors"],
        map=strings["map"],
        typed_sites=strings["typed_sites"],
        package=strings["package"],
    )


def _expand_option(value: Any, folder: Path) -> Any:
    """An imputer option that looks like a path template (holds ``${`` or starts with ``~``)
    expanded like ``vcf`` (relative to the card's folder); kept as written when a variable
    without default is unset, so the imputer's own error names it. Other values unchanged."""
    if isinstance(value, str) and ("${" in value or value.startswith("~")):
        resolved = expand_template(value, folder)
        return value if resolved.path is None else str(resolved.path)
    return value


def load_cards(extra_dirs=None, bad: dict[str, str] | None = None) -> dict[str, DatasetCard]:
    """Every card of ``card_dirs(extra_dirs)``, by name (sorted); a user folder's card replaces
    a built-in one of the same name. A bad card raises ``ImpbenchError`` naming its file; a
    ``mirrors`` naming no simulated card is an error too. With ``bad`` (a dict), bad cards
    are left out instead, and ``bad`` gets card name (the file's stem) -> the one-line error."""
    cards: dict[str, DatasetCard] = {}
    for folder in card_dirs(extra_dirs):
        for path in sorted(folder.glob("*.toml")):
            try:
                card = parse_card(path)
            except ImpbenchError as exc:
                if bad is None:
                    raise
                bad[path.stem] = str(exc)
                cards.pop(path.stem, None)  # a bad card still replaces a built-in one of its name
                continue
            if bad is not None:
                bad.pop(card.name, None)  # a good card in a later folder replaces a bad one
            cards[card.name] = card
    for card in list(cards.values()):
        if card.mirrors is not None:
            mirror = cards.get(card.mirrors)
            if mirror is None or mirror.kind != "simulated":
                message = f"{card.path}: mirrors {card.mirrors!r}, which is not a simulated card"
                if bad is None:
                    raise ImpbenchError(message)
                bad[card.name] = message
                del cards[card.name]
    return dict(sorted(cards.items()))


def get_card(name: str, extra_dirs=None) -> DatasetCard:
    """The card called ``name``; an unknown name raises ``ImpbenchError`` listing valid ones.
    Another card's problem does not stop this one; this card's own problem is the error."""
    bad: dict[str, str] = {}
    cards = load_cards(extra_dirs, bad=bad)
    if name in bad:
        raise ImpbenchError(bad[name])
    if name not in cards:
        raise ImpbenchError(
            f"unknown dataset {name!r}; valid names: {', '.join(cards) or '(none)'} "
            f"(add cards with --cards DIR or ${CARDS_ENV})"
        )
    return cards[name]


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Resolved:
    """A path template resolved: ``path`` (None when a variable without default is unset),
    the variables the template names, and the unset ones."""

    template: str
    path: Path | None
    variables: tuple[str, ...]
    unset: tuple[str, ...]


def expand_template(template: str, folder: Path) -> _Resolved:
    """Expand ``${VAR}`` / ``${VAR:-default}`` (nested defaults allowed), then ``~``; a
    relative result is taken relative to ``folder``."""
    variables: list[str] = []
    unset: list[str] = []
    text = template

    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        variables.append(name)
        value = os.environ.get(name)
        if value:
            return value
        if default is not None:
            return default
        unset.append(name)
        return ""

    while True:
        expanded = _VAR.sub(replace, text)
        if expanded == text:
            break
        text = expanded
    # In the order they appear: the outermost (the one a user should set) first.
    variables.sort(key=lambda name: template.find("${" + name))
    if unset:
        return _Resolved(template, None, tuple(dict.fromkeys(variables)), tuple(unset))
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = folder / path
    return _Resolved(template, path, tuple(dict.fromkeys(variables)), ())


def source_file_problems(card: DatasetCard) -> tuple[list[str], list[str], tuple[Path, Path | None]]:
    """(long problems, short problems, resolved paths) of a file card's source."""
    long_msgs: list[str] = []
    short_msgs: list[str] = []
    paths: list[Path | None] = []
    for what, template in (("VCF", card.vcf), ("sample sheet", card.samples)):
        if template is None:
            paths.append(None)
            continue
        resolved = expand_template(template, card.folder)
        paths.append(resolved.path)
        variable = resolved.variables[0] if resolved.variables else None
        if resolved.path is None:
            long_msgs.append(f"its {what} (set ${variable} to its path)")
            short_msgs.append(f"{what} (set ${variable})")
        elif not resolved.path.is_file():
            hint = f"set ${variable} to its path" if variable else f"edit 'vcf' in {card.path}"
            if what == "sample sheet" and not variable:
                hint = f"edit 'samples' in {card.path}"
            long_msgs.append(f"{what} file {resolved.path} ({hint})")
            short_msgs.append(
                f"file {resolved.path.name}" + (f" (set ${variable})" if variable else "")
            )
    return long_msgs, short_msgs, (paths[0], paths[1])  # type: ignore[return-value]


def mirror_hint(card: DatasetCard) -> str:
    """How to get a file card's source: its Debian package and its simulated mirror, where it names them ("" if neither)."""
    package = f" — install it: apt-get install {card.package}" if card.package else ""
    return package + (f" — simulated mirror: {card.mirrors}" if card.mirrors else "")
