"""Sample sheets: sample id -> cohort and sex.

Reads 1000 Genomes' panel file as is (``sample  pop  super_pop  gender``, tab-separated) and any
TSV/CSV whose id, cohort and sex column names the dataset card gives.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from impbench.errors import ImpbenchError

#: Column names tried, in order, when the card does not name the column.
DEFAULT_ID_COLUMNS = ("sample", "sample_id", "id", "iid", "sample_name")
DEFAULT_COHORT_COLUMNS = ("pop", "cohort", "population", "group")
DEFAULT_SEX_COLUMNS = ("gender", "sex")

SEXES = ("male", "female", "unknown")
_SEX_VALUES = {
    "1": "male", "m": "male", "male": "male", "man": "male",
    "2": "female", "f": "female", "female": "female", "woman": "female",
    "0": "unknown", "": "unknown", "na": "unknown", "nan": "unknown", ".": "unknown", "-9": "unknown",
    "unknown": "unknown", "u": "unknown", "other": "unknown",
}  # fmt: skip


def normalise_sex(values, path: str | os.PathLike = "") -> np.ndarray:
    """Map sex codes (1/2, M/F, male/female, 0/NA/unknown; any case) to male/female/unknown.

    Returns object array. Raises ``ImpbenchError`` naming the file and the value otherwise.
    """
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        key = str(value).strip().lower()
        if key not in _SEX_VALUES:
            raise ImpbenchError(f"{path}: sex value {value!r} not understood (use male/female, M/F or 1/2; 0/NA for unknown)")
        out[i] = _SEX_VALUES[key]
    return out


@dataclass
class SampleSheet:
    """A read sample sheet.

    sample_ids, cohort, sex : object arrays, shape (n_rows,); sex is male/female/unknown.
    columns : the column used for each of id, cohort and sex (None where absent).
    """

    path: Path
    sample_ids: np.ndarray
    cohort: np.ndarray
    sex: np.ndarray
    columns: dict = field(default_factory=dict)

    def for_samples(self, vcf_sample_ids, vcf_path: str | os.PathLike = "VCF") -> tuple[np.ndarray, np.ndarray, int]:
        """Cohort and sex of each VCF sample, in VCF order, and the number of sheet rows unused.

        Raises ``ImpbenchError`` when VCF samples are missing from the sheet (count and the
        first few ids). Extra sheet samples are ignored; their count is returned.
        """
        index = {sample: i for i, sample in enumerate(self.sample_ids)}
        missing = [s for s in vcf_sample_ids if s not in index]
        if missing:
            shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            raise ImpbenchError(
                f"{self.path}: {len(missing)} of {len(vcf_sample_ids)} samples of {vcf_path} are not in the sample sheet ({shown})"
            )
        rows = np.array([index[s] for s in vcf_sample_ids], dtype=np.int64)
        return self.cohort[rows], self.sex[rows], len(self.sample_ids) - len(set(vcf_sample_ids))


def _delimiter(path: Path, first_line: str) -> str | None:
    if "\t" in first_line:
        return "\t"
    if path.suffix.lower() == ".csv" or "," in first_line:
        return ","
    return None  # whitespace


def _pick(header: list[str], given: str | None, defaults: tuple[str, ...], what: str, path: Path, required: bool) -> int | None:
    lower = [h.strip().lower() for h in header]
    if given is not None:
        if given in header:
            return header.index(given)
        if given.lower() in lower:
            return lower.index(given.lower())
        raise ImpbenchError(f"{path}: no {what} column {given!r} (columns: {', '.join(header)})")
    for name in defaults:
        if name in lower:
            return lower.index(name)
    if required:
        raise ImpbenchError(
            f"{path}: no sample id column (looked for {', '.join(defaults)}; columns: {', '.join(header)}); name it in the card"
        )
    return None


def read_sample_sheet(
    path: str | os.PathLike,
    id_col: str | None = None,
    cohort_col: str | None = None,
    sex_col: str | None = None,
) -> SampleSheet:
    """Read a sample sheet (TSV, CSV or whitespace-separated, with a header row). Only CSV
    values may be quoted; in a TSV or whitespace-separated sheet a ``"`` is an ordinary character.

    id_col, cohort_col, sex_col : column names (matched exactly, then case-insensitively).
        Given and absent: ``ImpbenchError`` naming the column and the file. Not given: the
        first of ``DEFAULT_*_COLUMNS`` present is used; without a cohort column every sample
        is cohort "all", without a sex column sex is "unknown". The 1000 Genomes panel file
        (``sample pop super_pop gender``) thus reads as is with cohort = ``pop``; use
        ``cohort_col="super_pop"`` for continental groups.

    Raises ``ImpbenchError`` for a missing file, an empty sheet, a duplicated sample id, an
    empty id or a sex value that is not understood.
    """
    path = Path(path)
    if not path.is_file():
        raise ImpbenchError(f"{path}: sample sheet not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ImpbenchError(f"{path}: cannot read the sample sheet ({error})") from None
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("##")]
    if not lines:
        raise ImpbenchError(f"{path}: the sample sheet is empty")
    delimiter = _delimiter(path, lines[0])
    if delimiter is None:
        rows = [line.split() for line in lines]
    elif delimiter == "\t":  # TSV has no quoting: a '"' is part of the value
        rows = [line.split("\t") for line in lines]
    else:
        rows = list(csv.reader(lines, delimiter=delimiter))
    header = [h.strip().lstrip("#") for h in rows[0]]
    body = rows[1:]
    if not body:
        raise ImpbenchError(f"{path}: the sample sheet has a header but no samples")
    id_index = _pick(header, id_col, DEFAULT_ID_COLUMNS, "sample id", path, required=True)
    cohort_index = _pick(header, cohort_col, DEFAULT_COHORT_COLUMNS, "cohort", path, required=False)
    sex_index = _pick(header, sex_col, DEFAULT_SEX_COLUMNS, "sex", path, required=False)

    def column(index: int | None, fill: str) -> np.ndarray:
        if index is None:
            return np.full(len(body), fill, dtype=object)
        return np.array([(row[index].strip() if index < len(row) else "") for row in body], dtype=object)

    sample_ids = column(id_index, "")
    if (sample_ids == "").any():
        row = int(np.nonzero(sample_ids == "")[0][0]) + 2
        raise ImpbenchError(f"{path}: line {row} has no sample id")
    unique, counts = np.unique(sample_ids.astype(str), return_counts=True)
    if (counts > 1).any():
        dups = unique[counts > 1]
        raise ImpbenchError(f"{path}: {len(dups)} sample id(s) appear more than once ({', '.join(dups[:5])})")
    cohort = column(cohort_index, "all")
    cohort[cohort == ""] = "unknown"
    sex = normalise_sex(column(sex_index, "unknown"), path)
    return SampleSheet(
        path=path,
        sample_ids=sample_ids,
        cohort=cohort,
        sex=sex,
        columns={
            "id": header[id_index],
            "cohort": None if cohort_index is None else header[cohort_index],
            "sex": None if sex_index is None else header[sex_index],
        },
    )
