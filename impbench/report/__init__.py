"""``impbench report``: turn a results folder (``docs/results.md``) into tables, figures and one
self-contained HTML page.

Public API:

- ``write_report(run_dir, out_dir=None, formats=FORMATS) -> Path``: the report of one run,
  written to ``out_dir`` (default ``RUN_DIR/report``); returns the HTML file's path (or the
  output folder when ``html`` is not among ``formats``).
- ``write_compare(run_a, run_b, out_dir=None, formats=FORMATS) -> Path``: per-sample R² of two
  runs (e.g. a cohort-specific model against the ALL model), matched by sample.
- ``load_run(run_dir) -> RunResults``, ``summarise(results) -> DataFrame``.

Files written (per format): ``md``: report.md; ``csv``: summary.csv (tidy: one row per protocol
x level x bin x metric x imputer with mean, sd, min, max, counts, coverage, best) and
runtime.csv; ``png``: fig_by_maf_<protocol>.png, fig_per_sample_r2.png,
fig_confusion_L<level>.png, fig_runtime.png; ``html``: report.html (figures embedded).
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
from impbench.report.content import FigureOut, Report, Section, _display_width, build_report
from impbench.report.html import report_html
from impbench.report.load import RunResults, load_run
from impbench.report.markdown import report_markdown
from impbench.report.style import fmt_value, level_label
from impbench.report.tables import Cell, Table, summarise

__all__ = ["FORMATS", "load_run", "parse_formats", "summarise", "write_compare", "write_report", "RunResults"]

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
            atomic_write(out_dir / figure.filename, figure.png)
    if "csv" in formats:
        for name, frame in csvs.items():
            atomic_write(out_dir / name, frame.to_csv(index=False, float_format="%.6g"))
    if "md" in formats:
        atomic_write(out_dir / f"{stem}.md", report_markdown(report, link_figures="png" in formats))
    if "html" in formats:
        html_path = out_dir / f"{stem}.html"
        atomic_write(html_path, report_html(report, _footer()))
        return html_path
    return out_dir


def write_report(run_dir: str | Path, out_dir: str | Path | None = None,
                 formats: str | Iterable[str] = FORMATS,
                 progress: Callable[[str], None] | None = None) -> Path:
    """Write the report of one run; returns the HTML path (the folder if no ``html``).

    ``ImpbenchError`` if ``run_dir`` is missing or not a run folder, or a format is unknown.
    """
    formats = parse_formats(formats)
    results = load_run(run_dir)
    report = build_report(results, progress, draw="png" in formats or "html" in formats)
    out = _prepare_out(Path(out_dir) if out_dir is not None else results.run_dir / "report")
    return _write_outputs(report, out, formats, "report", {"summary.csv": report.summary, "runtime.csv": report.runtime})


def _compare_table(run_a: RunResults, run_b: RunResults, matched: pd.DataFrame) -> Table:
    table = Table("compare-summary", "Per-sample dosage R²: B against A",
                  f"A = {run_a.label} · B = {run_b.label} · standard protocol · samples matched by sample_id, "
                  "mean over replicates per run", ["Imputer", "Level", "Cohort", "Samples", "Mean R² A",
                                                   "Mean R² B", "Mean B − A", "Median B − A", "B higher"])
    order = run_a.imputers + [n for n in run_b.imputers if n not in run_a.imputers]
    for name in [n for n in order if n in set(matched["imputer"])]:
        for level in sorted(matched.loc[matched["imputer"] == name, "level"].unique()):
            part = matched[(matched["imputer"] == name) & (matched["level"] == level)].dropna(subset=["r2_a", "r2_b"])
            groups = [("all", part)] + ([(c, part[part["cohort"] == c]) for c in sorted(part["cohort"].unique())]
                                       if part["cohort"].nunique() > 1 else [])
            for cohort, group in groups:
                diff = (group["r2_b"] - group["r2_a"]).to_numpy(float)
                table.rows.append([Cell(name), Cell(level_label(level)), Cell(str(cohort)), Cell(f"{len(group):,}"),
                                   Cell(fmt_value(group["r2_a"].mean())), Cell(fmt_value(group["r2_b"].mean())),
                                   Cell(fmt_value(float(diff.mean()) if diff.size else np.nan)),
                                   Cell(fmt_value(float(np.median(diff)) if diff.size else np.nan)),
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
    sections = [
        Section("runs", "Runs compared", tables=[_run_table("run-a", "A", results_a),
                                                 _run_table("run-b", "B", results_b)], grid=True),
        Section("compare", "Per-sample dosage R²", figures=[FigureOut(
            "fig-compare", "fig_compare_per_sample_r2.png", "Per-sample dosage R², B against A",
            "One point per test sample (mean over replicates in each run), coloured by cohort; dashed: y = x. "
            "Points above the line: the sample is imputed better by B.", png, _display_width(png))] if png else [],
            tables=[_compare_table(results_a, results_b, matched)]),
    ]
    report = Report(f"impbench compare: {results_b.label} against {results_a.label}",
                    f"{len(matched):,} matched (imputer, level, sample) rows",
                    None, sections, pd.DataFrame(), pd.DataFrame())
    default = results_a.run_dir / "report" / f"compare-{results_b.dataset_name}-{results_b.name}"
    out = _prepare_out(Path(out_dir) if out_dir is not None else default)
    return _write_outputs(report, out, formats, "compare", {"compare.csv": matched})
