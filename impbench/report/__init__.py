"""``impbench report``: turn a results folder (``docs/results.md``) into tables, figures and one
self-contained HTML page.

Public API:

- ``write_report(run_dir, out_dir=None, formats=FORMATS) -> Path``: the report of one run,
  written to ``out_dir`` (default ``RUN_DIR/report``); returns the HTML file's path (or the
  output folder when ``html`` is not among ``formats``).
- ``write_compare(run_a, run_b, out_dir=None, formats=FORMATS) -> Path``: per-sample R² of two
  runs (e.g. a cohort-specific model against the ALL model), matched by sample.
- ``load_run(run_dir) -> RunResults``, ``summarise(results) -> DataFrame``.

- ``run_summary(run_dir)``: the rich summary ``impbench run`` prints at its end.

The report opens with the answer (``recommend.py``, ``verdict.py``): one recommendation
sentence per MAF class with the margin and each imputer's cost, then one compact table across
levels (the headline ``r2_bin_mean`` with CIs, n_eff, soft or hard dosages, seconds and peak
memory); the notes (failures, warnings, soft/hard dosages, what the rare class covers) below it,
collapsed; per level a ranking with paired differences; a forest plot; per-cohort rankings.
Files written (per format): ``md``: report.md; ``csv``: summary.csv
(tidy: metrics.csv with replicate SD, coverage and ``best``) and runtime.csv; ``png``:
fig_forest.png, fig_cohorts.png, fig_by_maf_<protocol>.png (dosage R²; more metrics in
fig_by_maf_<protocol>_<metric>.png), fig_calibration.png,
fig_quality.png, fig_per_sample_r2.png, fig_confusion_L<first level>.png, fig_runtime.png;
``html``: report.html (figures embedded).
Every file is written under a temporary name and renamed, so none is ever half-written.
"""

from __future__ import annotations


from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from impbench import __version__
from impbench.errors import ImpbenchError
from impbench.files import atomic_write
from impbench.report import figures, overview
from impbench.report.content import build_report
from impbench.report.model import safe_file_name
from impbench.report.model import FigureOut, Report, Section, display_width as _display_width
from impbench.report.summary import run_summary  # noqa: F401
from impbench.report.html import report_html
from impbench.report.load import RunResults, load_run
from impbench.report.markdown import report_markdown
from impbench.report.style import fmt_diff, fmt_value, level_label
from impbench.report.tables import Cell, Table, summarise
from impbench.report.verdict import DEFAULT_MARGIN, check_margin

__all__ = ["FORMATS", "load_run", "paired_sample_stats", "parse_formats", "run_summary", "summarise", "write_compare", "write_report", "RunResults"]

FORMATS = ("md", "csv", "html", "png")


def parse_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """``"md,csv"`` or an iterable of names -> a tuple of known format names."""
    names = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats)]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise ImpbenchError(f"unknown report format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    if not names:
        raise ImpbenchError(f"no report format given; choose from {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(names))


def _prepare_out(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImpbenchError(f"{out_dir}: cannot create the report folder ({exc.strerror})") from exc
    return out_dir


def _footer() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"Written by impbench {__version__} on {stamp}. Self-contained page: no script, no network access."


def _write_outputs(report: Report, out_dir: Path, formats: tuple[str, ...], stem: str,
                   csvs: dict[str, pd.DataFrame]) -> Path:
    if "png" in formats:
        for figure in report.all_figures:
            atomic_write(out_dir / safe_file_name(figure.filename), figure.png)
    if "csv" in formats:
        for name, frame in csvs.items():
            atomic_write(out_dir / safe_file_name(name), frame.to_csv(index=False, float_format="%.6g"))
    if "md" in formats:
        atomic_write(out_dir / f"{stem}.md", report_markdown(report, link_figures="png" in formats))
    if "html" in formats:
        html_path = out_dir / f"{stem}.html"
        atomic_write(html_path, report_html(report, _footer()))
        return html_path
    return out_dir


def write_report(run_dir: str | Path, out_dir: str | Path | None = None,
                 formats: str | Iterable[str] = FORMATS,
                 progress: Callable[[str], None] | None = None, margin: float = DEFAULT_MARGIN) -> Path:
    """Write the report of one run; returns the HTML path (the folder if no ``html``).

    margin : R² by which one imputer must beat another (lower bound of the paired 95% CI).
    ``ImpbenchError`` if ``run_dir`` is missing or not a run folder, a format is unknown or the
    margin is not in [0, 1).
    """
    formats = parse_formats(formats)
    margin = check_margin(margin)
    results = load_run(run_dir)
    report = build_report(results, progress, draw="png" in formats or "html" in formats, margin=margin)
    out = _prepare_out(Path(out_dir) if out_dir is not None else results.run_dir / "report")
    return _write_outputs(report, out, formats, "report", {"summary.csv": report.summary, "runtime.csv": report.runtime})


N_BOOT_COMPARE = 1000


def paired_sample_stats(diff: np.ndarray, n_boot: int = N_BOOT_COMPARE, seed: int = 0) -> tuple[float, float, float, float]:
    """Mean of per-sample differences, its 95% bootstrap CI (resampling samples) and the
    two-sided Wilcoxon signed-rank p-value (NaN with fewer than two samples or all zero).

    diff : float (n_samples,), B - A per sample (NaN left out)."""
    from scipy.stats import wilcoxon

    from impbench.scoring.bootstrap import resample_indices

    diff = np.asarray(diff, dtype=float)
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return (np.nan,) * 4
    means = diff[resample_indices(diff.size, n_boot, seed)].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5]) if diff.size > 1 else (np.nan, np.nan)
    p = float(wilcoxon(diff).pvalue) if diff.size > 1 and np.any(diff != 0) else np.nan
    return float(diff.mean()), float(low), float(high), p


def mask_differences(run_a: RunResults, run_b: RunResults) -> list[str]:
    """(level, replicate) masks whose SHA-256 differs between two runs, or present in one only."""
    def masks(run):
        return {(m.get("level"), m.get("replicate")): m.get("sha256") for m in run.manifest.get("masks") or []
                if isinstance(m, dict)}
    a, b = masks(run_a), masks(run_b)
    return [f"{level_label(level) if isinstance(level, (int, float)) else level} replicate {rep}"
            for level, rep in sorted(set(a) | set(b), key=str) if a.get((level, rep)) != b.get((level, rep))]


def _compare_table(run_a: RunResults, run_b: RunResults, matched: pd.DataFrame) -> Table:
    table = Table("compare-summary", "Per-sample dosage R²: B against A",
                  f"A = {run_a.label} · B = {run_b.label} · standard protocol · samples matched by sample_id, "
                  "mean over replicates per run; B − A: mean of the per-sample differences with a 95% bootstrap CI "
                  "over samples; p: Wilcoxon signed-rank test (two-sided)",
                  ["Imputer", "Level", "Cohort", "Samples", "Mean R² A", "Mean R² B", "Mean B − A [95% CI]",
                   "Wilcoxon p", "B higher"],
                  note="Bold: the CI of B − A excludes 0.")
    order = run_a.imputers + [n for n in run_b.imputers if n not in run_a.imputers]
    for name in [n for n in order if n in set(matched["imputer"])]:
        for level in sorted(matched.loc[matched["imputer"] == name, "level"].unique()):
            part = matched[(matched["imputer"] == name) & (matched["level"] == level)].dropna(subset=["r2_a", "r2_b"])
            cohorts = sorted(part["cohort"].unique())
            label = cohorts[0] if len(cohorts) == 1 else f"all ({len(cohorts)} cohorts)"
            groups = [(label, part)] + ([(c, part[part["cohort"] == c]) for c in cohorts] if len(cohorts) > 1 else [])
            for cohort, group in groups:
                diff = (group["r2_b"] - group["r2_a"]).to_numpy(float)
                mean, low, high, p = paired_sample_stats(diff)
                apart = np.isfinite(low) and (low > 0 or high < 0)
                table.rows.append([Cell(name), Cell(level_label(level)), Cell(str(cohort)), Cell(f"{len(group):,}"),
                                   Cell(fmt_value(group["r2_a"].mean())), Cell(fmt_value(group["r2_b"].mean())),
                                   Cell(fmt_diff(mean, low, high, 4), bold=bool(apart)),
                                   Cell("n/a" if p != p else f"{p:.3g}"),
                                   Cell(f"{int((diff > 0).sum())} of {diff.size}")])
    return table


def _run_table(key: str, prefix: str, results: RunResults) -> Table:
    table = overview.dataset_table(results)
    table.key, table.title = key, f"{prefix}: {results.label}"
    return table


def write_compare(run_a: str | Path, run_b: str | Path, out_dir: str | Path | None = None,
                  formats: str | Iterable[str] = FORMATS) -> Path:
    """Per-sample R² of run B against run A (the paper's Figure 2), matched by imputer, level and
    sample_id. Default ``out_dir``: ``RUN_A/report/compare-<dataset B>-<run B>``. Returns the HTML
    path (the folder if no ``html``). ``ImpbenchError`` if either folder is not a run folder or
    the two share no (imputer, level, sample)."""
    formats = parse_formats(formats)
    results_a, results_b = load_run(run_a), load_run(run_b)
    for results in (results_a, results_b):
        if results.per_sample is None or results.per_sample.empty:
            raise ImpbenchError(f"{results.run_dir}: no per-sample results (per_sample.csv absent or empty)")
    matched = figures.compare_frame(results_a, results_b)
    if matched.empty:
        raise ImpbenchError(f"{results_a.run_dir} and {results_b.run_dir}: no test sample in common "
                            "for any imputer and masking level (matched by imputer, level, sample_id)")
    png = figures.compare_figure(results_a, results_b, matched)
    differ = mask_differences(results_a, results_b)
    warnings = ([f"The two runs' masks differ ({', '.join(differ[:6])}{' …' if len(differ) > 6 else ''}): "
                 "the per-sample differences mix model and mask effects."] if differ else [])
    sections = [
        Section("runs", "Runs compared", tables=[_run_table("run-a", "A", results_a),
                                                 _run_table("run-b", "B", results_b)], grid=True),
        Section("compare", "Per-sample dosage R²", alerts=warnings, figures=[FigureOut(
            "fig-compare", "fig_compare_per_sample_r2.png", "Per-sample dosage R², B against A",
            "One point per test sample (mean over replicates in each run), coloured by cohort; dashed: y = x. "
            "Points above the line: the sample is imputed better by B.", png, _display_width(png))] if png else [],
            tables=[_compare_table(results_a, results_b, matched)]),
    ]
    report = Report(f"impbench compare: {results_b.label} against {results_a.label}",
                    f"{len(matched):,} matched (imputer, level, sample) rows",
                    None, sections, pd.DataFrame(), pd.DataFrame())
    default = results_a.run_dir / "report" / safe_file_name(f"compare-{results_b.dataset_name}-{results_b.name}")
    out = _prepare_out(Path(out_dir) if out_dir is not None else default)
    return _write_outputs(report, out, formats, "compare", {"compare.csv": matched})
