"""impbench.report: summary statistics, tables, figures, HTML, failed and partial runs."""

from __future__ import annotations

import io
import json
import math
import re
import statistics

import pandas as pd
import pytest
from PIL import Image

from impbench.errors import ImpbenchError
from impbench.report import load_run, parse_formats, summarise, write_compare, write_report
from impbench.report.content import build_report
from impbench.report.html import report_html
from impbench.report.markdown import report_markdown
from impbench.testing.synthetic import write_synthetic_run

SMALL = dict(levels=(0.05, 0.15), replicates=2, bin_edges=(0, 0.01, 0.05, 0.5), n_samples=6)
FIGURE_KEYS = ("fig-by-maf-standard", "fig-by-maf-paper", "fig-per-sample", "fig-confusion-L0.05",
               "fig-confusion-L0.15", "fig-runtime")

# ---------------------------------------------------------------------------------------------
# Hand-checkable numbers


def _manifest(imputers: dict[str, dict]) -> dict:
    return {"impbench_version": "0.1.0", "dataset": {"name": "hand", "n_variants": 10},
            "maf_source": "training split truth",
            "settings": {"levels": [0.05], "replicates": 3, "protocols": ["standard"]},
            "masks": [{"level": 0.05, "replicate": r, "sha256": f"{r:064x}", "n_masked": 5} for r in range(3)],
            "imputers": imputers}


BINS = {"overall": (0.0, 0.5), "<0.5%": (0.0, 0.005), "0.5–1%": (0.005, 0.01), "5–10%": (0.05, 0.1),
        "10–20%": (0.1, 0.2)}


def _rows(imputer, metric, bin_label, values, n_genotypes=(100, 110, 120), n_variants=7):
    lo, hi = BINS[bin_label]
    return [(imputer, 0.05, rep, "standard", bin_label, lo, hi, metric, value, n_variants, n_genotypes[rep])
            for rep, value in enumerate(values)]


@pytest.fixture()
def hand_run(tmp_path):
    run = tmp_path / "hand" / "run"
    run.mkdir(parents=True)
    ok = {"status": "ok", "error": None}
    (run / "manifest.json").write_text(json.dumps(_manifest({"a": ok, "b": ok, "c": ok})))
    rows = []
    # Bins written in an order that is neither lexicographic nor by MAF.
    for bin_label in ("10–20%", "0.5–1%", "5–10%", "<0.5%"):
        rows += _rows("a", "r2", bin_label, [0.5, 0.5, 0.5])
    rows += _rows("a", "r2", "overall", [0.90, 0.92, 0.94])
    rows += _rows("b", "r2", "overall", [0.80, 0.85, 0.90])
    rows += _rows("b", "r2", "<0.5%", [0.5, math.nan, 0.7])
    rows += _rows("c", "r2", "overall", [0.70])
    rows += _rows("a", "nrd", "overall", [0.10, 0.10, 0.13])
    rows += _rows("b", "nrd", "overall", [0.05, 0.07, 0.09])
    rows += _rows("a", "coverage", "overall", [1.0, 0.9, 0.8])
    frame = pd.DataFrame(rows, columns=["imputer", "level", "replicate", "protocol", "bin", "bin_lo", "bin_hi",
                                        "metric", "value", "n_variants", "n_genotypes"])
    frame.to_csv(run / "metrics.csv", index=False)
    return run


def _one(summary, **where):
    mask = pd.Series(True, index=summary.index)
    for key, value in where.items():
        mask &= summary[key] == value
    assert mask.sum() == 1, where
    return summary[mask].iloc[0]


def test_summary_mean_and_sd_by_hand(hand_run):
    summary = summarise(load_run(hand_run))
    a = _one(summary, imputer="a", metric="r2", bin="overall")
    # mean (0.90 + 0.92 + 0.94) / 3 = 0.92; SD sqrt((0.02² + 0 + 0.02²) / 2) = 0.02
    assert a["mean"] == pytest.approx(0.92) and a["sd"] == pytest.approx(0.02)
    assert a["n_replicates"] == 3 and a["min"] == pytest.approx(0.90) and a["max"] == pytest.approx(0.94)
    assert a["n_genotypes"] == pytest.approx(110)  # (100 + 110 + 120) / 3
    assert a["coverage"] == pytest.approx(0.9)  # (1.0 + 0.9 + 0.8) / 3
    b = _one(summary, imputer="b", metric="r2", bin="overall")
    assert b["mean"] == pytest.approx(0.85) and b["sd"] == pytest.approx(0.05)
    # NaN replicate left out: mean (0.5 + 0.7) / 2 = 0.6, SD sqrt(2 * 0.1² / 1) = 0.141421...
    b_rare = _one(summary, imputer="b", metric="r2", bin="<0.5%")
    assert b_rare["n_replicates"] == 2
    assert b_rare["mean"] == pytest.approx(0.6) and b_rare["sd"] == pytest.approx(math.sqrt(0.02))
    # One replicate: no SD.
    c = _one(summary, imputer="c", metric="r2", bin="overall")
    assert c["n_replicates"] == 1 and math.isnan(c["sd"])
    a_nrd = _one(summary, imputer="a", metric="nrd", bin="overall")
    assert a_nrd["mean"] == pytest.approx(0.11) and a_nrd["sd"] == pytest.approx(math.sqrt(0.0003))


def test_best_marks_higher_or_lower_is_better(hand_run):
    summary = summarise(load_run(hand_run))
    assert _one(summary, imputer="a", metric="r2", bin="overall")["best"]
    assert not _one(summary, imputer="b", metric="r2", bin="overall")["best"]
    assert not _one(summary, imputer="c", metric="r2", bin="overall")["best"]
    # nrd: lower is better
    assert _one(summary, imputer="b", metric="nrd", bin="overall")["best"]
    assert not _one(summary, imputer="a", metric="nrd", bin="overall")["best"]
    # A row with a single imputer's value marks nothing.
    assert not _one(summary, imputer="a", metric="coverage", bin="overall")["best"]


def test_bins_ordered_by_maf_not_by_label(hand_run):
    summary = summarise(load_run(hand_run))
    bins = list(dict.fromkeys(summary[(summary["imputer"] == "a") & (summary["metric"] == "r2")]["bin"]))
    assert bins == ["overall", "<0.5%", "0.5–1%", "5–10%", "10–20%"]


def test_markdown_tables_by_hand(hand_run):
    results = load_run(hand_run)
    text = report_markdown(build_report(results, draw=False))
    overall = re.search(r"\| Dosage R² \|.*", text).group(0)
    assert "**0.9200 ± 0.0200**" in overall
    assert "0.8500 ± 0.0500" in overall and "**0.8500" not in overall
    assert "0.7000 ± – (n=1)" in overall
    nrd = re.search(r"\| Non-ref\. discordance \|.*", text).group(0)
    assert "**0.0700 ± 0.0200**" in nrd and "0.1100 ± 0.0173" in nrd
    rare = re.search(r"\| <0\.5% \| 7 \| 0\.5000 ± 0\.0000 \| (.*) \|", text)
    assert rare and "0.6000 ± 0.1414 (n=2)" in rare.group(1)
    # Protocol and MAF source on every result table, and the caption is in the Markdown.
    tables = build_report(results, draw=False).all_tables
    result_tables = [t for t in tables if t.key not in {"dataset", "qc", "settings", "versions", "masks", "imputers"}]
    assert len(result_tables) == 1 + 3 + 1 + 1  # overall; r2, nrd, coverage by bin; counts; runtime
    for table in result_tables:
        assert "Protocol" in table.caption and "MAF source: training split truth" in table.caption
        assert f"*{table.caption}*" in text


def _counts_table(run):
    tables = build_report(load_run(run), draw=False).all_tables
    return next(t for t in tables if t.key == "standard-L0.05-counts")


def test_counts_table_shared_or_per_imputer(hand_run):
    metrics = pd.read_csv(hand_run / "metrics.csv", keep_default_na=False, na_values=[""])
    extra = pd.DataFrame(_rows("b", "coverage", "overall", [1.0, 0.9, 0.8]) + _rows("c", "coverage", "overall", [0.9]),
                         columns=metrics.columns)
    same = pd.concat([metrics, extra])
    same.loc[same["imputer"] == "c", "n_genotypes"] = 110  # c: one replicate with the mean count
    same.to_csv(hand_run / "metrics.csv", index=False)
    table = _counts_table(hand_run)
    assert table.columns == ["MAF bin", "SNPs", "Scored genotypes", "Coverage"]
    overall = [c.text for c in table.rows[0]]
    assert overall == ["overall", "7", "110", "0.900"]  # (100 + 110 + 120) / 3; (1.0 + 0.9 + 0.8) / 3
    same.loc[same["imputer"] == "b", "n_genotypes"] += 30
    same.to_csv(hand_run / "metrics.csv", index=False)
    table = _counts_table(hand_run)
    assert table.columns[2:6] == ["a: scored genotypes", "a: coverage", "b: scored genotypes", "b: coverage"]
    assert [c.text for c in table.rows[0]][2:6] == ["110", "0.900", "140", "0.900"]


def test_summary_matches_a_plain_python_reference(tmp_path):
    run = write_synthetic_run(tmp_path / "syn" / "run", imputers=("major", "knn"), protocols=("standard", "paper"),
                              **SMALL, seed=3)
    raw = pd.read_csv(run / "metrics.csv", keep_default_na=False, na_values=[""])
    summary = summarise(load_run(run))
    groups: dict[tuple, list[float]] = {}
    for row in raw.itertuples(index=False):
        groups.setdefault((row.protocol, row.level, row.bin, row.metric, row.imputer), []).append(row.value)
    assert len(summary) == len(groups)
    for row in summary.itertuples(index=False):
        values = [v for v in groups[(row.protocol, row.level, row.bin, row.metric, row.imputer)] if v == v]
        assert row.mean == pytest.approx(statistics.fmean(values))
        assert row.sd == pytest.approx(statistics.stdev(values))


# ---------------------------------------------------------------------------------------------
# The whole report on a small synthetic run (written once for the module)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    run = write_synthetic_run(tmp_path_factory.mktemp("r") / "syn" / "run", imputers=("major", "knn"),
                              protocols=("standard", "paper"), **SMALL)
    html_path = write_report(run)
    return run, html_path


EXPECTED_FIGURES = ("fig_by_maf_standard.png", "fig_by_maf_paper.png", "fig_per_sample_r2.png",
                    "fig_confusion_L0.05.png", "fig_confusion_L0.15.png", "fig_runtime.png")


def test_every_file_written(full_report):
    run, html_path = full_report
    out = run / "report"
    assert html_path == out / "report.html"
    for name in EXPECTED_FIGURES + ("report.md", "summary.csv", "runtime.csv", "report.html"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


@pytest.mark.parametrize("name", EXPECTED_FIGURES)
def test_figures_are_png_at_150_dpi(full_report, name):
    image = Image.open(io.BytesIO((full_report[0] / "report" / name).read_bytes()))
    assert image.format == "PNG"
    assert min(image.info["dpi"]) >= 149.9
    assert image.size[0] > 600 and image.size[1] > 300


def test_html_is_self_contained_and_complete(full_report):
    run, html_path = full_report
    html = html_path.read_text(encoding="utf-8")
    tables = build_report(load_run(run), draw=False).all_tables
    assert len(tables) > 20
    for table in tables:
        assert f'id="{table.key}"' in html, table.key
    for key in FIGURE_KEYS:
        assert f'<figure id="{key}"' in html, key
    assert html.count('src="data:image/png;base64,') == len(FIGURE_KEYS)
    lowered = html.lower()
    assert "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\"" in html  # loads nothing
    for forbidden in ("http://", "https://", 'src="//', "src='//", "url(", "<script", "<link", "@import"):
        assert forbidden not in lowered, forbidden
    # Opens with dataset, QC, settings and mask hashes, before any result.
    first_result = html.index('id="s-results-standard"')
    for marker in ('id="dataset"', 'id="qc"', 'id="settings"', 'id="masks"', f"{0:064x}"):
        assert html.index(marker) < first_result, marker
    assert "Every imputer in this run finished" in html
    ids = re.findall(r'id="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    for link in re.findall(r'href="([^"]+)"', html):  # in-page links only, each to an existing id
        assert link.startswith("#") and link[1:] in ids


def test_summary_csv_is_tidy(full_report):
    run, _ = full_report
    summary = pd.read_csv(run / "report" / "summary.csv", keep_default_na=False, na_values=[""])
    assert {"protocol", "level", "bin", "metric", "imputer", "mean", "sd", "n_variants", "n_genotypes",
            "coverage", "best", "maf_source"} <= set(summary.columns)
    assert set(summary["protocol"]) == {"standard", "paper"}
    assert (summary["maf_source"] == "training split truth").all()
    runtime = pd.read_csv(run / "report" / "runtime.csv")
    assert list(runtime["imputer"]) == ["major", "knn"]
    assert runtime.loc[0, "fit_seconds"] == pytest.approx(1.0)
    # four units of 0.5, 0.51, 0.5, 0.51 seconds
    assert runtime.loc[0, "impute_seconds_total"] == pytest.approx(2.02)


# ---------------------------------------------------------------------------------------------
# Failed and partial runs


def test_failed_imputer_is_reported(tmp_path):
    run = write_synthetic_run(tmp_path / "syn" / "run", imputers=("major", "knn"), failed={"knn": 1}, **SMALL)
    html_path = write_report(run, formats="html,md")
    html = html_path.read_text(encoding="utf-8")
    assert "1 imputer(s) did not finish" in html
    assert "RuntimeError: synthetic failure of knn after 1 unit(s)" in html
    md = (run / "report" / "report.md").read_text(encoding="utf-8")
    assert "> **FAILED: knn**" in md
    # knn finished level 0.05 replicate 0 only: one replicate at 5%, "failed" at 15%.
    summary = summarise(load_run(run))
    knn = summary[summary["imputer"] == "knn"]
    assert set(knn["level"]) == {0.05} and (knn["n_replicates"] == 1).all()
    at_15 = md[md.index("standard protocol, 15% masked: overall"):]
    assert re.search(r"\| Dosage R² \| [^|]+ \| \*\*failed\*\* \|", at_15)
    assert not list((run / "report").glob("*.png"))  # png not requested


def test_run_without_metrics_still_reports(tmp_path):
    run = tmp_path / "syn" / "run"
    write_synthetic_run(run, imputers=("major",), **SMALL)
    for name in ("metrics.csv", "per_sample.csv", "confusion.csv"):
        (run / name).unlink()
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["imputers"]["major"].update(status="failed", error="MemoryError: out of memory", impute=[])
    del manifest["masks"], manifest["settings"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    html = write_report(run, formats="html").read_text(encoding="utf-8")
    assert "No metrics yet" in html and "MemoryError: out of memory" in html


def test_partial_status_and_imputer_missing_from_manifest(tmp_path):
    run = write_synthetic_run(tmp_path / "syn" / "run", imputers=("major", "knn"), **SMALL)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["imputers"]["major"]["status"] = "partial"
    del manifest["imputers"]["knn"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    results = load_run(run)
    assert results.imputers == ["major", "knn"]
    html = report_html(build_report(results, draw=False))
    assert "2 imputer(s) did not finish" in html and "not listed in manifest.json" in html


# ---------------------------------------------------------------------------------------------
# Compare two runs


def test_compare_two_runs(tmp_path):
    run_a = write_synthetic_run(tmp_path / "syn" / "a", imputers=("major",), seed=1, **SMALL)
    run_b = write_synthetic_run(tmp_path / "syn" / "b", imputers=("major",), seed=2, **SMALL)
    html_path = write_compare(run_a, run_b, formats="html,csv,png")
    out = html_path.parent
    assert out == run_a / "report" / "compare-synthetic-b"
    assert (out / "fig_compare_per_sample_r2.png").stat().st_size > 0
    html = html_path.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 1 and "https://" not in html
    matched = pd.read_csv(out / "compare.csv")
    assert len(matched) == 2 * 6  # levels x samples
    raw_a = pd.read_csv(run_a / "per_sample.csv")
    expect = raw_a[(raw_a["level"] == 0.05) & (raw_a["sample_id"] == "tsk_0")]["r2"]
    assert len(expect) == 2
    got = matched[(matched["level"] == 0.05) & (matched["sample_id"] == "tsk_0")]["r2_a"].iloc[0]
    assert got == pytest.approx((expect.iloc[0] + expect.iloc[1]) / 2)


def test_compare_without_common_samples(tmp_path):
    run_a = write_synthetic_run(tmp_path / "syn" / "a", imputers=("major",), **SMALL)
    run_b = write_synthetic_run(tmp_path / "syn" / "b", imputers=("knn",), **SMALL)
    with pytest.raises(ImpbenchError, match="no test sample in common"):
        write_compare(run_a, run_b)


# ---------------------------------------------------------------------------------------------
# User mistakes


def test_not_a_run_folder(tmp_path):
    with pytest.raises(ImpbenchError, match="no such folder"):
        load_run(tmp_path / "absent")
    with pytest.raises(ImpbenchError, match="not a run folder"):
        load_run(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ImpbenchError, match="manifest.json: not valid JSON"):
        load_run(tmp_path)


def test_metrics_with_missing_columns(tmp_path):
    run = write_synthetic_run(tmp_path / "syn" / "run", imputers=("major",), **SMALL)
    pd.read_csv(run / "metrics.csv").drop(columns=["bin_lo"]).to_csv(run / "metrics.csv", index=False)
    with pytest.raises(ImpbenchError, match=r"metrics.csv: missing column\(s\) bin_lo"):
        load_run(run)


def test_formats():
    assert parse_formats("md, html") == ("md", "html")
    with pytest.raises(ImpbenchError, match="unknown report format"):
        parse_formats("md,pdf")


def test_csv_only_writes_no_html(tmp_path):
    run = write_synthetic_run(tmp_path / "syn" / "run", imputers=("major",), **SMALL)
    out = write_report(run, tmp_path / "out", formats="csv")
    assert out == tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["runtime.csv", "summary.csv"]
