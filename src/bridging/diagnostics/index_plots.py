"""Figures of the index statistics: PDFs, equal-footing moments against the references' null bands, seasonal
variance, DJF event frequencies, and the known-truth propagation test's skill against latitude and longitude.
Every figure puts the sources side by side with one colour per role (:data:`.figstyle.ROLE_STYLE`)."""

from __future__ import annotations

import numpy as np

from ..settings import PlottingSection
from .acceptance import find_test
from .compare import ACCEPTANCE_INDICES, EVENT_NAMES, MODEL_ROLES, REFERENCES, ROLE_LABELS
from .events import EVENT_LABELS
from .figstyle import FIELD_TITLES, FIELD_UNITS, INDEX_TITLES, PLOT_ORDER, ROLE_STYLE, plt, save_figure

MONTH_LETTERS = "JFMAMJJASOND"


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
        ax.legend(loc="upper left")
    if title:
        fig.suptitle(title)
    save_figure(fig, path, plotting.dpi)


def plot_moments(comparison: dict, path, plotting: PlottingSection, indices=ACCEPTANCE_INDICES) -> None:
    """Std and skewness of the model sources at equal record length against each reference's null band.

    One row per (reference, moment), one column per index: the shaded band is the 5–95 % range of the reference's own
    records of the compared length; each source shows the median over its chunks (dot) and the range of its chunks.
    """
    rows = [(ref, moment) for ref in REFERENCES for moment in ("std", "skewness")]
    fig, axes = plt.subplots(len(rows), len(indices), figsize=(5.4 * len(indices), 2.7 * len(rows)), squeeze=False)
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
                )
            if moment == "skewness":
                ax.axhline(0, color="0.6", linewidth=0.6)
            ax.set_xticks(range(len(MODEL_ROLES)))
            ax.set_xticklabels([ROLE_LABELS[x] for x in MODEL_ROLES])
            ax.set_xlim(-0.5, len(MODEL_ROLES) - 0.3)
            unit = " (°C)" if moment == "std" else ""
            ax.set_ylabel(f"{moment}{unit}")
            ax.set_title(
                f"{INDEX_TITLES[index]} {moment} vs {ROLE_LABELS[ref]}, {first['record_months'] // 12}-year records",
            )
            ax.grid(alpha=0.3, axis="y")
            if r == 0 and c == 0:
                ax.legend(loc="best")
    fig.suptitle(
        "Equal record length: median over chunks (dot), range of chunks (bar),\nreference's 5–95 % band (grey)"
    )
    fig.tight_layout()
    save_figure(fig, path, plotting.dpi)


def plot_propagation(result: dict, path, plotting: PlottingSection) -> None:
    """Anomaly correlation (and RMSE) of the bridging model's and the free run's ensemble mean with the pseudo-
    observation run's known fields, against latitude (top) and longitude near the equator (bottom)."""
    fields = [f for f in ("sst", "thermocline_depth") if f in result]
    fig, axes = plt.subplots(2, len(fields), figsize=(5.4 * len(fields), 8.0), squeeze=False)
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
        ax.set_ylabel("correlation with the known truth")
        ax.set_title(f"{FIELD_TITLES[f]}: skill against latitude\n(observed: the equator only)")
        twin = ax.twinx()
        truth = [_value(v) for v in result[f]["truth_std"]]
        twin.plot(lat, truth, color="0.5", linestyle="--", linewidth=1.0, label="truth anomaly std")
        twin.plot(lat, [_value(v) for v in result[f]["bridging"]["rmse"]], color=ROLE_STYLE["bridging"]["color"], linestyle="--",
                  linewidth=1.0, alpha=0.7, label="bridging RMSE")  # fmt: skip
        twin.set_ylabel(f"std / RMSE ({FIELD_UNITS[f]})")
        twin.set_ylim(bottom=0)
        lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(lines, [ln.get_label() for ln in lines], loc="lower center")
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
            f"{FIELD_TITLES[f]}: skill against longitude\n{result['equatorial_band_deg']:g}°S–{result['equatorial_band_deg']:g}°N",
        )
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Known-truth propagation test:\nthe pseudo-observation run's fields away from the observed cells")
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
    axes[0, 0].legend()
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
    ax.legend()
    save_figure(fig, path, plotting.dpi)
