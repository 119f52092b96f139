"""Map figures of the comparison: std, regression, EOF, composite and residual std maps of every source.

One block per quantity (e.g. "regressed on Niño 3"), one column per field (SST, thermocline depth), one row per
source inside a block; the sources of a block share one colour range per field, so they compare. Anomaly-like maps
use the diverging colour map centred at zero, std maps the sequential one; land is grey and outlined
(:mod:`.geomap`). Panel titles carry the pattern correlation with the reanalysis and counts from the maps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..settings import PlottingSection
from .events import EVENT_LABELS
from .figstyle import FIELD_TITLES, FIELD_UNITS, INDEX_TITLES, MAX_WIDTH_IN, plt, save_figure
from .geomap import draw_map, symmetric_limits

MAP_KINDS = ("std", "regression", "eof", "composites", "residual_std")


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


def plot_map_rows(
    maps: dict, rows: list[MapRow], path, plotting: PlottingSection, *, annotations: dict | None = None, title: str = ""
) -> None:
    """Maps of every source (``maps``: label → Dataset on lat/lon with ``ocean_mask``) for each :class:`MapRow`.

    ``annotations[(label, comparison_name)]`` is added to the panel title (e.g. the pattern correlation).
    """
    labels = [k for k, v in maps.items() if v is not None]
    if not labels:
        raise ValueError("no maps to plot")
    first = maps[labels[0]]
    lat, lon = first["lat"].values, first["lon"].values
    blocks, fields, cell = _blocks(rows)
    aspect = (lon.max() - lon.min() + 1) / max(lat.max() - lat.min() + 1, 1.0)
    panel_w = (MAX_WIDTH_IN - 1.6 * len(fields)) / len(fields)
    panel_h = panel_w / aspect + 0.75  # the map, its title lines and tick labels
    block_h = panel_h * len(labels) + 0.5
    fig = plt.figure(figsize=(MAX_WIDTH_IN, block_h * len(blocks) + (0.5 if title else 0)), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(len(blocks), 1))
    for block, sub in zip(blocks, subfigs):
        axes = sub.subplots(len(labels), len(fields), squeeze=False)
        sub.suptitle(block, fontweight="bold")
        for c, f in enumerate(fields):
            row = cell.get((block, f))
            if row is None:
                for ax in axes[:, c]:
                    ax.set_visible(False)
                continue
            arrays = [
                maps[lb][row.variable].sel(row.selection).values if row.variable in maps[lb] else None for lb in labels
            ]
            vmin, vmax = symmetric_limits(arrays, row.diverging)
            cmap = plt.get_cmap(plotting.anomaly_cmap if row.diverging else plotting.std_cmap).with_extremes(bad="0.8")
            mesh = None
            for r, (lb, arr) in enumerate(zip(labels, arrays)):
                ax = axes[r, c]
                ocean = maps[lb]["ocean_mask"].values if "ocean_mask" in maps[lb] else None
                drawn = draw_map(
                    ax, lat, lon, arr, cmap=cmap, vmin=vmin, vmax=vmax, ocean_mask=ocean,
                    xlabel=r == len(labels) - 1, ylabel=c == 0,
                )  # fmt: skip
                mesh = drawn if drawn is not None else mesh
                note = (annotations or {}).get((lb, row.comparison_name or row.variable))
                ax.set_title("\n".join([f"{lb}: {FIELD_TITLES.get(f, f)}", *([note] if note else [])]), loc="left")
            if mesh is not None:
                cb = sub.colorbar(mesh, ax=list(axes[:, c]), shrink=0.8, extend="both" if row.diverging else "max")
                cb.set_label(row.units)
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
                notes[(lb, row.comparison_name)] = f"{count} member-winters"
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
                new = f"vs operational, poleward of the observed band:\nr = {r:.2f}, RMS ratio {a:.2f}"
                notes[(labels[role], name)] = f"{old}\n{new}" if old else new
    return notes
