"""Result records: one versioned JSON object per (scenario, imputer), written as JSON lines by
``impbench export RUN_DIR`` and read by ``impbench leaderboard`` (schema: ``docs/results.md``,
"Result records"). A record holds what a second lab needs to compare without the data: the
dataset's hash, the scheme, levels and mask hashes, the imputer's name, version and options
fingerprint, every headline estimate with its CI (standard protocol, all test samples, overall
and per MAF class), the paired differences against the run's other imputers, the cost and the
machine.

``run_records(run_dir)`` builds them from a run folder (through ``RunFolder``);
``write_records`` writes them atomically; ``read_records`` reads them back and refuses, in one
line, a record of another schema or of a schema version this impbench does not read.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Iterable

from impbench import __version__
from impbench.bench.records import ImputerRecord, Manifest
from impbench.bench.results import RunFolder
from impbench.bench.suite import read_suite_file
from impbench.errors import ImpbenchError
from impbench.files import atomic_write, to_jsonable
from impbench.scoring.classes import DEFAULT_MAF_CLASSES

SCHEMA = "impbench.result"
SCHEMA_VERSION = 1
#: The protocol and cohort of the headline estimates.
PROTOCOL = "standard"
COHORT = "all"
OVERALL = "overall"
RECORDS_FILE = "records.jsonl"


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def fingerprint(data: Any) -> str:
    """SHA-256 of ``data`` as canonical JSON (sorted keys): the options fingerprint."""
    text = json.dumps(to_jsonable(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _scenario(run_dir: Path) -> tuple[str | None, str]:
    """(suite, scenario) of a run folder: from ``OUT/<suite>/suite.json`` when the run is one of
    its scenarios, else (None, ``<dataset>/<run>``)."""
    suite = read_suite_file(run_dir.parent.parent)
    if suite is not None:
        for scenario in suite.get("scenarios", []):
            if scenario.get("run_dir") and (run_dir.parent.parent / scenario["run_dir"]).resolve() == run_dir.resolve():
                return str(suite.get("suite")), str(scenario["name"])
    return None, f"{run_dir.parent.name}/{run_dir.name}"


def _headline_bins(manifest: Manifest) -> tuple[str, ...]:
    classes = manifest.settings.maf_classes
    labels = [c[0] for c in classes] if classes else [label for label, _, _ in DEFAULT_MAF_CLASSES]
    return (OVERALL, *labels)


def _cost(entry: ImputerRecord) -> dict:
    seconds = [u.seconds for u in entry.impute if u.seconds is not None]
    peaks = [p for u in entry.impute for p in (u.peak_mb, u.child_peak_mb) if p is not None]
    fit_peaks = [p for p in (entry.fit_peak_mb, entry.fit_child_peak_mb) if p is not None]
    fit = entry.fit_seconds
    total = None if fit is None and not seconds else (fit or 0.0) + sum(seconds)
    return {"fit_seconds": fit, "impute_seconds": sum(seconds) if seconds else None, "units": len(entry.impute),
            "seconds": total, "peak_mb": max(fit_peaks + peaks) if fit_peaks or peaks else None}


def run_records(run_dir: str | Path) -> list[dict]:
    """One record per imputer of the run's manifest (schema ``SCHEMA_VERSION``); ``ImpbenchError``
    when ``run_dir`` is not a run folder."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    manifest = folder.read_manifest()
    metrics = folder.read_table("metrics")
    pairs = folder.read_table("pairs")
    bins = _headline_bins(manifest)
    dataset, settings = manifest.dataset, manifest.settings
    suite, scenario = _scenario(run_dir)
    run_id = fingerprint([manifest.created, manifest.command, dataset.hash, run_dir.name])[:16]

    def headline(frame: Any, cohort_column: str = "cohort") -> Any:
        if frame is None or frame.empty:
            return None
        cohort = frame[cohort_column].fillna(COHORT).replace("", COHORT)
        return frame[(frame["protocol"] == PROTOCOL) & (cohort == COHORT) & frame["bin"].isin(bins)]

    metrics, pairs = headline(metrics), headline(pairs)
    out = []
    for name, entry in manifest.imputers.items():
        estimates = []
        if metrics is not None:
            for row in metrics[metrics["imputer"] == name].itertuples(index=False):
                estimates.append({"level": float(row.level), "bin": str(row.bin), "metric": str(row.metric),
                                  "value": _number(row.value), "ci_low": _number(row.ci_low),
                                  "ci_high": _number(row.ci_high), "n_replicates": _number(row.n_replicates),
                                  "n_variants": _number(row.n_variants), "n_genotypes": _number(row.n_genotypes)})
        paired = []
        if pairs is not None:
            for row in pairs[(pairs["imputer_a"] == name) | (pairs["imputer_b"] == name)].itertuples(index=False):
                sign = 1.0 if row.imputer_a == name else -1.0
                low, high = _number(row.ci_low), _number(row.ci_high)
                if sign < 0:
                    low, high = (None if high is None else -high), (None if low is None else -low)
                diff = _number(row.difference)
                paired.append({"other": str(row.imputer_b if sign > 0 else row.imputer_a), "level": float(row.level),
                               "bin": str(row.bin), "metric": str(row.metric),
                               "difference": None if diff is None else sign * diff, "ci_low": low, "ci_high": high})
        options = entry.options
        out.append({
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
            "impbench_version": manifest.impbench_version, "exported_by": __version__,
            "suite": suite, "scenario": scenario,
            "run": {"id": run_id, "name": run_dir.name, "created": manifest.created, "command": manifest.command},
            "dataset": {"name": dataset.name, "hash": dataset.hash, "contig": dataset.contig,
                        "n_variants": dataset.n_variants, "n_samples": dataset.n_samples,
                        "store": Path(dataset.store).name or None},
            "settings": {"scheme": settings.scheme, "levels": settings.levels,
                         "replicates": settings.replicates, "train_cohort": dataset.train_cohort,
                         "panel_cohort": dataset.panel_cohort, "test_cohort": dataset.test_cohort,
                         "typed": settings.typed, "typed_density": settings.typed_density,
                         "bin_edges": settings.bin_edges, "bootstrap": settings.bootstrap.to_json(),
                         "maf_classes": settings.maf_classes},
            "masks": [{"level": m.level, "replicate": m.replicate, "sha256": m.sha256} for m in manifest.masks],
            "imputer": {"name": name, "distribution": entry.distribution, "version": entry.version,
                        "reference_free": entry.reference_free, "options": options,
                        "options_sha256": fingerprint(options), "status": entry.status,
                        "error": entry.error},
            "estimates": estimates, "paired": paired, "cost": _cost(entry),
            "machine": manifest.machine,
        })
    return out


def records_text(records: Iterable[dict]) -> str:
    return "".join(json.dumps(to_jsonable(r), sort_keys=True) + "\n" for r in records)


def write_records(records: Iterable[dict], path: str | Path) -> Path:
    """The records as JSON lines, written atomically."""
    return atomic_write(Path(path), records_text(records))


def check_record(record: Any, where: str) -> dict:
    """``record`` if it is a result record this impbench reads, else ``ImpbenchError`` (one line)."""
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise ImpbenchError(f"{where}: not an impbench result record (no \"schema\": \"{SCHEMA}\")")
    version = record.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ImpbenchError(f"{where}: result record schema version {version!r} is not supported "
                            f"(this impbench {__version__} reads version {SCHEMA_VERSION}); "
                            "export it again with this version or upgrade impbench")
    for key in ("scenario", "dataset", "masks", "imputer", "estimates"):
        if key not in record:
            raise ImpbenchError(f"{where}: result record without {key!r} (see docs/results.md)")
    return record


def read_records(path: str | Path) -> list[dict]:
    """Every record of a JSON-lines file (blank lines skipped); ``ImpbenchError`` naming the line
    of the first one that is not valid JSON or not a record of this schema version."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ImpbenchError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ImpbenchError(f"{path}: not a text file of result records") from None
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImpbenchError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        out.append(check_record(record, f"{path}:{number}"))
    return out
