"""Nothing that ``impbench report`` or ``report --compare`` writes leaves its output folder,
whatever a run folder's manifest or CSVs hold."""

from __future__ import annotations

import json

import pandas as pd

from impbench.report import write_compare, write_report
from impbench.report.model import safe_file_name

from impbench.testing.synthetic import write_synthetic_run


def files_under(folder):
    return {p.resolve() for p in folder.rglob("*") if p.is_file()}


def poison(run_dir):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["dataset"]["name"] = "../../escaped"
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    for table in ("metrics", "replicates", "confusion"):
        path = run_dir / f"{table}.csv"
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        if "protocol" in frame:
            frame.loc[frame.protocol == "standard", "protocol"] = "../../../evil"
        frame.to_csv(path, index=False)


def test_safe_file_name():
    assert safe_file_name("../../etc/passwd") == "_.._etc_passwd"
    assert safe_file_name("fig_by_maf_standard.png") == "fig_by_maf_standard.png"
    assert safe_file_name("/abs") == "_abs" and safe_file_name("..") == "_"


def test_report_and_compare_stay_in_their_folders(tmp_path):
    base = tmp_path / "results" / "syn"
    a = write_synthetic_run(base / "a", imputers=("major", "knn"), levels=(0.05,), replicates=2, seed=1)
    b = write_synthetic_run(base / "b", imputers=("major", "knn"), levels=(0.05,), replicates=2, seed=2)
    poison(a)
    poison(b)
    before = files_under(tmp_path)
    write_report(a, formats=("md", "csv", "html", "png"))
    write_compare(a, b, formats=("md", "csv", "html", "png"))
    new = files_under(tmp_path) - before
    assert new, "the report wrote nothing"
    report_dir = (a / "report").resolve()
    assert all(report_dir in path.parents for path in new), sorted(map(str, new))
