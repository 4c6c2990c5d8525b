"""The report's opening tables, from ``manifest.json``: dataset, QC summary, settings, masks,
imputers and versions. Every field is optional here (a partial run may lack some)."""

from __future__ import annotations

import json

from impbench.report.load import RunResults
from impbench.report.style import level_label
from impbench.report.tables import Cell, Table

#: Human labels of QC report keys (flattened with dots); others: the last part, capitalised.
QC_LABELS = {
    "info.contig": "Contig", "info.vcf": "Input VCF", "info.hwe_scope": "HWE test scope",
    "info.samplesheet": "Sample sheet", "info.n_samples": "Samples", "info.source": "Source",
    "input_variants": "Variants in the input", "dropped.multiallelic": "Dropped: multiallelic",
    "dropped.hwe": "Dropped: Hardy–Weinberg", "dropped.monomorphic": "Dropped: monomorphic",
    "dropped.missing": "Dropped: missing genotypes", "dropped.maf": "Dropped: MAF filter",
}


def human_label(key: str) -> str:
    """``info.hwe_scope`` -> ``HWE test scope`` (known keys) or ``Hwe scope`` (others)."""
    if key in QC_LABELS:
        return QC_LABELS[key]
    parts = key.split(".")
    head = parts[-1].replace("_", " ").strip()
    prefix = "" if len(parts) == 1 or parts[0] == "info" else parts[0].replace("_", " ").capitalize() + ": "
    return prefix + (head[:1].upper() + head[1:] if head else key)


def items(value) -> list[tuple[str, str]]:
    """A mapping as (key, value text) pairs, nested keys joined with dots, nothing cut."""
    if not isinstance(value, dict):
        return [("value", _text(value, limit=None))]
    return [(k, _text(v, limit=None)) for k, v in _flatten(value)]


MAX_VALUE_CHARS = 300


def _text(value, limit: int | None = MAX_VALUE_CHARS) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, str)) for v in value):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, separators=(", ", ": "), default=str)
    else:
        text = str(value)
    return text if limit is None or len(text) <= limit else text[:limit - 1] + "…"


def _key_value(key: str, title: str, caption: str, pairs) -> Table:
    table = Table(key, title, caption, ["Field", "Value"])
    for name, value in pairs:
        table.rows.append([Cell(name), Cell(_count_text(value))])
    return table


def _flatten(mapping, prefix: str = ""):
    for name, value in mapping.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            yield from _flatten(value, key + ".")
        else:
            yield key, value


def dataset_table(results: RunResults) -> Table:
    dataset = results.manifest.get("dataset") or {}
    n_samples = dataset.get("n_samples")
    if isinstance(n_samples, dict):
        n_samples = ", ".join(f"{split} {count:,}" if isinstance(count, int) else f"{split} {count}"
                              for split, count in n_samples.items())
    pairs = [("Name", dataset.get("name") or results.dataset_name),
             ("Content hash (SHA-256)", dataset.get("hash")),
             ("Store", dataset.get("store")),
             ("Contig", dataset.get("contig")),
             ("Variants after QC", f"{dataset['n_variants']:,}" if isinstance(dataset.get("n_variants"), int)
              else dataset.get("n_variants")),
             ("Samples per split", n_samples),
             ("Training cohort", dataset.get("train_cohort") or "all"),
             ("Test cohort", dataset.get("test_cohort") or "all"),
             ("MAF source (binning)", results.maf_source)]
    pairs += [(k, v) for k, v in dataset.items()
              if k not in {"name", "hash", "store", "contig", "n_variants", "n_samples", "train_cohort",
                           "test_cohort", "qc"}]
    return _key_value("dataset", "Dataset", f"Run folder: {results.run_dir}", pairs)


def qc_tables(results: RunResults) -> list[Table]:
    """The QC report: its scalar fields as one key/value table, and each list of records (such
    as the filter steps) as a table of its own."""
    qc = (results.manifest.get("dataset") or {}).get("qc")
    if not isinstance(qc, dict) or not qc:
        return [_key_value("qc", "QC summary", "From the dataset's QC report", [("QC report", qc or "not in manifest")])]
    pairs, record_tables = [], []
    for key, value in _flatten(qc):
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for record in value for k in record))
            first = [c for c in ("step", "name") if c in columns]
            last = [c for c in ("note", "notes") if c in columns]
            columns = first + [c for c in columns if c not in first + last] + last
            headers = [human_label(c) for c in columns]
            table = Table(f"qc-{key.replace('.', '-')}", f"QC: {human_label(key).lower()}",
                          "From the dataset's QC report, in the order applied", headers)
            for record in value:
                table.rows.append([Cell(_count_text(record.get(c))) for c in columns])
            record_tables.append(table)
        else:
            pairs.append((human_label(key), value))
    tables = [_key_value("qc", "QC summary", "From the dataset's QC report (every filter step counted)", pairs)]
    return tables + record_tables


def _count_text(value) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _text(value)


def settings_table(results: RunResults) -> Table:
    manifest = results.manifest
    settings = manifest.get("settings") or {}
    pairs = [("Command", manifest.get("command")), ("Created", manifest.get("created")),
             ("impbench version", manifest.get("impbench_version"))]
    for name, value in settings.items():
        if name == "levels" and isinstance(value, list):
            value = ", ".join(level_label(v) for v in value)
        pairs.append((name.replace("_", " ").capitalize(), value))
    pairs.append(("MAF source", results.maf_source))
    return _key_value("settings", "Settings", "As recorded in manifest.json", pairs)


def versions_table(results: RunResults) -> Table:
    versions = results.manifest.get("versions") or {}
    return _key_value("versions", "Software versions", "As recorded in manifest.json",
                      list(versions.items()) or [("versions", "not in manifest")])


def masks_table(results: RunResults) -> Table:
    table = Table("masks", "Masks (identical for every imputer)",
                  "SHA-256 of each masked replicate; an equal hash means an identical mask",
                  ["Level", "Replicate", "Masked cells", "SHA-256"])
    for mask in results.manifest.get("masks") or []:
        if not isinstance(mask, dict):
            continue
        level = mask.get("level")
        n_masked = mask.get("n_masked")
        table.rows.append([Cell(level_label(level) if isinstance(level, (int, float)) else _text(level)),
                           Cell(_text(mask.get("replicate"))),
                           Cell(f"{n_masked:,}" if isinstance(n_masked, int) else _text(n_masked)),
                           Cell(_text(mask.get("sha256")))])
    return table


def imputers_table(results: RunResults) -> Table:
    table = Table("imputers", "Imputers", "Status, version and options of every imputer in this run",
                  ["Imputer", "Status", "Distribution", "Version", "Reference-free", "Options", "Info", "Error"])
    for name in results.imputers:
        info = results.imputer_info(name)
        status = results.status(name)
        table.rows.append([Cell(name), Cell(status, alert=status != "ok"),
                           Cell(_text(info.get("distribution"))), Cell(_text(info.get("version"))),
                           Cell(_text(info.get("reference_free"))),
                           _items_cell(info.get("options"), "defaults"), _items_cell(info.get("info"), "–"),
                           Cell(_text(info.get("error"), limit=None) if info.get("error") else "")])
    return table


def _items_cell(value, empty: str) -> Cell:
    if not value:
        return Cell(empty)
    return Cell(_text(value, limit=None), items=items(value))
