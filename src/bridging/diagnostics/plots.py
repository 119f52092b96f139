"""Figures of the diagnostics (matplotlib, Agg backend: no display needed, safe in cluster jobs).

Every figure puts the sources side by side with one colour per role (reanalysis black, idealized long run grey,
operational red, free run orange, bridging blue). Maps of one quantity share one colour range across sources;
anomaly-like maps (regressions, EOFs, composites, gain responses) use the diverging colour map centred at zero,
std maps the sequential one; land (no data) is grey.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..atomic import atomic_output  # noqa: E402
from ..settings import PlottingSection  # noqa: E402
from . import FIGURES  # noqa: E402
from .acceptance import find_test  # noqa: E402
from .compare import ACCEPTANCE_INDICES, EVENT_NAMES, MODEL_ROLES, REFERENCES, ROLE_LABELS  # noqa: E402
from .events import EVENT_LABELS  # noqa: E402

ROLE_STYLE = {
    "reanalysis": {"color": "black", "linestyle": "-", "linewidth": 2.0},
    "idealized": {"color": "0.45", "linestyle": "--", "linewidth": 1.8},
    "operational": {"color": "tab:red", "linestyle": "-", "linewidth": 1.6},
    "free_run": {"color": "tab:orange", "linestyle": ":", "linewidth": 1.6},
    "bridging": {"color": "tab:blue", "linestyle": "-", "linewidth": 2.2},
    "pseudo_obs": {"color": "tab:green", "linestyle": "-.", "linewidth": 1.4},
}
PLOT_ORDER = ("reanalysis", "idealized", "pseudo_obs", "operational", "free_run", "bridging")
MAP_ROLES = ("operational", "free_run", "bridging", "reanalysis")
INDEX_TITLES = {"nino3": "Niño 3", "nino34": "Niño 3.4", "nino4": "Niño 4", "wp_thermocline": "WP thermocline"}
FIELD_TITLES = {"sst": "SST", "thermocline_depth": "thermocline depth (D20)"}
FIELD_UNITS = {"sst": "°C", "thermocline_depth": "m"}
MONTH_LETTERS = "JFMAMJJASOND"


def save_figure(fig, path, dpi: int) -> None:
    """Write atomically (a half-written PNG never replaces a good one) and release the figure's memory."""
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=str(path).rsplit(".", 1)[-1])
    finally:
        plt.close(fig)


def _value(x) -> float:
    return float("nan") if x is None else float(x)


# --------------------------------------------------------------------------------------------------- index figures


def plot_index_pdfs(
    sources: dict, path, plotting: PlottingSection, indices=("nino3", "nino4"), title: str = ""
) -> None:
    """PDFs (KDE, common grid and bandwidth rule) of the index anomalies, one panel per index."""
    fig, axes = plt.subplots(1, len(indices), figsize=(5.2 * len(indices), 4.0), squeeze=False)
    for ax, index in zip(axes[0], indices):
        for role in PLOT_ORDER:
            if role not in sources:
                continue
            src = sources[role]
            x = src.indices["pdf_x"].values
            skew = src.statistics["indices"][index]["skewness"]["value"]
            ax.plot(x, src.pdf(index), label=f"{ROLE_LABELS[role]} (skew {_value(skew):+.2f})", **ROLE_STYLE[role])
        ax.set_xlabel(f"{INDEX_TITLES[index]} anomaly (°C)")
        ax.set_ylabel("probability density (1/°C)")
        ax.set_title(f"{INDEX_TITLES[index]} PDF")
        ax.set_xlim(-4, 4)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title)
    save_figure(fig, path, plotting.dpi)


def plot_moments(comparison: dict, path, plotting: PlottingSection, indices=ACCEPTANCE_INDICES) -> None:
    """Std and skewness of the model sources at equal record length against each reference's null band.

    One row per (reference, moment), one column per index: the shaded band is the 5–95 % range of the reference's own
    records of the compared length; each source shows the median over its chunks (dot) and the range of its chunks.
    """
    rows = [(ref, moment) for ref in REFERENCES for moment in ("std", "skewness")]
    fig, axes = plt.subplots(len(rows), len(indices), figsize=(5.6 * len(indices), 2.9 * len(rows)), squeeze=False)
    for r, (ref, moment) in enumerate(rows):
        for c, index in enumerate(indices):
            ax = axes[r, c]
            first = find_test(comparison, "operational", ref, index, moment)
            ax.axhspan(
                first["null_low"], first["null_high"], color="0.85", zorder=0, label=f"{ROLE_LABELS[ref]}: 5–95 % band"
            )
            ax.axhline(first["reference_value"], color="0.4", linewidth=1.0, linestyle="--", zorder=1)
            for k, role in enumerate(MODEL_ROLES):
                t = find_test(comparison, role, ref, index, moment)
                chunk_values = np.asarray(t["chunk_values"], float)
                colour = ROLE_STYLE[role]["color"]
                ax.vlines(k, chunk_values.min(), chunk_values.max(), color=colour, linewidth=2, alpha=0.5)
                ax.plot(k, t["value"], "o", color=colour, markersize=8)
                p = t["p_value"]
                ax.annotate(
                    "p<0.01" if p < 0.01 else f"p={p:.2f}",
                    (k, t["value"]),
                    textcoords="offset points",
                    xytext=(8, 0),
                    fontsize=9,
                )
            if moment == "skewness":
                ax.axhline(0, color="0.6", linewidth=0.6)
            ax.set_xticks(range(len(MODEL_ROLES)))
            ax.set_xticklabels([ROLE_LABELS[x] for x in MODEL_ROLES], fontsize=9)
            ax.set_xlim(-0.5, len(MODEL_ROLES) - 0.3)
            unit = " (°C)" if moment == "std" else ""
            ax.set_ylabel(f"{moment}{unit}", fontsize=10)
            ax.set_title(
                f"{INDEX_TITLES[index]} {moment} vs {ROLE_LABELS[ref]}, {first['record_months'] // 12}-year records",
                fontsize=10,
            )
            ax.grid(alpha=0.3, axis="y")
            if r == 0 and c == 0:
                ax.legend(fontsize=8, loc="best")
    fig.suptitle(
        "Equal record length: median over chunks (dot), range of chunks (bar), reference's 5–95 % band (grey)",
        fontsize=11,
    )
    fig.tight_layout()
    save_figure(fig, path, plotting.dpi)


def plot_propagation(result: dict, path, plotting: PlottingSection) -> None:
    """Anomaly correlation (and RMSE) of the bridging model's and the free run's ensemble mean with the pseudo-
    observation run's known fields, against latitude (top) and longitude near the equator (bottom)."""
    fields = [f for f in ("sst", "thermocline_depth") if f in result]
    fig, axes = plt.subplots(2, len(fields), figsize=(6.0 * len(fields), 7.5), squeeze=False)
    for c, f in enumerate(fields):
        ax = axes[0, c]
        for source in ("bridging", "free_run"):
            entry = result[f][source]
            lat = np.asarray(entry["latitude"], float)
            ax.plot(
                lat,
                [_value(v) for v in entry["correlation"]],
                label=f"{ROLE_LABELS[source]}: correlation",
                **ROLE_STYLE[source],
            )
        ax.axhline(0, color="0.6", linewidth=0.6)
        ax.axvline(0, color="0.6", linewidth=0.6, linestyle=":")
        ax.set_ylim(-0.3, 1.02)
        ax.set_xlabel("latitude (°N)")
        ax.set_ylabel("anomaly correlation with the known truth")
        ax.set_title(f"{FIELD_TITLES[f]}: skill against latitude (observed: equator only)", fontsize=10)
        twin = ax.twinx()
        truth = [_value(v) for v in result[f]["truth_std"]]
        twin.plot(lat, truth, color="0.5", linestyle="--", linewidth=1.0, label="truth anomaly std")
        twin.plot(lat, [_value(v) for v in result[f]["bridging"]["rmse"]], color=ROLE_STYLE["bridging"]["color"], linestyle="--",
                  linewidth=1.0, alpha=0.7, label="bridging RMSE")  # fmt: skip
        twin.set_ylabel(f"std / RMSE ({FIELD_UNITS[f]})")
        twin.set_ylim(bottom=0)
        lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="lower center")
        ax.grid(alpha=0.3)
        ax = axes[1, c]
        for source in ("bridging", "free_run"):
            entry = result[f][source]
            ax.plot(
                entry["longitude"],
                [_value(v) for v in entry["correlation_by_longitude"]],
                label=ROLE_LABELS[source],
                **ROLE_STYLE[source],
            )
        ax.axhline(0, color="0.6", linewidth=0.6)
        ax.set_ylim(-0.3, 1.02)
        ax.set_xlabel("longitude (°E)")
        ax.set_ylabel("anomaly correlation")
        ax.set_title(
            f"{FIELD_TITLES[f]}: skill against longitude, {result['equatorial_band_deg']:g}°S–{result['equatorial_band_deg']:g}°N",
            fontsize=10,
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Known-truth propagation test: the pseudo-observation run's fields away from the observed cells")
    fig.tight_layout()
    save_figure(fig, path, plotting.dpi)


def _level(comparison: dict) -> str:
    level = comparison.get("settings", {}).get("confidence_level")
    return f"{100 * level:g} %" if level else ""


def plot_seasonal_variance(comparison: dict, path, plotting: PlottingSection, indices=ACCEPTANCE_INDICES) -> None:
    """Variance of the index anomalies by calendar month (ENSO's phase locking), with bootstrap intervals."""
    fig, axes = plt.subplots(1, len(indices), figsize=(5.2 * len(indices), 3.8), squeeze=False)
    months = np.arange(1, 13)
    for ax, index in zip(axes[0], indices):
        for role in PLOT_ORDER:
            if role not in comparison["moments"]:
                continue
            mv = comparison["moments"][role][index]["monthly_variance"]
            value = np.array([_value(v) for v in mv["value"]])
            ax.plot(months, value, marker="o", markersize=3, label=ROLE_LABELS[role], **ROLE_STYLE[role])
            lo, hi = np.array([_value(v) for v in mv["ci_low"]]), np.array([_value(v) for v in mv["ci_high"]])
            ax.fill_between(months, lo, hi, color=ROLE_STYLE[role]["color"], alpha=0.12, linewidth=0)
        ax.set_xticks(months)
        ax.set_xticklabels(list(MONTH_LETTERS))
        ax.set_xlabel("calendar month")
        ax.set_ylabel("variance (°C²)")
        ax.set_title(f"{INDEX_TITLES[index]} variance by calendar month")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, plotting.dpi)


def plot_event_frequencies(comparison: dict, path, plotting: PlottingSection) -> None:
    """DJF event frequencies per century per source (bars) with bootstrap intervals; EP/CP ratio in the legend."""
    roles = [r for r in PLOT_ORDER if r in comparison["event_statistics"]]
    fig, ax = plt.subplots(figsize=(9.5, 4.2))
    width = 0.8 / len(roles)
    x = np.arange(len(EVENT_NAMES))
    for k, role in enumerate(roles):
        ev = comparison["event_statistics"][role]
        values = np.array([_value(ev["per_century"][e]) for e in EVENT_NAMES])
        boot = ev.get("bootstrap", {})
        lo = np.array([_value(boot.get(e, {}).get("ci_low")) for e in EVENT_NAMES])
        hi = np.array([_value(boot.get(e, {}).get("ci_high")) for e in EVENT_NAMES])
        err = np.vstack([values - lo, hi - values])
        err = np.where(np.isfinite(err), err, 0.0)
        counts = ev["counts"]
        ratio = counts["ep"] / counts["cp"] if counts["cp"] else float("inf")
        ax.bar(
            x + (k - (len(roles) - 1) / 2) * width,
            values,
            width,
            yerr=err,
            capsize=2,
            color=ROLE_STYLE[role]["color"],
            label=f"{ROLE_LABELS[role]} (EP/CP {ratio:.2f}, {ev['n_winters']} winters)",
        )
    ax.set_xticks(x)
    ax.set_xticklabels([EVENT_LABELS[e] for e in EVENT_NAMES])
    ax.set_ylabel("events per century")
    ax.set_title("DJF ENSO events (pooled over members)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    save_figure(fig, path, plotting.dpi)


# --------------------------------------------------------------------------------------------------- maps


@dataclass
class MapRow:
    """One row of a map figure: a variable of the maps Dataset (and a selection), shown for every source."""

    variable: str
    title: str
    units: str
    diverging: bool
    selection: dict = field(default_factory=dict)
    comparison_name: str | None = None


def _limits(arrays: list[np.ndarray], diverging: bool) -> tuple[float, float]:
    values = np.concatenate(
        [a[np.isfinite(a)].ravel() for a in arrays if a is not None and np.isfinite(a).any()] or [np.zeros(1)]
    )
    if diverging:
        vmax = float(np.quantile(np.abs(values), 0.99)) or 1.0
        return -vmax, vmax
    return 0.0, float(np.quantile(values, 0.99)) or 1.0


def plot_map_rows(
    maps: dict, rows: list[MapRow], path, plotting: PlottingSection, *, annotations: dict | None = None, title: str = ""
) -> None:
    """A grid of maps: one row per :class:`MapRow`, one column per source (``maps``: label → Dataset on lat/lon).

    ``annotations[(label, comparison_name)]`` is appended to the panel title (e.g. the pattern correlation).
    """
    labels = [k for k, v in maps.items() if v is not None]
    if not labels:
        raise ValueError("no maps to plot")
    first = maps[labels[0]]
    lat, lon = first["lat"].values, first["lon"].values
    aspect = (lon.max() - lon.min()) / max(lat.max() - lat.min(), 1.0)
    panel_w = 4.2
    panel_h = max(1.2, panel_w / aspect) + 0.8
    fig, axes = plt.subplots(
        len(rows),
        len(labels),
        figsize=(panel_w * len(labels) + 1.2, panel_h * len(rows)),
        squeeze=False,
        constrained_layout=True,
    )
    for r, row in enumerate(rows):
        arrays = [
            maps[lb][row.variable].sel(row.selection).values if row.variable in maps[lb] else None for lb in labels
        ]
        vmin, vmax = _limits(arrays, row.diverging)
        cmap = plt.get_cmap(plotting.anomaly_cmap if row.diverging else plotting.std_cmap).with_extremes(bad="0.8")
        mesh = None
        for c, (lb, arr) in enumerate(zip(labels, arrays)):
            ax = axes[r, c]
            ax.set_facecolor("0.8")
            if arr is None or not np.isfinite(arr).any():
                # E.g. a composite of an event type the source never produced.
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            else:
                mesh = ax.pcolormesh(
                    lon, lat, np.ma.masked_invalid(arr), cmap=cmap, vmin=vmin, vmax=vmax, shading="nearest"
                )
            note = (annotations or {}).get((lb, row.comparison_name or row.variable))
            ax.set_title("\n".join([f"{lb}: {row.title}", *([note] if note else [])]), fontsize=7)
            ax.set_xlim(lon.min(), lon.max())
            ax.set_ylim(lat.min(), lat.max())
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
            ax.set_xticks(_lon_ticks(lon))
            ax.set_xticklabels([f"{int(t)}°E" if t <= 180 else f"{int(360 - t)}°W" for t in _lon_ticks(lon)])
            if c == 0:
                ax.set_ylabel("latitude (°N)", fontsize=8)
        if mesh is not None:
            cb = fig.colorbar(mesh, ax=list(axes[r]), shrink=0.9, pad=0.01, extend="both" if row.diverging else "max")
            cb.set_label(row.units, fontsize=8)
            cb.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title)
    save_figure(fig, path, plotting.dpi)


def _lon_ticks(lon: np.ndarray) -> np.ndarray:
    step = 40 if lon.max() - lon.min() > 120 else 20
    return np.arange(math.ceil(lon.min() / step) * step, lon.max() + 1e-6, step)


def map_rows(kind: str, maps, eof_modes: int = 2) -> list[MapRow]:
    """The rows of the standard map figures: ``std``, ``regression``, ``eof``, ``composites``, ``residual_std``."""
    rows: list[MapRow] = []
    for f in ("sst", "thermocline_depth"):
        t, u = FIELD_TITLES[f], FIELD_UNITS[f]
        if kind == "std":
            rows.append(MapRow(f"{f}_std", f"{t} anomaly std", u, False))
        elif kind == "regression":
            for index in ("nino3", "nino4"):
                rows.append(
                    MapRow(f"{f}_regression_{index}", f"{t} regressed on {INDEX_TITLES[index]}", f"{u} per °C", True)
                )
        elif kind == "eof":
            n = min(eof_modes, maps.sizes.get("mode", 0)) if maps is not None else eof_modes
            for mode in range(1, n + 1):
                rows.append(
                    MapRow(f"{f}_eof", f"{t} EOF {mode}", f"{u} per PC std", True, {"mode": mode}, f"{f}_eof{mode}")
                )
        elif kind == "composites":
            for event in ("ep", "cp", "la_nina"):
                rows.append(
                    MapRow(
                        f"{f}_composite",
                        f"{t} DJF composite, {EVENT_LABELS[event]}",
                        u,
                        True,
                        {"event": event},
                        f"{f}_composite_{event}",
                    )
                )
        elif kind == "residual_std":
            rows.append(MapRow(f"{f}_residual_std", f"{t} residual std (observables regressed out)", u, False))
        else:
            raise ValueError(f"unknown map figure {kind!r}")
    return rows


def _panel_counts(rows: list[MapRow], maps: dict) -> dict:
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
                new = f"poleward of the observed band vs operational: r = {r:.2f}, RMS ratio {a:.2f}"
                notes[(labels[role], name)] = f"{old}\n{new}" if old else new
    return notes


def plot_all(model: str, comparison: dict, sources: dict, figures: dict, plotting: PlottingSection) -> None:
    """Every figure named in ``figures`` (name → path) for one experiment."""
    unknown = set(figures) - set(FIGURES)
    if unknown:
        raise ValueError(f"unknown figures {sorted(unknown)}; known: {FIGURES}")
    if "pdfs" in figures:
        plot_index_pdfs(sources, figures["pdfs"], plotting, title=f"Index PDFs, bridging {model}")
    if "moments" in figures:
        plot_moments(comparison, figures["moments"], plotting)
    if "seasonal_variance" in figures:
        plot_seasonal_variance(comparison, figures["seasonal_variance"], plotting)
    if "events" in figures:
        plot_event_frequencies(comparison, figures["events"], plotting)
    labels = {role: ROLE_LABELS[role] for role in MAP_ROLES if role in sources and sources[role].maps is not None}
    maps = {ROLE_LABELS[role]: sources[role].maps for role in labels}
    notes = map_annotations(comparison, labels)
    for kind in ("std", "regression", "eof", "composites", "residual_std"):
        name = f"maps_{kind}"
        if name not in figures:
            continue
        rows = map_rows(kind, next(iter(maps.values())))
        extra = _panel_counts(rows, maps)
        merged = {k: "\n".join(x for x in (notes.get(k), extra.get(k)) if x) for k in set(notes) | set(extra)}
        plot_map_rows(
            maps,
            rows,
            figures[name],
            plotting,
            annotations=merged,
            title=f"{kind.replace('_', ' ')} maps, bridging {model}",
        )


# --------------------------------------------------------------------------------------------------- explainability


def plot_gain_responses(
    responses: dict,
    lat: np.ndarray,
    lon: np.ndarray,
    path,
    plotting: PlottingSection,
    channel_titles=("SST", "thermocline depth (D20)"),
    units=("°C", "m"),
) -> None:
    """Maps of the decoded field response to a one-std innovation of each observable group
    (:func:`bridging.explain.gain_responses`): one row per group, one column per channel.

    Each channel (column) has one symmetric colour range shared by all groups, so the groups' responses compare.
    """
    groups = list(responses)
    arrays = {g: np.asarray(responses[g], float) for g in groups}
    n_channels = arrays[groups[0]].shape[0]
    aspect = (lon.max() - lon.min()) / max(lat.max() - lat.min(), 1.0)
    panel_w = 4.2
    panel_h = max(1.2, panel_w / aspect) + 0.55
    fig, axes = plt.subplots(
        len(groups),
        n_channels,
        figsize=(panel_w * n_channels + 1.5, panel_h * len(groups)),
        squeeze=False,
        constrained_layout=True,
    )
    cmap = plt.get_cmap(plotting.anomaly_cmap).with_extremes(bad="0.8")
    for c in range(n_channels):
        vmin, vmax = _limits([arrays[g][c] for g in groups], diverging=True)
        mesh = None
        for r, g in enumerate(groups):
            ax = axes[r, c]
            ax.set_facecolor("0.8")
            mesh = ax.pcolormesh(
                lon, lat, np.ma.masked_invalid(arrays[g][c]), cmap=cmap, vmin=vmin, vmax=vmax, shading="nearest"
            )
            title = channel_titles[c] if c < len(channel_titles) else f"channel {c}"
            ax.set_title(f"{title}: 1-std innovation of {g.replace('_', ' ')}", fontsize=8)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
        cb = fig.colorbar(mesh, ax=list(axes[:, c]), shrink=0.9, pad=0.01, extend="both")
        cb.set_label(units[c] if c < len(units) else "", fontsize=8)
    fig.suptitle("Kalman-gain response of the decoded fields")
    save_figure(fig, path, plotting.dpi)


def plot_latent_observable_correlation(
    correlation: np.ndarray,
    obs_labels,
    path,
    plotting: PlottingSection,
    title: str = "Latent–observable cross-correlation",
) -> None:
    """The (n_latent, n_obs) correlation matrix as an image; observables in layout order (SST then D20, west→east)."""
    corr = np.asarray(correlation, float)
    fig, ax = plt.subplots(figsize=(min(14, 3 + 0.08 * corr.shape[1]), 6))
    im = ax.imshow(corr, aspect="auto", cmap=plotting.anomaly_cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xlabel("observable (SST, then thermocline depth; west → east)")
    ax.set_ylabel("latent variable")
    labels = list(obs_labels)
    step = max(1, len(labels) // 16)
    ax.set_xticks(range(0, len(labels), step))
    ax.set_xticklabels(labels[::step], rotation=60, ha="right", fontsize=7)
    ax.set_title(title)
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("correlation")
    save_figure(fig, path, plotting.dpi)
