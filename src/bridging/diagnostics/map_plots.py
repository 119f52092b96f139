"""Map figures of the comparison: std, regression, EOF, composite and residual std maps of every source.

One row per source, one column per map (a field and a quantity such as "regressed on Niño 3"; with more than four
maps, one row per map and one column per source); the maps of one field share one colour range, so sources and
quantities compare.
Anomaly-like maps use the diverging colour map centred at zero, std maps the sequential one; land is grey and
outlined (:mod:`.geomap`). Panel titles carry the pattern correlation with the reanalysis and counts from the maps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..settings import PlottingSection
from .events import EVENT_LABELS
from .figstyle import FIELD_TITLES, FIELD_UNITS, INDEX_TITLES, MAX_WIDTH_IN, plt, save_figure
from .geomap import draw_map, symmetric_limits

MAP_KINDS = ("std", "regression", "eof", "composites", "residual_std")
MAX_COLUMNS = 4


@dataclass
class MapRow:
    """One map of every source: a variable of the maps Dataset (and a selection) of one field, in one block."""

    variable: str
    title: str
    units: str
    diverging: bool
    selection: dict = field(default_factory=dict)
    comparison_name: str | None = None
    field: str = "sst"
    block: str = ""  # the quantity the row shows, shared by the fields (the block's title)


def _value(x) -> float:
    return float("nan") if x is None else float(x)


def _blocks(rows: list[MapRow]) -> tuple[list[str], list[str], dict]:
    blocks, fields, cell = [], [], {}
    for row in rows:
        block = row.block or row.title
        if block not in blocks:
            blocks.append(block)
        if row.field not in fields:
            fields.append(row.field)
        cell[(block, row.field)] = row
    return blocks, fields, cell


def _layout(blocks: list[str], fields: list[str]) -> tuple[list[tuple[str, str]], bool]:
    """The (block, field) of each map and whether the figure is transposed: up to four maps as columns with one row
    per source; more maps as rows with one column per source, so the figure stays about as tall as it is wide (the
    report centres a figure vertically in the window and cuts off the top of a taller one)."""
    maps = [(b, f) for f in fields for b in blocks] if len(blocks) * len(fields) > MAX_COLUMNS else None
    if maps:
        return maps, True
    return [(b, f) for b in blocks for f in fields], False


def _column_title(block: str, field: str, grouped: bool) -> str:
    return block if grouped else f"{FIELD_TITLES.get(field, field)}, {block}"


def plot_map_rows(
    maps: dict, rows: list[MapRow], path, plotting: PlottingSection, *, annotations: dict | None = None, title: str = ""
) -> None:
    """Maps of every source (``maps``: label → Dataset on lat/lon with ``ocean_mask``) for each :class:`MapRow`: one
    row per source and one column per map, or transposed (:func:`_layout`); one colour range and bar per field.

    ``annotations[(label, comparison_name)]`` is added to the panel title (e.g. the pattern correlation).
    """
    labels = [k for k, v in maps.items() if v is not None]
    if not labels:
        raise ValueError("no maps to plot")
    first = maps[labels[0]]
    lat, lon = first["lat"].values, first["lon"].values
    blocks, fields, cell = _blocks(rows)
    columns, transposed = _layout(blocks, fields)
    n_cols = len(labels) if transposed else len(columns)
    n_rows = len(columns) if transposed else len(labels)
    aspect = (lon.max() - lon.min() + 1) / max(lat.max() - lat.min() + 1, 1.0)
    panel_w = (MAX_WIDTH_IN - (2.2 if transposed else 1.2)) / n_cols
    lines = max(1 + str(v).count("\n") for v in (annotations or {"": ""}).values())
    panel_h = panel_w / aspect + 0.22 * (lines + 1) + 0.15
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(MAX_WIDTH_IN - 0.4, panel_h * n_rows + 1.6), squeeze=False, layout="constrained"
    )

    def panel(r: int, c: int):  # r: the source, c: the map
        return axes[c, r] if transposed else axes[r, c]

    for f in dict.fromkeys(name for _, name in columns):
        shown = [(c, cell.get(column)) for c, column in enumerate(columns) if column[1] == f]
        arrays = {
            (c, lb): maps[lb][row.variable].sel(row.selection).values if row.variable in maps[lb] else None
            for c, row in shown
            if row is not None
            for lb in labels
        }
        diverging = any(row.diverging for _, row in shown if row is not None)
        vmin, vmax = symmetric_limits(list(arrays.values()), diverging)
        cmap = plt.get_cmap(plotting.anomaly_cmap if diverging else plotting.std_cmap).with_extremes(bad="0.8")
        mesh = None
        for c, row in shown:
            for r, lb in enumerate(labels):
                ax = panel(r, c)
                if row is None:
                    ax.set_visible(False)
                    continue
                ocean = maps[lb]["ocean_mask"].values if "ocean_mask" in maps[lb] else None
                last_row = c == len(columns) - 1 if transposed else r == len(labels) - 1
                first_col = r == 0 if transposed else c == 0
                drawn = draw_map(
                    ax, lat, lon, arrays[(c, lb)], cmap=cmap, vmin=vmin, vmax=vmax, ocean_mask=ocean,
                    xlabel=last_row, ylabel=first_col, max_lon_ticks=7 if n_cols <= 2 else 4,
                )  # fmt: skip
                mesh = drawn if drawn is not None else mesh
                note = (annotations or {}).get((lb, row.comparison_name or row.variable))
                head = (
                    [_column_title(row.block or row.title, f, False)] if (first_col if transposed else r == 0) else []
                )
                ax.set_title("\n".join([*head, f"{lb}" + (f": {note}" if note else "")]), loc="left")
        if mesh is not None:
            units = next(row.units for _, row in shown if row is not None)
            cb = fig.colorbar(mesh, ax=[panel(r, c) for c, _ in shown for r in range(len(labels))],
                              location="right" if transposed else "bottom", shrink=0.7, aspect=30 if transposed else 40,
                              extend="both" if diverging else "max")  # fmt: skip
            cb.set_label(f"{FIELD_TITLES.get(f, f)} ({units})")
    if title:
        fig.suptitle(title)
    save_figure(fig, path, plotting.dpi)


def map_rows(kind: str, maps, eof_modes: int = 2) -> list[MapRow]:
    """The rows of the standard map figures (:data:`MAP_KINDS`): ``std``, ``regression``, ``eof``, ``composites``,
    ``residual_std``."""
    if kind not in MAP_KINDS:
        raise ValueError(f"unknown map figure {kind!r}")
    rows: list[MapRow] = []
    for f in ("sst", "thermocline_depth"):
        t, u = FIELD_TITLES[f], FIELD_UNITS[f]
        if kind == "std":
            rows.append(MapRow(f"{f}_std", f"{t} anomaly std", u, False, field=f, block="anomaly std"))
        elif kind == "regression":
            for index in ("nino3", "nino4"):
                block = f"regressed on {INDEX_TITLES[index]}"
                rows.append(
                    MapRow(f"{f}_regression_{index}", f"{t} {block}", f"{u} per °C", True, field=f, block=block)
                )
        elif kind == "eof":
            n = min(eof_modes, maps.sizes.get("mode", 0)) if maps is not None else eof_modes
            for mode in range(1, n + 1):
                rows.append(
                    MapRow(
                        f"{f}_eof",
                        f"{t} EOF {mode}",
                        f"{u} per PC std",
                        True,
                        {"mode": mode},
                        f"{f}_eof{mode}",
                        field=f,
                        block=f"EOF {mode}",
                    )  # fmt: skip
                )
        elif kind == "composites":
            for event in ("ep", "cp", "la_nina"):
                block = f"DJF composite, {EVENT_LABELS[event]}"
                rows.append(
                    MapRow(
                        f"{f}_composite",
                        f"{t} {block}",
                        u,
                        True,
                        {"event": event},
                        f"{f}_composite_{event}",
                        field=f,
                        block=block,
                    )  # fmt: skip
                )
        else:
            block = "residual std (observables regressed out)"
            rows.append(MapRow(f"{f}_residual_std", f"{t} {block}", u, False, field=f, block=block))
    return rows


def panel_counts(rows: list[MapRow], maps: dict) -> dict:
    """Notes from the maps themselves: explained variance of EOF panels, member-winters of composite panels."""
    notes = {}
    for lb, ds in maps.items():
        for row in rows:
            if ds is None:
                continue
            if row.variable.endswith("_eof"):
                frac = ds[f"{row.variable}_variance_fraction"].sel(mode=row.selection["mode"]).item()
                notes[(lb, row.comparison_name)] = f"{100 * frac:.0f}% of variance"
            elif row.variable.endswith("_composite") and "composite_count" in ds:
                count = int(ds["composite_count"].sel(event=row.selection["event"]).item())
                notes[(lb, row.comparison_name)] = f"{count} winters"
    return notes


def map_annotations(comparison: dict, labels: dict[str, str]) -> dict:
    """Panel notes: pattern correlation against the reanalysis (and, for residual std maps, against the
    operational model off the equator)."""
    notes = {}
    for role, per in comparison.get("maps", {}).items():
        if role not in labels:
            continue
        for name, stats in per.items():
            r = _value(stats["pattern_correlation"])
            if np.isfinite(r):
                notes[(labels[role], name)] = f"r = {r:.2f} vs reanalysis"
    for role, per in comparison.get("versus_operational", {}).items():
        if role not in labels:
            continue
        for name, stats in per["off_equator"].items():
            if name.endswith("residual_std"):
                r, a = _value(stats["pattern_correlation"]), _value(stats["amplitude_ratio"])
                old = notes.get((labels[role], name))
                new = f"poleward of the band vs operational:\nr = {r:.2f}, RMS ratio {a:.2f}"
                notes[(labels[role], name)] = f"{old}\n{new}" if old else new
    return notes
