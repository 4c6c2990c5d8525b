"""The report's format-neutral model: sections of tables and figures, rendered by
``markdown.py`` and ``html.py``."""

from __future__ import annotations

import re

from dataclasses import dataclass, field

import pandas as pd

from impbench.report.tables import Table

#: PNG pixels per inch of every figure (``figures.DPI``); kept here so the model needs no matplotlib.
FIGURE_DPI = 150


@dataclass
class FigureOut:
    key: str
    filename: str
    title: str
    caption: str
    png: bytes
    max_width_px: int | None = None  # HTML display width cap (the PNG keeps its resolution)
    min_font_pt: float | None = None  # smallest text in the figure (points at FIGURE_DPI), when known

    def __post_init__(self) -> None:
        # Names can carry values read from a run folder (a protocol, a level): never a path.
        self.filename = safe_file_name(self.filename)


def safe_file_name(name: str) -> str:
    """``name`` as one plain file name: characters other than letters, digits, ``.``, ``_`` and
    ``-`` become ``_``, and leading dots are dropped, so that no value read from a run folder
    (``../x``, ``/etc``) can name a file outside the report folder."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)).lstrip(".")
    return cleaned or "_"


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
    alerts: list[str] = field(default_factory=list)  # warnings shown before the tables
    notes: list[str] = field(default_factory=list)  # information (not warnings), a list after the intro
    in_nav: bool = True  # listed in the HTML contents


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


def display_width(png: bytes) -> int:
    """HTML display width of a figure: 120 CSS px per inch (its PNG holds 150 per inch), so that
    text keeps one size from figure to figure; wide figures still shrink to the page."""
    width_px = int.from_bytes(png[16:20], "big")  # PNG IHDR width
    return int(width_px * 120 / FIGURE_DPI)
