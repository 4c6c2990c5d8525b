"""Markdown rendering of a ``Report`` (GitHub-flavoured tables; figures linked by file name)."""

from __future__ import annotations

import html

from impbench.report.model import Report
from impbench.report.tables import Table, is_numeric_text


def _escape(text: str) -> str:
    """A value as Markdown text that renders as itself: HTML escaped (a ``<script>`` in an
    imputer name, sample id or cohort stays text), table pipes and backslashes escaped, one line."""
    return (html.escape(str(text), quote=False).replace("\\", "\\\\").replace("|", "\\|")
            .replace("\n", " "))


def _cell_text(cell) -> str:
    if cell.items is not None:
        return _escape("; ".join(f"{k} = {v}" for k, v in cell.items)) or "–"
    return f"**{_escape(cell.text)}**" if (cell.bold or cell.alert) and cell.text else _escape(cell.text)


def table_markdown(table: Table, depth: int = 4) -> str:
    lines = [f"{'#' * depth} {_escape(table.title)}", "", f"*{_escape(table.caption)}*", ""]
    lines.append("| " + " | ".join(_escape(c) for c in table.columns) + " |")
    numeric = [i > 0 and bool(table.rows) and all(is_numeric_text(row[i].text) for row in table.rows if i < len(row))
               for i in range(len(table.columns))]
    lines.append("| " + " | ".join("---:" if right else "---" for right in numeric) + " |")
    for row in table.rows:
        cells = [_cell_text(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    if not table.rows:
        lines.append("| " + " | ".join("–" for _ in table.columns) + " |")
    if table.note:
        lines += ["", _escape(table.note)]
    return "\n".join(lines) + "\n"


def _text(text: str) -> str:
    """Prose (a title, sentence, note) with HTML escaped, so no value read from a run folder can
    put markup into report.md."""
    return html.escape(str(text), quote=False)


def _failures(report: Report) -> list[str]:
    out = []
    for name, status, error, note in report.failures or []:
        label = "NOT APPLICABLE (not a failure)" if status == "not_applicable" else status.upper()
        out.append(f"> **{label}: {_text(name)}**" + (f" — {_text(error)}" if error else "")
                   + (f" — {_text(note)}" if note else ""))
        out.append(">")
    if any(status != "not_applicable" for _, status, _, _ in report.failures or []):
        out += ["> Tables and figures show what exists for these imputers.", ""]
    elif report.failures:
        out.append("")
    return out


def _section(section, link_figures: bool) -> list[str]:
    out = [f"{'#' * section.depth} {_text(section.title)}", ""]
    for alert in section.alerts:
        out += [f"> **Warning:** {_text(alert)}", ">"]
    if section.alerts:
        out[-1] = ""
    if section.intro:
        out += [_text(section.intro), ""]
    if section.notes:
        out += [f"- {_text(n)}" for n in section.notes] + [""]
    for figure in section.figures:
        if link_figures:
            out += [f"![{_text(figure.title)}]({figure.filename})", ""]
        out += [f"*{_text(figure.caption)}*", ""]
    for table in section.tables:
        out += [table_markdown(table, min(section.depth + 1, 6)), ""]
    return out


def report_markdown(report: Report, link_figures: bool = True) -> str:
    """The whole report, the answer (the first section) first, then failures, then the rest;
    figure links point to PNGs beside the Markdown file. Every value is HTML-escaped."""
    out = [f"# {_text(report.title)}", "", _text(report.subtitle), ""]
    sections = list(report.sections)
    if sections:
        out += _section(sections[0], link_figures)
    out += _failures(report)
    for section in sections[1:]:
        out += _section(section, link_figures)
    return "\n".join(out).rstrip() + "\n"
