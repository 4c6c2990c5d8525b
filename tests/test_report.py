"""impbench.report: summary statistics, tables, figures, HTML, failed and partial runs."""

from __future__ import annotations

import io
import json
import math
import re

import pandas as pd
import pytest
from PIL import Image

from impbench.errors import ImpbenchError
from impbench.report import load_run, parse_formats, summarise, write_compare, write_report
from impbench.report.content import build_report
from impbench.bench.results import COLUMNS
from impbench.report.html import report_html
from impbench.report.markdown import report_markdown
from impbench.report.paired import PairIndex, Ranked, rank
from impbench.report.verdict import level_sentence
from impbench.testing.synthetic import write_synthetic_run

SMALL = dict(levels=(0.05, 0.15), replicates=2, bin_edges=(0, 0.01, 0.05, 0.5), n_samples=6)
FIGURE_KEYS = ("fig-forest", "fig-cohorts", "fig-by-maf-standard", "fig-by-maf-standard-gt-r2",
               "fig-by-maf-standard-concordance", "fig-by-maf-standard-iqs", "fig-by-maf-paper", "fig-calibration",
               "fig-quality", "fig-per-sample", "fig-confusion-L0.05", "fig-runtime")

# ---------------------------------------------------------------------------------------------
# Hand-checkable numbers: metrics.csv and pairs.csv written by hand


def _manifest(imputers: dict[str, dict]) -> dict:
    return {"impbench_version": "0.1.0", "dataset": {"name": "hand", "n_variants": 10},
            "maf_source": "training split truth",
            "settings": {"levels": [0.05], "replicates": 3, "protocols": ["standard"]},
            "masks": [{"level": 0.05, "replicate": r, "sha256": f"{r:064x}", "n_masked": 5} for r in range(3)],
            "imputers": imputers}


BINS = {"overall": (0.0, 0.5), "<0.5%": (0.0, 0.005), "10–20%": (0.1, 0.2), "0.5–1%": (0.005, 0.01),
        "rare (<1%)": (0.0, 0.01)}
# (imputer, bin, metric) -> (value, ci_low, ci_high)
VALUES = {
    ("a", "overall", "r2"): (0.92, 0.90, 0.94), ("b", "overall", "r2"): (0.85, 0.80, 0.90),
    ("c", "overall", "r2"): (0.91, 0.89, 0.93),
    ("a", "rare (<1%)", "r2"): (0.5, 0.45, 0.55), ("b", "rare (<1%)", "r2"): (0.6, 0.55, 0.65),
    ("c", "rare (<1%)", "r2"): (0.4, 0.35, 0.45),
    ("a", "10–20%", "r2"): (0.95, 0.94, 0.96), ("a", "<0.5%", "r2"): (0.3, 0.2, 0.4),
    ("a", "0.5–1%", "r2"): (0.6, 0.5, 0.7),
    ("a", "overall", "nrd"): (0.11, 0.10, 0.12), ("b", "overall", "nrd"): (0.07, 0.06, 0.08),
    ("a", "overall", "concordance"): (0.9, 0.88, 0.92), ("b", "overall", "concordance"): (0.9, 0.88, 0.92),
    ("a", "overall", "coverage"): (0.9, math.nan, math.nan), ("b", "overall", "coverage"): (1.0, math.nan, math.nan),
}
# (a, b, bin, metric) -> (difference a - b, ci_low, ci_high)
PAIRS = {
    ("a", "b", "overall", "r2"): (0.07, 0.05, 0.09), ("a", "c", "overall", "r2"): (0.01, -0.01, 0.03),
    ("b", "c", "overall", "r2"): (-0.06, -0.08, -0.04),
    ("a", "b", "rare (<1%)", "r2"): (-0.1, -0.2, -0.05), ("a", "c", "rare (<1%)", "r2"): (0.1, 0.05, 0.2),
    ("b", "c", "rare (<1%)", "r2"): (0.2, 0.1, 0.3),
    ("a", "b", "overall", "nrd"): (0.04, 0.02, 0.06), ("a", "b", "overall", "concordance"): (0.0, 0.0, 0.0),
}


@pytest.fixture()
def hand_run(tmp_path):
    run = tmp_path / "hand" / "run"
    run.mkdir(parents=True)
    ok = {"status": "ok", "error": None}
    (run / "manifest.json").write_text(json.dumps(_manifest({"a": ok, "b": ok, "c": ok})))
    rows = [(imp, 0.05, "standard", "all", b, *BINS[b], metric, *v, 3, 7, 100)
            for (imp, b, metric), v in VALUES.items()]
    pd.DataFrame(rows, columns=list(COLUMNS["metrics"])).to_csv(run / "metrics.csv", index=False)
    pairs = [(x, y, 0.05, "standard", "all", b, metric, VALUES[(x, b, metric)][0], VALUES[(y, b, metric)][0], *d)
             for (x, y, b, metric), d in PAIRS.items()]
    pd.DataFrame(pairs, columns=list(COLUMNS["pairs"])).to_csv(run / "pairs.csv", index=False)
    return run


def _one(summary, **where):
    mask = pd.Series(True, index=summary.index)
    for key, value in where.items():
        mask &= summary[key] == value
    assert mask.sum() == 1, where
    return summary[mask].iloc[0]


def test_pair_index_either_direction(hand_run):
    index = PairIndex(load_run(hand_run).pairs)
    key = (0.05, "standard", "all", "overall", "r2")
    assert index.difference("a", "b", *key) == pytest.approx((0.07, 0.05, 0.09))
    assert index.difference("b", "a", *key) == pytest.approx((-0.07, -0.09, -0.05))
    assert index.difference("a", "z", *key) is None


def test_rank_best_tied_worse(hand_run):
    results = load_run(hand_run)
    index = PairIndex(results.pairs)
    ranking = rank(results.metrics, index, results.imputers, 0.05, "standard", "all", "overall", "r2")
    assert [(r.imputer, r.status) for r in ranking] == [("a", "best"), ("c", "tied"), ("b", "worse")]
    assert (ranking[1].diff, ranking[1].diff_low, ranking[1].diff_high) == pytest.approx((-0.01, -0.03, 0.01))
    rare = rank(results.metrics, index, results.imputers, 0.05, "standard", "all", "rare (<1%)", "r2")
    assert [(r.imputer, r.status) for r in rare] == [("b", "best"), ("a", "worse"), ("c", "worse")]
    # A slow reference: tied iff the paired CI of (other - best) covers 0.
    for entry in ranking[1:]:
        low, high = sorted(-x for x in PAIRS[tuple(sorted((ranking[0].imputer, entry.imputer))) + ("overall", "r2")][1:])
        if entry.imputer < ranking[0].imputer:
            low, high = -high, -low
        assert (entry.status == "tied") == (low <= 0 <= high)


def test_bold_only_where_paired_ci_excludes_the_others(hand_run):
    summary = summarise(load_run(hand_run))
    # a is highest overall but tied with c (paired CI covers 0): nobody bold.
    assert not summary[(summary["bin"] == "overall") & (summary["metric"] == "r2")]["best"].any()
    assert _one(summary, imputer="b", metric="r2", bin="rare (<1%)")["best"]
    assert _one(summary, imputer="b", metric="nrd", bin="overall")["best"]  # lower is better
    assert not _one(summary, imputer="a", metric="nrd", bin="overall")["best"]
    # Identical values: no bold.
    assert not summary[summary["metric"] == "concordance"]["best"].any()
    # No paired rows (coverage): no bold.
    assert not summary[summary["metric"] == "coverage"]["best"].any()


def test_bins_ordered_by_maf_then_classes(hand_run):
    summary = summarise(load_run(hand_run))
    bins = list(dict.fromkeys(summary[(summary["imputer"] == "a") & (summary["metric"] == "r2")]["bin"]))
    assert bins == ["overall", "<0.5%", "0.5–1%", "10–20%", "rare (<1%)"]
    assert load_run(hand_run).bins == ["<0.5%", "0.5–1%", "10–20%"]


def test_verdict_by_hand(hand_run):
    results = load_run(hand_run)
    report = build_report(results, draw=False)
    level = next(s for s in report.sections if s.key == "verdict-L0.05")
    assert level.intro == "At 5% masking a and c are tied best overall; for rare variants b is best."
    table = level.tables[0]
    # an older run folder (no r2_bin_mean): ranked on pooled r2, and the report says so
    assert table.columns == ["Rank", "Imputer", "Overall: Pooled dosage R² (older run: no per-bin mean)",
                             "Difference from the best", "rare (<1%)"]
    notes = next(s for s in report.sections if s.key == "verdict-notes")
    assert any("has no r2_bin_mean" in a and "pooled dosage R²" in a for a in notes.alerts)
    assert "ranked on pooled R² (older run folder)" in report.sections[0].intro
    rows = [[c.text for c in row] for row in table.rows]
    assert rows[0][:3] == ["1", "a", "0.920 [0.900, 0.940] · best"]
    assert rows[1][:4] == ["1=", "c", "0.910 [0.890, 0.930] · tied", "-0.010 [-0.030, +0.010]"]
    assert rows[2][:4] == ["3", "b", "0.850 [0.800, 0.900]", "-0.070 [-0.090, -0.050]"]
    assert rows[2][4] == "0.600 [0.550, 0.650] · best" and table.rows[2][4].bold
    text = report_markdown(report)
    assert text.index("## Verdict") < text.index("## Run overview")
    overall = re.search(r"\| Dosage R² \(minor allele\) \|.*", text).group(0)
    assert "**" not in overall  # a vs c: CI covers 0
    nrd = re.search(r"\| Non-ref\. discordance \|.*", text).group(0)
    assert "**0.070 [0.060, 0.080]**" in nrd and "0.110 [0.100, 0.120]" in nrd


def test_verdict_sentence_every_class():
    ranks = {"overall": [Ranked("x", 0.9, 0.8, 1.0, "best"), Ranked("y", 0.5, 0.4, 0.6, "worse"),
                         Ranked("z", 0.49, 0.4, 0.6, "worse")],
             "rare (<1%)": [Ranked("x", 0.9, 0.8, 1.0, "best"), Ranked("z", 0.5, 0.4, 0.6, "worse"),
                            Ranked("y", 0.49, 0.4, 0.6, "worse")]}
    pairs = pd.DataFrame([("y", "z", 0.05, "standard", "all", "rare (<1%)", "r2_bin_mean", 0.49, 0.5, -0.01, -0.02,
                           0.01)],
                         columns=list(COLUMNS["pairs"]))
    sentence = level_sentence(0.05, ranks, PairIndex(pairs))
    assert sentence == ("At 5% masking x is best overall and in every MAF class; "
                        "y and z cannot be told apart for rare variants.")


# ---------------------------------------------------------------------------------------------
# The whole report on a small synthetic run (written once for the module)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    run = write_synthetic_run(tmp_path_factory.mktemp("r") / "syn" / "run", imputers=("major", "knn"),
                              protocols=("standard", "paper"), **SMALL)
    html_path = write_report(run)
    return run, html_path


EXPECTED_FIGURES = ("fig_forest.png", "fig_cohorts.png", "fig_by_maf_standard.png", "fig_by_maf_paper.png",
                    "fig_calibration.png", "fig_quality.png", "fig_per_sample_r2.png", "fig_confusion_L0.05.png",
                    "fig_runtime.png")


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
    # Opens with the verdict, before any provenance; dataset, QC, settings and masks before the
    # detailed results.
    verdict = html.index('id="s-verdict"')
    first_result = html.index('id="s-results-standard"')
    for marker in ('id="dataset"', 'id="qc"', 'id="settings"', 'id="masks"', f"{0:064x}"):
        assert verdict < html.index(marker) < first_result, marker
    assert "Every imputer in this run finished" in html
    ids = re.findall(r'id="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    for link in re.findall(r'href="([^"]+)"', html):  # in-page links only, each to an existing id
        assert link.startswith("#") and link[1:] in ids


def test_summary_csv_is_tidy(full_report):
    run, _ = full_report
    summary = pd.read_csv(run / "report" / "summary.csv", keep_default_na=False, na_values=[""])
    assert {"protocol", "level", "cohort", "bin", "metric", "imputer", "value", "ci_low", "ci_high",
            "replicate_sd", "n_variants", "n_genotypes", "coverage", "best", "maf_source"} <= set(summary.columns)
    metrics = pd.read_csv(run / "metrics.csv", keep_default_na=False, na_values=[""])
    assert len(summary) == len(metrics)
    # replicate_sd: the sample SD over replicates.csv's rows, checked against statistics.stdev.
    import statistics
    replicates = pd.read_csv(run / "replicates.csv", keep_default_na=False, na_values=[""])
    one = replicates[(replicates["imputer"] == "knn") & (replicates["level"] == 0.05) & (replicates["bin"] == "overall")
                     & (replicates["metric"] == "r2") & (replicates["protocol"] == "standard")]["value"]
    row = summary[(summary["imputer"] == "knn") & (summary["level"] == 0.05) & (summary["bin"] == "overall")
                  & (summary["metric"] == "r2") & (summary["protocol"] == "standard") & (summary["cohort"] == "all")]
    assert row["replicate_sd"].iloc[0] == pytest.approx(statistics.stdev(one))
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
    assert re.search(r"\| Dosage R² \(minor allele\) \| [^|]+ \| \*\*failed\*\* \|", at_15)
    assert not list((run / "report").glob("*.png"))  # png not requested


def test_run_without_metrics_still_reports(tmp_path):
    run = tmp_path / "syn" / "run"
    write_synthetic_run(run, imputers=("major",), **SMALL)
    for name in ("metrics.csv", "pairs.csv", "replicates.csv", "per_sample.csv", "confusion.csv", "calibration.csv",
                 "variant_quality.csv"):
        (run / name).unlink()
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["imputers"]["major"].update(status="failed", error="MemoryError: out of memory", impute=[])
    del manifest["masks"], manifest["settings"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    html = write_report(run, formats="html").read_text(encoding="utf-8")
    assert "No metrics yet" in html and "MemoryError: out of memory" in html and "No verdict" in html


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


def test_compare_paired_ci_wilcoxon_and_mask_warning(tmp_path):
    from scipy.stats import wilcoxon

    from impbench.report import paired_sample_stats

    diff = [0.01, 0.03, -0.005, 0.02, 0.04, 0.015]
    mean, low, high, p = paired_sample_stats(diff, n_boot=2000, seed=1)
    assert mean == pytest.approx(sum(diff) / len(diff))
    assert low < mean < high and p == pytest.approx(wilcoxon(diff).pvalue)
    assert math.isnan(paired_sample_stats([0.0, 0.0])[3])  # no difference: no test
    run_a = write_synthetic_run(tmp_path / "syn" / "a", imputers=("major",), seed=1, cohorts=("AA",), **SMALL)
    run_b = write_synthetic_run(tmp_path / "syn" / "b", imputers=("major",), seed=2, cohorts=("AA",), **SMALL)
    md = write_compare(run_a, run_b, formats="md,html").with_suffix(".md").read_text(encoding="utf-8")
    assert "| major | 5% | AA | 6 |" in md and "all (" not in md  # the real cohort, not "all"
    assert "masks differ" not in md
    manifest = json.loads((run_b / "manifest.json").read_text())
    manifest["masks"][0]["sha256"] = "f" * 64
    (run_b / "manifest.json").write_text(json.dumps(manifest))
    md = write_compare(run_a, run_b, formats="md").joinpath("compare.md").read_text(encoding="utf-8")
    assert "masks differ (5% replicate 0)" in md


def test_flags_on_results_not_to_trust(tmp_path):
    run = write_synthetic_run(tmp_path / "syn" / "run", imputers=("major", "knn", "biunet", "scda"),
                              stop_reason={"biunet": "epochs", "scda": "converged"}, coverage={"knn": 0.9},
                              mask_warnings=(0.15,), **SMALL)
    html = write_report(run, formats="html").read_text(encoding="utf-8")
    warn = html[html.index('class="warn"'):]
    warn = warn[:warn.index("</div>")]
    assert "biunet stopped at its epoch budget" in warn and "scda stopped" not in warn
    assert "knn covered 90.0% of the variants" in warn and "major covered" not in warn
    assert "Masks at 15% (replicates 0, 1)" in warn and "Masks at 5%" not in warn
    plain = write_synthetic_run(tmp_path / "syn" / "plain", imputers=("major", "knn"), **SMALL)
    assert 'class="warn"' not in write_report(plain, formats="html").read_text(encoding="utf-8")


def test_options_info_whole_and_qc_labels(tmp_path):
    run = write_synthetic_run(tmp_path / "syn" / "run", imputers=("major", "knn"), **SMALL)
    manifest = json.loads((run / "manifest.json").read_text())
    long_text = "mask_" + "x" * 400 + "_end"
    manifest["imputers"]["knn"]["options"] = {f"opt{i}": i for i in range(9)}
    manifest["imputers"]["knn"]["info"] = {"note": long_text}
    (run / "manifest.json").write_text(json.dumps(manifest))
    html = write_report(run, formats="html").read_text(encoding="utf-8")
    assert long_text in html and "…" not in html[html.index('id="imputers"'):html.index('id="versions"')]
    assert "<details><summary>9 entries</summary>" in html and "<dt>opt8</dt><dd>8</dd>" in html
    qc = html[html.index('id="qc"'):]
    assert "<td>Contig</td>" in qc and "info.contig" not in qc and "HWE test scope" in qc


def test_run_summary_names_imputers_and_next_command(tmp_path):
    from rich.console import Console

    from impbench.report import run_summary

    run = write_synthetic_run(tmp_path / "syn" / "run", imputers=("major", "knn"), **SMALL)
    console = Console(width=140, record=True)
    console.print(run_summary(run))
    text = console.export_text()
    assert "Headline R² (mean over MAF bins), 5% masking" in text and "rare (<1%)" in text and "knn" in text
    assert f"Next: impbench report {run}" in text and f"Run folder: {run}" in text
    assert text.index("knn") < text.index("major")  # ranked: knn is the better synthetic imputer
    for name in ("metrics.csv", "pairs.csv"):
        (run / name).unlink()
    console = Console(width=140, record=True)
    console.print(run_summary(run))
    assert "No dosage R² to summarise yet" in console.export_text()


def test_not_applicable_imputer_is_an_info_line_not_a_failure(tmp_path):
    import json

    run = write_synthetic_run(tmp_path / "syn" / "run", imputers=("major", "knn"), levels=(0.05,), replicates=2)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["imputers"]["minimac4"] = {"status": "not_applicable", "options": {}, "impute": [], "info": {},
                                        "error": "imputer 'minimac4' does not apply to masking scheme 'uniform'"}
    (run / "manifest.json").write_text(json.dumps(manifest))
    html = write_report(run, formats=("html",)).read_text()
    assert "did not finish" not in html and "Not applicable to this masking scheme" in html
    assert "Every imputer that applies to this run finished" in html
