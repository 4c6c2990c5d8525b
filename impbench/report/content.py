"""The report as an ordered list of sections (tables and figures), rendered by ``markdown.py``
and ``html.py``."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from impbench.report import figures, overview
from impbench.report.load import RunResults
from impbench.report.style import PROTOCOL_NAMES, level_label, protocol_order
from impbench.report.tables import Table, failures, level_tables, runtime_frame, runtime_table, summarise


@dataclass
class FigureOut:
    key: str
    filename: str
    title: str
    caption: str
    png: bytes
    max_width_px: int | None = None  # HTML display width cap (the PNG keeps its resolution)


@dataclass
class Section:
    key: str
    title: str
    depth: int = 2
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[FigureOut] = field(default_factory=list)
    grid: bool = False  # lay the tables out side by side (HTML)
    collapsed: bool = False  # HTML: inside a closed <details> (long reference tables)


@dataclass
class Report:
    title: str
    subtitle: str
    failures: list[tuple[str, str, str, str]] | None  # (imputer, status, error, note); None: compare
    sections: list[Section]
    summary: pd.DataFrame
    runtime: pd.DataFrame

    @property
    def all_tables(self) -> list[Table]:
        return [t for s in self.sections for t in s.tables]

    @property
    def all_figures(self) -> list[FigureOut]:
        return [f for s in self.sections for f in s.figures]


def _display_width(png: bytes) -> int:
    """HTML display width of a figure: 120 CSS px per inch (its PNG holds 150 per inch), so that
    text keeps one size from figure to figure; wide figures still shrink to the page."""
    width_px = int.from_bytes(png[16:20], "big")  # PNG IHDR width
    return int(width_px * 120 / figures.DPI)


def _level_slug(level: float) -> str:
    return f"L{level:g}"


def build_report(results: RunResults, progress=None, draw: bool = True) -> Report:
    """Compute every table and draw every figure of one run's report (no figure if not ``draw``)."""
    step = progress or (lambda message: None)
    manifest = results.manifest
    summary = summarise(results)
    runtime = runtime_frame(results)
    qc_tables = overview.qc_tables(results)
    sections = [
        Section("overview", "Run overview", tables=[overview.dataset_table(results), overview.settings_table(results)],
                grid=True),
        Section("qc-masks", "QC summary and masks", tables=qc_tables[:1] + [overview.masks_table(results)],
                grid=True),
        *([Section("qc-steps", "QC steps", depth=3, tables=qc_tables[1:])] if len(qc_tables) > 1 else []),
        Section("imputers", "Imputers and software versions",
                tables=[overview.imputers_table(results), overview.versions_table(results)]),
    ]
    if results.metrics.empty:
        sections.append(Section("results", "Results", intro="No metrics yet: metrics.csv is absent or empty "
                                "(the run failed before scoring anything, or is still running)."))
    by_level = level_tables(results, summary)
    for protocol in protocol_order(summary["protocol"].unique()):
        step(f"figure: by MAF ({protocol})")
        png = figures.by_maf_figure(results, summary, protocol) if draw else None
        fig = [FigureOut(f"fig-by-maf-{protocol}", f"fig_by_maf_{protocol}.png",
                         f"Scores by MAF bin, {protocol} protocol",
                         "One row per masking level, one column per metric; lines: mean over replicates, "
                         "band: ±1 SD; grey bars: SNPs per bin (right axis); overall score per imputer in "
                         f"each panel. MAF source: {results.maf_source}.", png, _display_width(png))] if png else []
        sections.append(Section(f"results-{protocol}", f"Results: {PROTOCOL_NAMES.get(protocol, protocol)}",
                                figures=fig))
        for tables in (t for t in by_level if t.protocol == protocol):
            slug = f"{protocol}-{_level_slug(tables.level)}"
            sections.append(Section(slug, f"{protocol} protocol · {level_label(tables.level)} masked", depth=3,
                                    tables=[tables.overall, tables.counts]))
            sections.append(Section(f"{slug}-bins", f"{protocol} protocol · {level_label(tables.level)} masked · "
                                    "each metric by MAF bin", depth=4, tables=tables.by_bin,
                                    grid=len(results.imputers) <= 3, collapsed=True))

    step("figure: time and memory")
    png = figures.runtime_figure(results, runtime) if draw else None
    sections.append(Section("runtime", "Time and memory", tables=[runtime_table(results, runtime)],
                            figures=[FigureOut("fig-runtime", "fig_runtime.png", "Time and peak memory per imputer",
                                               "Fit and impute wall time and peak memory, from manifest.json.",
                                               png, _display_width(png))] if png else []))

    step("figure: per-sample R²")
    png = figures.per_sample_figure(results) if draw else None
    has_per_sample = results.per_sample is not None and not results.per_sample.empty
    sections.append(Section("per-sample", "Per-sample dosage R²",
                            intro="" if has_per_sample else "No per-sample results (per_sample.csv absent or empty).",
                            figures=[FigureOut("fig-per-sample", "fig_per_sample_r2.png", "Per-sample dosage R²",
                                               "One point per test sample (mean over replicates), coloured by "
                                               "cohort; boxes: quartiles. Compare two runs with "
                                               "`impbench report --compare RUN_A RUN_B`.", png,
                                               _display_width(png))] if png else []))

    confusion_figs = []
    has_confusion = results.confusion is not None and not results.confusion.empty
    if has_confusion and draw:
        for level in sorted(results.confusion["level"].unique()):
            step(f"figure: confusion matrices ({level_label(level)})")
            png = figures.confusion_figure(results, level)
            if png:
                confusion_figs.append(FigureOut(f"fig-confusion-{_level_slug(level)}",
                                                f"fig_confusion_{_level_slug(level)}.png",
                                                f"Confusion matrices, {level_label(level)} masked",
                                                "Rows: true genotype, normalised to 1; cells: row fraction and "
                                                "count, summed over replicates.", png,
                                                _display_width(png)))
    sections.append(Section("confusion", "Confusion matrices", figures=confusion_figs,
                            intro="" if has_confusion else "No confusion counts (confusion.csv absent or empty)."))

    dataset = manifest.get("dataset") or {}
    subtitle = " · ".join(x for x in (
        f"run {results.name}",
        f"created {manifest['created']}" if manifest.get("created") else "",
        f"impbench {manifest['impbench_version']}" if manifest.get("impbench_version") else "",
        f"{dataset['n_variants']:,} variants" if isinstance(dataset.get("n_variants"), int) else "",
    ) if x)
    return Report(f"impbench report: {results.dataset_name}", subtitle, failures(results), sections, summary, runtime)
