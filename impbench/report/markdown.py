"""Markdown rendering of a ``Report`` (GitHub-flavoured tables; figures linked by file name)."""

from __future__ import annotations

from impbench.report.model import Report
from impbench.report.tables import Table, is_numeric_text


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _cell_text(cell) -> str:
    if cell.items is not None:
        return _escape("; ".join(f"{k} = {v}" for k, v in cell.items)) or "–"
    return f"**{_escape(cell.text)}**" if (cell.bold or cell.alert) and cell.text else _escape(cell.text)


def table_markdown(table: Table, depth: int = 4) -> str:
    lines = [f"{'#' * depth} {table.title}", "", f"*{_escape(table.caption)}*", ""]
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
        lines += ["", table.note]
    return "\n".join(lines) + "\n"


def report_markdown(report: Report, link_figures: bool = True) -> str:
    """The whole report; figure links point to PNGs beside the Markdown file."""
    out = [f"# {report.title}", "", report.subtitle, ""]
    for name, status, error, note in report.failures or []:
        label = "NOT APPLICABLE (not a failure)" if status == "not_applicable" else status.upper()
        out.append(f"> **{label}: {name}**" + (f" — `{error}`" if error else "")
                   + (f" — {note}" if note else ""))
        out.append(">")
    if any(status != "not_applicable" for _, status, _, _ in report.failures or []):
        out += ["> Tables and figures show what exists for these imputers.", ""]
    elif report.failures:
        out.append("")
    for section in report.sections:
        out += [f"{'#' * section.depth} {section.title}", ""]
        for alert in section.alerts:
            out += [f"> **Warning:** {alert}", ">"]
        if section.alerts:
            out[-1] = ""
        if section.intro:
            out += [section.intro, ""]
        for figure in section.figures:
            if link_figures:
                out += [f"![{figure.title}]({figure.filename})", ""]
            out += [f"*{figure.caption}*", ""]
        for table in section.tables:
            out += [table_markdown(table, min(section.depth + 1, 6)), ""]
    return "\n".join(out).rstrip() + "\n"
