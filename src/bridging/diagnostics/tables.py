"""The comparison as tables: built once as data, rendered as Markdown (comparison.md) and CSV (comparison.csv: one
row per equal-footing test) here, and as the report's HTML pages in :mod:`.tables_html`."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np

from ..atomic import write_text_atomic
from .acceptance import find_test
from .compare import EFFECTS, EVENT_NAMES, MAP_FIELDS, MODEL_ROLES, REFERENCES, ROLE_LABELS, find_effect
from .equal_footing import STATISTICS
from .events import EVENT_LABELS
from .indices import NINO_INDICES
from .statistics import MOMENTS

INDEX_LABELS = {"nino3": "Niño 3", "nino34": "Niño 3.4", "nino4": "Niño 4"}
STATISTIC_LABELS = {
    "std": "std (°C)",
    "skewness": "skewness",
    "kurtosis": "kurtosis",
    "hellinger": "Hellinger",
    "wasserstein1": "W1 (°C)",
}
TEST_COLUMNS = ("source", "reference", "index", "statistic", "record_months", "length_kind", "value", "reference_value",
                "null_low", "null_median", "null_high", "p_value", "inside_null_band", "n_chunks", "null_size", "null_method", "se")  # fmt: skip


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    emphasis: list[list[bool]] = field(default_factory=list)  # cells to emphasise (outside the null band)


def fmt(v, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞"
    return f"{v:.{digits}f}"


def fmt_p(p) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _ci(value, low, high, digits: int = 2) -> str:
    text = fmt(value, digits)
    if low is not None and high is not None and not (math.isnan(float(low)) or math.isnan(float(high))):
        text += f" [{fmt(low, digits)}, {fmt(high, digits)}]"
    return text


def _digits(statistic: str) -> int:
    return 3 if statistic in ("hellinger", "wasserstein1") else 2


# --------------------------------------------------------------------------------------------------- the tables


def summary_table(result: dict) -> Table:
    """Per index and statistic: each model source against both references at the common length, with the null band."""
    header = ["index", "statistic"]
    lengths = {}
    for ref in REFERENCES:
        t = find_test(result, "operational", ref, "nino3", "std")
        lengths[ref] = t["record_months"] // 12
        header += [f"{ROLE_LABELS[ref]}: value; 5–95 % null band ({lengths[ref]}-yr records)"]
        header += [f"{ROLE_LABELS[role]} vs {ref} (p)" for role in MODEL_ROLES]
    rows, emphasis = [], []
    for index in NINO_INDICES:
        for statistic in STATISTICS:
            row, marks = [INDEX_LABELS[index], STATISTIC_LABELS[statistic]], [False, False]
            d = _digits(statistic)
            for ref in REFERENCES:
                first = find_test(result, "operational", ref, index, statistic)
                ref_value = fmt(first["reference_value"], d) if statistic in MOMENTS else "0"
                row.append(f"{ref_value}; [{fmt(first['null_low'], d)}, {fmt(first['null_high'], d)}]")
                marks.append(False)
                for role in MODEL_ROLES:
                    t = find_test(result, role, ref, index, statistic)
                    row.append(f"{fmt(t['value'], d)} ({fmt_p(t['p_value'])})")
                    marks.append(not t["inside_null_band"])
            rows.append(row)
            emphasis.append(marks)
    note = (
        "Values are medians over the source's disjoint chunks of the stated length (each member's record cut into "
        "chunks); the band and p-value come from the reference's own records of that length (disjoint chunks of the "
        "idealized long run; block-bootstrap pseudo-records of the reanalysis). Moments: two-sided p; distances: "
        "one-sided (larger = farther). Marked cells lie outside the band: distinguishable from the reference."
    )
    return Table(f"Summary: bridging {result['model']} at equal record length", header, rows, note, emphasis)


def events_table(result: dict) -> Table:
    roles = [r for r in (*MODEL_ROLES, "reanalysis", "idealized", "pseudo_obs") if r in result["event_statistics"]]
    header = ["source", *(EVENT_LABELS[e] for e in EVENT_NAMES), "EP/CP ratio", "winters"]
    rows = []
    for role in roles:
        ev = result["event_statistics"][role]
        boot = ev.get("bootstrap", {})
        row = [ROLE_LABELS[role]]
        for e in EVENT_NAMES:
            row.append(_ci(ev["per_century"][e], boot.get(e, {}).get("ci_low"), boot.get(e, {}).get("ci_high"), 1))
        ratio = boot.get("ep_cp_ratio", {})
        row.append(_ci(ev.get("ep_cp_ratio"), ratio.get("ci_low"), ratio.get("ci_high")))
        row.append(f"{ev['n_winters']} × {ev.get('n_members', 1)}")
        rows.append(row)
    level = 100 * result["settings"]["confidence_level"]
    return Table(
        "DJF events per century (pooled over members)",
        header,
        rows,
        f"Brackets: {level:g} % block-bootstrap intervals over winters.",
    )


def effects_table(result: dict) -> Table:
    header = ["index", "statistic", "against", "record (yr)"]
    for effect, (before, after) in EFFECTS.items():
        header.append(f"{effect}: {ROLE_LABELS[after]} − {ROLE_LABELS[before]} (p)")
    rows = []
    keys = []
    for index in NINO_INDICES:
        for statistic in STATISTICS:
            for ref in (None,) if statistic in MOMENTS else REFERENCES:
                keys.append((index, statistic, ref))
    keys += [("events", e, None) for e in (*EVENT_NAMES, "ep_cp_ratio")]
    for index, statistic, ref in keys:
        first = find_effect(result, "curriculum", index, statistic, ref)
        length = first["record_months"] // 12 if first["record_months"] else "all"
        label = INDEX_LABELS.get(index, "DJF events")
        stat_label = STATISTIC_LABELS.get(statistic, EVENT_LABELS.get(statistic, "EP/CP ratio"))
        row = [label, stat_label, ROLE_LABELS[ref] if ref else "–", str(length)]
        for effect in EFFECTS:
            e = find_effect(result, effect, index, statistic, ref)
            row.append(
                f"{_signed(e['difference'], _digits(statistic))} ± {fmt(e['se'], _digits(statistic))} ({fmt_p(e['p_value'])})"
            )
        rows.append(row)
    note = (
        "Differences of the equal-footing values (moments at the three model sources' shortest record, distances at "
        "each reference's common length; a negative distance difference = closer to that reference), ± the "
        "block-bootstrap standard error of the difference, two-sided p-value."
    )
    return Table(
        "Effects of the curriculum (free run vs operational) and of the filter (bridging vs free run)",
        header,
        rows,
        note,
    )


def _signed(v, digits: int) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:+.{digits}f}"


def goal_table(result: dict) -> Table:
    """The filter's target: the bridging model (and the free run, the record it assimilated) against the idealized
    long run at the bridging run's own length."""
    roles = [
        r
        for r in ("free_run", "bridging", "pseudo_obs", "reanalysis")
        if any(t["source"] == r for t in result["tests"])
    ]
    first = find_test(result, "bridging", "idealized", "nino3", "std", kind="pair")
    years = first["record_months"] // 12
    header = ["index", "statistic", "idealized long run: value; 5–95 % band"] + [f"{ROLE_LABELS[r]} (p)" for r in roles]
    rows, emphasis = [], []
    for index in NINO_INDICES:
        for statistic in STATISTICS:
            d = _digits(statistic)
            ref = find_test(result, "bridging", "idealized", index, statistic, kind="pair")
            ref_value = fmt(ref["reference_value"], d) if statistic in MOMENTS else "0"
            row = [
                INDEX_LABELS[index],
                STATISTIC_LABELS[statistic],
                f"{ref_value}; [{fmt(ref['null_low'], d)}, {fmt(ref['null_high'], d)}]",
            ]
            marks = [False, False, False]
            for role in roles:
                t = find_test(result, role, "idealized", index, statistic, kind="pair")
                if t["record_months"] != ref["record_months"]:
                    row.append(f"{fmt(t['value'], d)} ({fmt_p(t['p_value'])}) at {t['record_months'] // 12} yr")
                else:
                    row.append(f"{fmt(t['value'], d)} ({fmt_p(t['p_value'])})")
                marks.append(not t["inside_null_band"])
            rows.append(row)
            emphasis.append(marks)
    note = (
        f"The bridging model's target: the idealized model's statistics. Records of {years} years (the bridging run's "
        "length); the pseudo-observation record is the realization the filter assimilated, the reanalysis (shorter) the "
        "truth the models learned through the curriculum."
    )
    return Table(
        f"Against the idealized long run at the bridging run's length ({years} years)", header, rows, note, emphasis
    )


def moments_table(result: dict) -> Table:
    roles = [
        r
        for r in ("operational", "free_run", "bridging", "reanalysis", "idealized", "pseudo_obs")
        if r in result["moments"]
    ]
    header = ["source", "record"]
    for index in NINO_INDICES:
        header += [f"{INDEX_LABELS[index]} {m}" for m in MOMENTS]
    rows = []
    for role in roles:
        src = result["sources"][role]
        row = [f"{ROLE_LABELS[role]} `{src['name']}`", f"{src['n_months'] // 12} yr × {src['n_members']}"]
        for index in NINO_INDICES:
            for m in MOMENTS:
                stat = result["moments"][role][index][m]
                row.append(_ci(stat["value"], stat.get("ci_low"), stat.get("ci_high")))
        rows.append(row)
    level = 100 * result["settings"]["confidence_level"]
    return Table(
        "Pooled moments of every record",
        header,
        rows,
        f"Pooled over members and the whole record (not equal footing: use the tables above to compare); {level:g} % "
        "block-bootstrap intervals. Kurtosis is Pearson's (Gaussian = 3).",
    )


def maps_table(result: dict) -> Table | None:
    names = []
    for per in result["maps"].values():
        names.extend(n for n in per if n not in names)
    if not names:
        return None
    roles = list(result["maps"])
    rows = [[name] + [fmt(result["maps"][r].get(name, {}).get("pattern_correlation")) for r in roles] for name in names]
    return Table(
        "Maps: centred pattern correlation with the reanalysis (cos-lat weighted, common ocean cells)",
        ["map", *(ROLE_LABELS[r] for r in roles)],
        rows,
    )


def kept_table(result: dict) -> Table:
    rows = []
    for role, per in result["versus_operational"].items():
        for f in MAP_FIELDS:
            for region in ("all_cells", "off_equator"):
                stats = per[region].get(f"{f}_residual_std")
                if stats:
                    rows.append(
                        [
                            ROLE_LABELS[role],
                            f"{f} residual std",
                            region.replace("_", " "),
                            fmt(stats["pattern_correlation"]),
                            fmt(stats["amplitude_ratio"]),
                        ]
                    )
    return Table(
        "What the bridge kept: residual std maps against the operational model",
        ["source", "map", "cells", "pattern correlation", "amplitude ratio"],
        rows,
    )


def acceptance_table(result: dict) -> Table:
    acc = result["acceptance"]
    rows = []
    for c in acc["criteria"]:
        status = ("pass" if c["passed"] else "FAIL") if c["applies"] else f"n/a ({c.get('note', '')})"
        rows.append([c["name"], status, c["description"], _criterion_value(c)])
    return Table(f"Acceptance: {'PASSED' if acc['passed'] else 'FAILED'}", ["criterion", "result", "rule", "value (distance to the reference)"], rows,
                 emphasis=[[False, not c["passed"], False, False] for c in acc["criteria"]])  # fmt: skip


def _criterion_value(c: dict) -> str:
    value, threshold = c.get("value"), c.get("threshold")
    if isinstance(value, dict):
        return ", ".join(f"{k} {fmt(v)} (≥ {fmt(threshold[k])})" for k, v in value.items())
    if isinstance(threshold, list):
        return f"{fmt(value, 3)} in [{fmt(threshold[0], 3)}, {fmt(threshold[1], 3)}] (p {fmt_p(c.get('p_value'))})"
    if "se" in c:
        text = f"bridging {fmt(value, 3)} vs operational {fmt(threshold, 3)} (difference {_signed(c['difference'], 3)} ± {fmt(c['se'], 3)})"
        return text + (f"; free run {fmt(c['free_run'], 3)}" if "free_run" in c else "")
    return f"bridging {fmt(value, 3)} vs operational {fmt(threshold, 3)}" + (
        f", reference {fmt(c['reference'], 3)}" if "reference" in c else ""
    )


def comparison_tables(result: dict) -> list[Table]:
    tables = [
        summary_table(result),
        effects_table(result),
        goal_table(result),
        events_table(result),
        moments_table(result),
    ]
    maps = maps_table(result)
    return tables + ([maps] if maps else []) + [kept_table(result), acceptance_table(result)]


# --------------------------------------------------------------------------------------------------- rendering


def sources_line(result: dict) -> str:
    return "Sources: " + "; ".join(
        f"{ROLE_LABELS[r]} `{s['name']}` ({s['n_months'] // 12} years × {s['n_members']} member{'s' if s['n_members'] > 1 else ''})"
        for r, s in result["sources"].items()
    )


def render_markdown(result: dict) -> str:
    lines = [f"# ENSO diagnostics: bridging {result['model']}", "", sources_line(result), ""]
    for table in comparison_tables(result):
        lines += markdown_table(table)
    return "\n".join(lines)


def markdown_table(table: Table) -> list[str]:
    """One table as Markdown lines: its title (##), note, header and rows, emphasised cells in bold."""
    lines = [f"## {table.title}", ""]
    if table.note:
        lines += [table.note, ""]

    def cells(row, marks):
        out = []
        for k, cell in enumerate(row):
            text = str(cell).replace("|", "\\|")  # a literal | would end the cell
            out.append(f"**{text}**" if marks and marks[k] else text)
        return " | ".join(out)

    lines.append("| " + cells(table.header, None) + " |")
    lines.append("|" + "|".join("---" for _ in table.header) + "|")
    for i, row in enumerate(table.rows):
        lines.append("| " + cells(row, table.emphasis[i] if table.emphasis else None) + " |")
    lines.append("")
    return lines


def csv_rows(result: dict) -> list[dict]:
    """comparison.csv: one row per equal-footing test."""
    return [{k: t.get(k) for k in TEST_COLUMNS} for t in result["tests"]]


def write_table_csv(rows: list[dict], path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(TEST_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in TEST_COLUMNS})
    write_text_atomic(buffer.getvalue(), path)


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v
