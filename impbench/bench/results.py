"""The run folder: one owner of its paths, columns, done markers and manifest.

``results/<dataset>/<run>/`` (format: ``docs/results.md``):

- ``manifest.json``: versions, dataset, settings, masks, imputers (status, options, timings),
  the typed ``impbench.bench.records.Manifest``;
- ``done/<imputer>.L<level>.r<replicate>.json``: one done marker per finished unit, holding its
  score rows; the record of truth from which the CSVs are rebuilt;
- ``metrics.csv`` (pooled over replicates, with bootstrap CIs, per cohort), ``pairs.csv`` (paired
  differences), ``replicates.csv``, ``per_sample.csv``, ``confusion.csv``, ``calibration.csv``,
  ``variant_quality.csv``: long format with the columns below (extra columns follow them);
- ``models/<imputer>/``: each imputer's work folder (checkpoints, logs, ``error.txt``);
- ``vcf/<unit>.vcf.gz``: imputed VCFs (``--write-vcf``).

The runner writes through ``RunFolder``; the report reads through it; the synthetic-run test
fixture writes through it too, so no column list exists twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from impbench.bench.records import MARKER_FORMAT, DoneMarker, Manifest, RecordError
from impbench.scoring.pooled import Moments, SampleStats
from impbench.errors import ImpbenchError
from impbench.files import atomic_write, write_json

#: Columns of each table, in order (a scorer's extra columns follow: ``maf_source`` in metrics and
#: pairs, ``impbench.scoring.aggregate``); ``docs/results.md``.
COLUMNS: dict[str, tuple[str, ...]] = {
    "metrics": ("imputer", "level", "protocol", "cohort", "bin", "bin_lo", "bin_hi", "metric", "value",
                "ci_low", "ci_high", "n_replicates", "n_variants", "n_genotypes"),
    "pairs": ("imputer_a", "imputer_b", "level", "protocol", "cohort", "bin", "metric", "value_a", "value_b",
              "difference", "ci_low", "ci_high"),
    "replicates": ("imputer", "level", "replicate", "protocol", "bin", "bin_lo", "bin_hi",
                   "metric", "value", "n_variants", "n_genotypes"),
    "per_sample": ("imputer", "level", "replicate", "sample_id", "cohort", "r2", "n_genotypes"),
    "confusion": ("imputer", "level", "replicate", "protocol", "kind", "truth", "pred", "count"),
    "calibration": ("imputer", "level", "bin_lo", "bin_hi", "n_genotypes", "mean_confidence", "concordance"),
    "variant_quality": ("imputer", "level", "replicate", "position", "maf", "bin", "n_genotypes", "true_r2",
                        "estimated_dr2", "reported_quality"),
}
#: Numeric columns of each table (parsed as numbers when read).
NUMERIC: dict[str, tuple[str, ...]] = {
    "metrics": ("level", "bin_lo", "bin_hi", "value", "ci_low", "ci_high", "n_replicates", "n_variants", "n_genotypes"),
    "pairs": ("level", "value_a", "value_b", "difference", "ci_low", "ci_high"),
    "replicates": ("level", "replicate", "bin_lo", "bin_hi", "value", "n_variants", "n_genotypes"),
    "per_sample": ("level", "replicate", "r2", "n_genotypes"),
    "confusion": ("level", "replicate", "truth", "pred", "count"),
    "calibration": ("level", "bin_lo", "bin_hi", "n_genotypes", "mean_confidence", "concordance"),
    "variant_quality": ("level", "replicate", "position", "maf", "n_genotypes", "true_r2", "estimated_dr2",
                        "reported_quality"),
}
#: Tables rebuilt from the done markers' rows (the others are the aggregate's).
MARKER_TABLES = ("replicates", "per_sample", "confusion", "variant_quality")
_TEXT_DTYPES = {"imputer": str, "imputer_a": str, "imputer_b": str, "protocol": str, "bin": str, "metric": str,
                "sample_id": str, "cohort": str, "kind": str, "maf_source": str}


def unit_name(imputer: str, level: float, replicate: int) -> str:
    """``knn.L0.05.r0``: the stem of a unit's done marker and VCF."""
    return f"{imputer}.L{level:g}.r{replicate}"


def records(frame: Any) -> list[dict]:
    """A DataFrame's rows as JSON-able dicts (NaN -> None, numpy scalars -> Python)."""
    rows = frame.to_dict(orient="records")
    for row in rows:
        for key, value in row.items():
            if isinstance(value, np.generic):
                value = row[key] = value.item()
            if isinstance(value, float) and value != value:
                row[key] = None
    return rows


class RunFolder:
    """Paths and files of one run folder (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ paths
    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def done_dir(self) -> Path:
        return self.path / "done"

    def table_path(self, table: str) -> Path:
        return self.path / f"{table}.csv"

    def marker_path(self, imputer: str, level: float, replicate: int) -> Path:
        return self.done_dir / f"{unit_name(imputer, level, replicate)}.json"

    def vcf_path(self, imputer: str, level: float, replicate: int) -> Path:
        return self.path / "vcf" / f"{unit_name(imputer, level, replicate)}.vcf.gz"

    def model_dir(self, imputer: str) -> Path:
        return self.path / "models" / imputer

    # ------------------------------------------------------------------ creating
    def create(self) -> None:
        """Create the folder, or ``ImpbenchError`` saying the output folder is not writable."""
        ensure_writable(self.path)

    # ------------------------------------------------------------------ manifest
    def read_manifest(self, required: bool = True) -> Manifest | None:
        """The manifest (``impbench.bench.records.Manifest``, every field checked); None when
        absent and not ``required``; ``ImpbenchError`` (one line naming the file, and the field)
        when it cannot be read, is not JSON or holds a field of the wrong type or value."""
        path = self.manifest_path
        if not path.is_file():
            if required:
                raise ImpbenchError(f"{self.path}: not a run folder (no manifest.json; see docs/results.md)")
            return None
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ImpbenchError(f"{path}: not valid JSON ({exc})") from None
        return Manifest.from_json(manifest, str(path))

    def write_manifest(self, manifest: Manifest) -> None:
        write_json(self.manifest_path, manifest.to_json())

    # ------------------------------------------------------------------ done markers
    def read_marker(self, imputer: str, level: float, replicate: int) -> DoneMarker | None:
        """A unit's done marker; None when absent, unreadable, of another format or with a field
        that fails its check (the unit is then not done, and a rerun does it again)."""
        return _read_marker(self.marker_path(imputer, level, replicate))

    def write_marker(self, marker: DoneMarker) -> None:
        write_json(self.marker_path(marker.imputer, marker.level, marker.replicate), marker.to_json())

    def markers(self) -> Iterable[DoneMarker]:
        """Every valid done marker, in file-name order."""
        if not self.done_dir.exists():
            return
        for path in sorted(self.done_dir.glob("*.json")):
            marker = _read_marker(path)
            if marker is not None:
                yield marker

    # ------------------------------------------------------------------ tables
    def marker_rows(self, imputer_order: Iterable[str] = ()) -> dict[str, Any]:
        """Every done marker's rows as DataFrames, per table of ``MARKER_TABLES`` (plus the
        markers' ``calibration`` rows), ordered by imputer (``imputer_order`` first), level and
        replicate."""
        import pandas as pd

        tables: dict[str, list[dict]] = {table: [] for table in (*MARKER_TABLES, "calibration")}
        for marker in self.markers():
            for table in tables:
                tables[table].extend(getattr(marker, table))
        order = {name: i for i, name in enumerate(imputer_order)}
        out = {}
        for table, rows in tables.items():
            rows.sort(key=lambda r: (order.get(r.get("imputer"), len(order)), r.get("level", 0), r.get("replicate", 0)))
            out[table] = pd.DataFrame(rows)
        return out

    def write_tables(self, frames: dict[str, Any]) -> None:
        """Write the given tables (name -> DataFrame), each atomically, columns in order."""
        for table, frame in frames.items():
            self.write_table(table, frame)

    # ------------------------------------------------------------------ per-sample statistics
    def stats_path(self, imputer: str, level: float, replicate: int) -> Path:
        return self.done_dir / f"{unit_name(imputer, level, replicate)}.stats.npz"

    def write_stats(self, imputer: str, level: float, replicate: int, stats: dict[str, Any]) -> None:
        """A unit's ``SampleStats`` per protocol, as one npz file (written atomically)."""
        import io

        arrays: dict[str, np.ndarray] = {}
        for protocol, s in stats.items():
            arrays[f"{protocol}.tables"] = s.tables
            arrays[f"{protocol}.labels"] = np.asarray(s.labels, dtype=str)
            if s.moments is not None:
                for name, value in zip(s.moments._fields, s.moments):
                    arrays[f"{protocol}.moments.{name}"] = value
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        atomic_write(self.stats_path(imputer, level, replicate), buffer.getvalue())

    def read_stats(self, imputer: str, level: float, replicate: int) -> dict[str, Any] | None:
        """A unit's ``SampleStats`` per protocol (and ``protocol@cohort``), or None when absent or unreadable."""
        path = self.stats_path(imputer, level, replicate)
        try:
            with np.load(path) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError):
            return None
        out = {}
        # keys: "<protocol>" (pooled MAF) or "<protocol>@<cohort>" (the cohort's own MAF)
        for key in {name[: -len(".labels")] for name in arrays if name.endswith(".labels")}:
            moments = None
            if f"{key}.moments.n" in arrays:
                moments = Moments(*(arrays[f"{key}.moments.{name}"] for name in Moments._fields))
            out[key] = SampleStats(key.partition("@")[0], tuple(str(x) for x in arrays[f"{key}.labels"]),
                                   arrays[f"{key}.tables"], moments)
        return out

    def write_table(self, table: str, frame: Any) -> None:
        """Write one CSV (atomically), the table's columns first."""
        atomic_write(self.table_path(table), table_frame(table, frame).to_csv(index=False))

    def read_table(self, table: str) -> Any:
        """A CSV as a DataFrame with its columns (numbers parsed), or None when absent."""
        import pandas as pd

        path = self.table_path(table)
        if not path.is_file():
            return None
        columns = COLUMNS[table]
        try:
            frame = pd.read_csv(path, dtype=_TEXT_DTYPES, keep_default_na=False, na_values=["", "nan", "NaN"])
        except pd.errors.EmptyDataError:
            frame = pd.DataFrame(columns=list(columns))
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise ImpbenchError(f"{path}: cannot parse as CSV ({exc})") from None
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ImpbenchError(f"{path}: missing column(s) {', '.join(missing)} (see docs/results.md)")
        for column in NUMERIC[table]:
            try:
                frame[column] = pd.to_numeric(frame[column])
            except (ValueError, TypeError) as exc:
                raise ImpbenchError(f"{path}: column {column!r} is not numeric ({exc})") from None
        return frame


def table_frame(table: str, frame: Any) -> Any:
    """``frame`` with the table's columns first, in order (missing ones empty)."""
    columns = list(COLUMNS[table])
    return frame.reindex(columns=columns + [c for c in frame.columns if c not in columns])


def _read_marker(path: Path) -> DoneMarker | None:
    try:
        marker = DoneMarker.from_json(json.loads(path.read_text()), str(path))
    except (OSError, ValueError, RecordError):  # unreadable, not UTF-8 or not JSON, a bad field
        return None
    return marker if marker.format == MARKER_FORMAT else None


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` (and parents) and check that it is writable, else ``ImpbenchError``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ImpbenchError(f"output folder {folder} is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ImpbenchError(f"output folder {folder} is not writable ({exc.strerror or exc})") from None


def check_output_folder(folder: Path) -> None:
    """``ImpbenchError`` unless ``folder`` is (or can be created as) a writable folder; creates nothing."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ImpbenchError(f"output folder {folder} is not a folder")
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ImpbenchError(f"output folder {folder} is not writable ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ImpbenchError(f"output folder {folder} is not writable (Permission denied)")
