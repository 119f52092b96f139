"""The comparison's tables as the HTML pages the Snakemake report shows (a CSV or JSON attachment shows nothing
there): ``summary.html`` (every table of :func:`.tables.comparison_tables`, the equal-footing summary first, the
bootstrap confidence intervals in the event and moment tables), ``tests.html`` (one row per equal-footing test, the
content of comparison.csv) and ``acceptance.html`` (the acceptance criteria). Self-contained pages: inline style, no
script, no external resource."""

from __future__ import annotations

import html

from .tables import TEST_COLUMNS, Table, acceptance_table, comparison_tables, fmt, fmt_p, sources_line

STYLE = """
body { font-family: sans-serif; font-size: 14px; margin: 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: right; }
th { background: #eee; position: sticky; top: 0; } td:first-child, td:nth-child(2) { text-align: left; }
td.outside { background: #fde0dc; font-weight: bold; }
p.note { color: #444; max-width: 70em; }
"""
OUTSIDE = ' class="outside"'


def html_table(table: Table) -> str:
    """One table: its title, note, header and rows; emphasised cells (outside the null band, failed) marked."""
    parts = [f"<h2>{html.escape(table.title)}</h2>"]
    if table.note:
        parts.append(f"<p class='note'>{html.escape(table.note)}</p>")
    parts.append(
        "<table><thead><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in table.header) + "</tr></thead><tbody>"
    )
    for i, row in enumerate(table.rows):
        marks = table.emphasis[i] if table.emphasis else [False] * len(row)
        cells = (f"<td{OUTSIDE if m else ''}>{html.escape(str(c))}</td>" for c, m in zip(row, marks))
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    return "\n".join(parts)


def html_page(title: str, intro: str, tables: list[Table]) -> str:
    """A self-contained page of tables."""
    parts = [
        "<!DOCTYPE html>",
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(intro)}</p>",
        *(html_table(t) for t in tables),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def render_html(result: dict) -> str:
    """summary.html: every comparison table, the equal-footing summary first."""
    return html_page(f"ENSO diagnostics: bridging {result['model']}", sources_line(result), comparison_tables(result))


def tests_table(result: dict) -> Table:
    """One row per equal-footing test (the columns of comparison.csv), values outside the null band marked."""
    rows, emphasis = [], []
    for t in result["tests"]:
        digits = 3 if t.get("statistic") in ("hellinger", "wasserstein1") else 2
        row = []
        for column in TEST_COLUMNS:
            v = t.get(column)
            if column == "p_value":
                row.append(fmt_p(v))
            elif column in ("value", "reference_value", "null_low", "null_median", "null_high", "se"):
                row.append(fmt(v, digits))
            else:
                row.append(fmt(v) if isinstance(v, (bool, int, float)) or v is None else str(v))
        rows.append(row)
        emphasis.append([c == "value" and t.get("inside_null_band") is False for c in TEST_COLUMNS])
    return Table(
        "Every equal-footing test",
        [c.replace("_", " ") for c in TEST_COLUMNS],
        rows,
        "One row per (source, reference, index, statistic, record length): the source's value (median over its "
        "chunks), the reference's value, the 5–95 % band and median of the reference's null at that length, the "
        "p-value, and whether the value lies inside the band (marked when outside). The same rows as comparison.csv.",
        emphasis,
    )


def render_tests_html(result: dict) -> str:
    """tests.html: the equal-footing tests."""
    return html_page(f"Equal-footing tests: bridging {result['model']}", sources_line(result), [tests_table(result)])


def render_acceptance_html(result: dict) -> str:
    """acceptance.html: the acceptance criteria, pass / fail, with their values and thresholds."""
    return html_page(f"Acceptance: bridging {result['model']}", sources_line(result), [acceptance_table(result)])
