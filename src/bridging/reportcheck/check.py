"""The report as a reader sees it: the Snakemake HTML report opened in headless Chromium (:mod:`.browser`), every
section and every item shown in turn and screenshotted, and what a reader would stumble on reported.

A Snakemake report is one page whose items live in the globals ``results`` (path → mime type, data URI …) and
``categories`` (category → subcategory → paths) and whose view is the React component ``app``: the check drives
``app.setView`` as the report's own buttons do. It fails (each problem one line) when

* an item cannot be viewed in the report (the report shows PNG / SVG / JPEG images and HTML / PDF pages inline; any
  other file only downloads, e.g. a CSV or JSON attachment);
* an HTML item holds no ``<table>`` (the report's tables are HTML pages);
* an item sits in the catch-all "Other" category or subcategory;
* a figure is shown narrower than :data:`bridging.diagnostics.figstyle.REPORT_WIDTH_PX`, the width the figures'
  text sizes are chosen for (then their text shows below the legible size);
* a figure is taller than the window: the report centres it vertically and its top cannot be scrolled to.

Written to ``out``: ``00_start.png``, one ``section_*.png`` per section and subcategory (its list of items), one PNG per item and ``summary.json``
(per item: category, subcategory, mime type, natural and displayed width of figures).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from urllib.parse import unquote

from ..diagnostics.figstyle import REPORT_WIDTH_PX
from .browser import Browser

VIEWABLE = {"image/png": "img", "image/svg+xml": "img", "image/jpeg": "img", "text/html": "html",
            "application/pdf": "pdf"}  # fmt: skip
WINDOW = (1400, 1000)  # a laptop browser window (CSS pixels)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:80] or "item"


def _decoded(data_uri: str) -> str:
    """The text of a data URI (base64 or percent-encoded)."""
    header, _, payload = data_uri.partition(",")
    raw = base64.b64decode(payload) if header.endswith(";base64") else unquote(payload).encode()
    return raw.decode(errors="replace")


def embedded(report_html: str) -> tuple[dict, dict]:
    """(results, categories): the globals a self-contained Snakemake report embeds, each one JSON line in a script
    element of that id."""
    found = {}
    for name in ("results", "categories"):
        m = re.search(rf'<script id="{name}">\s*var {name} = ([^\n]*);\s*</script>', report_html)
        if m is None:
            raise ValueError(f"not a self-contained Snakemake report: no `var {name} = …;`")
        found[name] = json.loads(m.group(1))
    return found["results"], found["categories"]


def static_problems(results: dict, categories: dict) -> list[str]:
    """What the report's data alone shows: items a reader cannot view there, HTML items without a table, items in
    the catch-all "Other". Needs no browser (the workflow test runs it on the tiny run's report)."""
    problems = []
    if not results:
        problems.append("the report holds no item")
    for category, subs in sorted(categories.items()):
        for subcategory, paths in subs.items():
            for path in paths:
                where = f"{path} ({category} / {subcategory})"
                entry = results.get(path)
                if entry is None:
                    problems.append(f"{where}: listed but not among the report's results")
                    continue
                if "Other" in (category, subcategory):
                    problems.append(f"{where}: in the catch-all 'Other' (give it a category and subcategory)")
                mime = entry["mime_type"]
                if mime not in VIEWABLE:
                    problems.append(f"{where}: a {mime} file is not shown in the report, only downloaded")
                elif mime == "text/html" and "<table" not in _decoded(entry["data_uri"]).lower():
                    problems.append(f"{where}: an HTML page without a table")
    return problems


def check_report(report: str | Path, out: str | Path, *, chromium: str | None = None) -> tuple[dict, list[str]]:
    """Screenshot every section and item of ``report`` into ``out``; returns (summary, problems)."""
    report, out = Path(report).resolve(), Path(out)
    if not report.is_file():
        raise FileNotFoundError(f"{report}: no such report (make it with `snakemake all --report {report}`)")
    out.mkdir(parents=True, exist_ok=True)
    problems = static_problems(*embedded(report.read_text(errors="replace")))
    summary: dict = {"report": str(report), "window": list(WINDOW), "items": []}
    with Browser(chromium, width=WINDOW[0], height=WINDOW[1]) as browser:
        browser.navigate(report.as_uri())
        browser.wait_for("typeof app !== 'undefined' && document.querySelector('#app').children.length > 0",
                         what="the report's app to render")  # fmt: skip
        browser.screenshot(out / "00_start.png")
        categories = browser.evaluate("categories")
        results = browser.evaluate(
            "Object.fromEntries(Object.entries(results).map(([k, v]) => [k, {mime_type: v.mime_type}]))"
        )
        summary["categories"] = {c: {s: len(p) for s, p in subs.items()} for c, subs in categories.items()}
        for k, (category, subs) in enumerate(sorted(categories.items()), start=1):
            for subcategory, paths in subs.items():
                # the section's list of items, as its menu entry shows it
                view = {"navbarMode": "subcategory", "category": category, "subcategory": subcategory}
                browser.evaluate(f"app.setView({json.dumps(view)}); true")
                browser.screenshot(out / f"section_{k:02d}_{_slug(category)}_{_slug(subcategory)}.png")
                for path in paths:
                    item = _show_item(browser, results, category, subcategory, path, out, problems)
                    summary["items"].append(item)
    widths = [i["displayed_width"] for i in summary["items"] if i.get("displayed_width")]
    summary["figure_pane_width"] = max(widths) if widths else None
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary, problems


def _show_item(browser: Browser, results: dict, category, subcategory, path, out: Path, problems: list) -> dict:
    """Show one item as its button in the report does; screenshot it and measure a figure's displayed width."""
    item = {"path": path, "category": category, "subcategory": subcategory}
    entry = results.get(path)
    view = VIEWABLE.get(entry["mime_type"]) if entry else None
    if view is None:
        return item  # reported by static_problems
    item["mime_type"] = entry["mime_type"]
    browser.evaluate(
        f"app.setView({{content: {json.dumps(view)}, contentPath: results[{json.dumps(path)}].data_uri, "
        f"resultPath: {json.dumps(path)}}}); true"
    )
    if view == "img":
        shown_img = f"Array.from(document.images).find(i => i.src === results[{json.dumps(path)}].data_uri)"
        browser.wait_for(f"(() => {{ const i = {shown_img}; return i && i.complete && i.naturalWidth > 0; }})()",
                         what=f"{path} to show")  # fmt: skip
        natural, shown, top = browser.evaluate(
            f"(() => {{ const i = {shown_img}; const r = i.getBoundingClientRect(); return [i.naturalWidth, r.width, "
            "r.top]; })()"
        )
        item.update(natural_width=natural, displayed_width=round(shown, 1), scale=round(shown / natural, 3))
        if top < 0:
            problems.append(f"{path}: taller than the window, its top {-top:.0f} px cut off (the report centres it)")
        if shown + 1 < min(natural, REPORT_WIDTH_PX):
            problems.append(
                f"{path}: shown {shown:.0f} px wide, narrower than the {REPORT_WIDTH_PX} px its text is sized for"
            )
    else:
        browser.wait_for("document.querySelector('#app iframe') !== null", what=f"{path} to show")
    stem = _slug(f"{Path(path).parent.name}_{Path(path).stem}")
    item["screenshot"] = f"item_{len(list(out.glob('item_*.png'))) + 1:02d}_{stem}.png"
    browser.screenshot(out / item["screenshot"])
    return item
