"""Sample sheets: the 1000 Genomes panel as is, TSV/CSV with named columns, sex codes, errors."""

from __future__ import annotations

import numpy as np
import pytest

from impbench.errors import ImpbenchError
from impbench.io.samplesheet import normalise_sex, read_sample_sheet

PANEL = "sample\tpop\tsuper_pop\tgender\t\t\nHG00096\tGBR\tEUR\tmale\nHG00097\tGBR\tEUR\tfemale\nNA19017\tLWK\tAFR\tfemale\n"


def test_1000_genomes_panel_as_is(tmp_path):
    path = tmp_path / "integrated_call_samples_v3.20130502.ALL.panel"
    path.write_text(PANEL)
    sheet = read_sample_sheet(path)
    assert list(sheet.sample_ids) == ["HG00096", "HG00097", "NA19017"]
    assert list(sheet.cohort) == ["GBR", "GBR", "LWK"]
    assert list(sheet.sex) == ["male", "female", "female"]
    assert sheet.columns == {"id": "sample", "cohort": "pop", "sex": "gender"}
    assert list(read_sample_sheet(path, cohort_col="super_pop").cohort) == ["EUR", "EUR", "AFR"]


def test_csv_with_named_columns(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_text("IID,Group,Sex,age\n007,AA,1,40\nb,CA,2,50\nc,AA,0,60\n")
    sheet = read_sample_sheet(path, id_col="IID", cohort_col="Group", sex_col="sex")  # case-insensitive
    assert list(sheet.sample_ids) == ["007", "b", "c"]  # ids stay text
    assert list(sheet.cohort) == ["AA", "CA", "AA"]
    assert list(sheet.sex) == ["male", "female", "unknown"]


def test_without_cohort_or_sex_columns(tmp_path):
    path = tmp_path / "ids.tsv"
    path.write_text("sample\nx\ny\n")
    sheet = read_sample_sheet(path)
    assert list(sheet.cohort) == ["all", "all"] and list(sheet.sex) == ["unknown", "unknown"]


def test_sex_codes():
    values = ["1", "2", "M", "f", "Male", "FEMALE", "0", "NA", "", "unknown"]
    assert list(normalise_sex(values)) == ["male", "female", "male", "female", "male", "female"] + ["unknown"] * 4
    with pytest.raises(ImpbenchError, match="sex value 'x'"):
        normalise_sex(["x"], "s.tsv")


def test_missing_column_names_column_and_file(tmp_path):
    path = tmp_path / "sheet.tsv"
    path.write_text("sample\tpop\nx\tA\n")
    with pytest.raises(ImpbenchError, match=r"sheet\.tsv: no cohort column 'super_pop' \(columns: sample, pop\)"):
        read_sample_sheet(path, cohort_col="super_pop")
    with pytest.raises(ImpbenchError, match=r"sheet\.tsv: no sample id column 'IID'"):
        read_sample_sheet(path, id_col="IID")
    path.write_text("name\tpop\nx\tA\n")
    with pytest.raises(ImpbenchError, match="no sample id column"):
        read_sample_sheet(path)


def test_duplicates_and_missing_file(tmp_path):
    path = tmp_path / "sheet.tsv"
    path.write_text("sample\tpop\nx\tA\ny\tB\nx\tC\n")
    with pytest.raises(ImpbenchError, match=r"sheet\.tsv: 1 sample id\(s\) appear more than once \(x\)"):
        read_sample_sheet(path)
    with pytest.raises(ImpbenchError, match="nope.tsv: sample sheet not found"):
        read_sample_sheet(tmp_path / "nope.tsv")


def test_for_samples_missing_and_extra(tmp_path):
    path = tmp_path / "sheet.tsv"
    path.write_text("sample\tpop\tgender\na\tA\t1\nb\tB\t2\nc\tA\t1\nd\tB\t2\n")
    sheet = read_sample_sheet(path)
    cohort, sex, n_extra = sheet.for_samples(np.array(["c", "a"], dtype=object), "in.vcf.gz")
    assert list(cohort) == ["A", "A"] and list(sex) == ["male", "male"] and n_extra == 2
    with pytest.raises(ImpbenchError, match=r"sheet\.tsv: 2 of 3 samples of in\.vcf\.gz are not in the sample sheet \(q, r\)"):
        sheet.for_samples(["a", "q", "r"], "in.vcf.gz")


def test_tsv_is_read_without_csv_quoting(tmp_path):
    """A TSV id starting with '"' must not swallow the following rows (CSV quoting applied to TSV)."""
    path = tmp_path / "sheet.tsv"
    ids = ['"s1', "s2", 's3"', 's"4']
    path.write_text("sample\tpop\tsex\n" + "".join(f"{s}\tA\tmale\n" for s in ids))
    sheet = read_sample_sheet(path)
    assert list(sheet.sample_ids) == ids
    assert list(sheet.cohort) == ["A"] * 4
    cohort, _, n_extra = sheet.for_samples(ids)
    assert list(cohort) == ["A"] * 4 and n_extra == 0


def test_csv_keeps_its_quoting(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_text('sample,pop\n"s,1",A\ns2,"B C"\n')
    sheet = read_sample_sheet(path)
    assert list(sheet.sample_ids) == ["s,1", "s2"] and list(sheet.cohort) == ["A", "B C"]
