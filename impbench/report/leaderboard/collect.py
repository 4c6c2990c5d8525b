"""What ``impbench leaderboard`` reads: run folders, suite folders and JSON-lines files of result
records (``impbench.bench.export``), gathered into scenarios that may be ranked together.

Records belong to one scenario when their ``(suite, scenario)`` names agree. A scenario's
records must share the dataset hash and every mask hash; a record that differs is an
``ImpbenchError`` of one line naming it, the record it differs from, and why. The same
(scenario, imputer) given twice from one run (a folder and its export) counts once; from two
runs it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from impbench.bench.export import read_records, run_records
from impbench.bench.suite import read_suite_file
from impbench.errors import ImpbenchError

MANIFEST = "manifest.json"


@dataclass
class Source:
    """A record and where it came from (``path``: the run folder or the records file)."""

    record: dict
    path: str

    @property
    def imputer(self) -> str:
        return str(self.record["imputer"]["name"])

    @property
    def run_id(self) -> str:
        return str((self.record.get("run") or {}).get("id"))

    def describe(self) -> str:
        return f"{self.imputer} from {self.path}"


@dataclass
class Scenario:
    """The records of one scenario (``key``: (suite, scenario name)), one per imputer, in input order."""

    key: tuple[str | None, str]
    sources: list[Source] = field(default_factory=list)

    @property
    def label(self) -> str:
        suite, name = self.key
        return name if suite is None else f"{suite}/{name}"

    @property
    def first(self) -> dict:
        return self.sources[0].record


def run_folders(path: str | Path) -> list[Path]:
    """A run folder itself, or the run folders of a suite folder (the order of its ``suite.json``)
    or of any folder holding run folders up to three levels down (``results/suites`` holds
    ``<suite>/<dataset>/<scenario>``); ``ImpbenchError`` when none."""
    path = Path(path)
    if not path.is_dir():
        raise ImpbenchError(f"{path}: no such folder")
    if (path / MANIFEST).is_file():
        return [path]
    suite = read_suite_file(path)
    found: list[Path] = []
    if suite is not None:
        found = [path / s["run_dir"] for s in suite.get("scenarios", [])
                 if s.get("run_dir") and (path / s["run_dir"] / MANIFEST).is_file()]
    if not found:
        patterns = (f"*/{MANIFEST}", f"*/*/{MANIFEST}", f"*/*/*/{MANIFEST}")
        found = sorted({p.parent for pattern in patterns for p in path.glob(pattern)})
    if not found:
        raise ImpbenchError(f"{path}: neither a run folder nor a folder of run folders (no {MANIFEST} in it or "
                            "up to three levels below)")
    return found


def gather(paths: list[str | Path]) -> list[Source]:
    """Every record of ``paths``: files are JSON lines of records, folders run or suite folders."""
    sources: list[Source] = []
    for path in paths:
        path = Path(path)
        if path.is_file():
            sources += [Source(r, str(path)) for r in read_records(path)]
        elif path.is_dir():
            for run_dir in run_folders(path):
                sources += [Source(r, str(run_dir)) for r in run_records(run_dir)]
        else:
            raise ImpbenchError(f"{path}: no such file or folder")
    if not sources:
        raise ImpbenchError("no result record in " + ", ".join(str(p) for p in paths))
    return sources


def _masks(record: dict) -> dict[tuple[float, int], str]:
    return {(round(float(m["level"]), 9), int(m["replicate"])): str(m.get("sha256"))
            for m in record.get("masks") or [] if m.get("level") is not None and m.get("replicate") is not None}


def _short(text: object) -> str:
    text = str(text)
    return text[:12] + "…" if len(text) > 13 else text


def check_same_scenario(base: Source, other: Source, label: str) -> None:
    """``ImpbenchError`` (one line) unless ``other`` was scored on ``base``'s data and masks."""
    hash_a, hash_b = base.record["dataset"].get("hash"), other.record["dataset"].get("hash")
    if hash_a != hash_b:
        raise ImpbenchError(f"scenario {label}: record {other.describe()} has dataset hash {_short(hash_b)} but "
                            f"{base.describe()} has {_short(hash_a)}: they were scored on different data and are "
                            "not ranked together (leave one out, or give them different scenario names)")
    masks_a, masks_b = _masks(base.record), _masks(other.record)
    if masks_a != masks_b:
        differ = sorted(set(masks_a) ^ set(masks_b)) or sorted(k for k in masks_a if masks_a[k] != masks_b.get(k))
        level, replicate = differ[0]
        what = ("masks differ" if set(masks_a) == set(masks_b) else "masks at other levels or replicates")
        raise ImpbenchError(f"scenario {label}: record {other.describe()} has {what} than {base.describe()} "
                            f"(first: level {level:g} replicate {replicate}): the same cells must be hidden from "
                            "every imputer ranked together")


def scenarios(sources: list[Source]) -> list[Scenario]:
    """Records grouped by scenario (first-seen order), checked (``check_same_scenario``)."""
    groups: dict[tuple[str | None, str], Scenario] = {}
    for source in sources:
        key = (source.record.get("suite"), str(source.record["scenario"]))
        group = groups.setdefault(key, Scenario(key))
        same = [s for s in group.sources if s.imputer == source.imputer]
        if same:
            if same[0].run_id == source.run_id:
                continue  # the same result given twice (a run folder and its export)
            raise ImpbenchError(f"scenario {group.label}: imputer {source.imputer!r} is given twice "
                                f"({same[0].path} and {source.path}); leave one out")
        if group.sources:
            check_same_scenario(group.sources[0], source, group.label)
        group.sources.append(source)
    return list(groups.values())
