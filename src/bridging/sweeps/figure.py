"""The figure of one sweep: each headline statistic of the bridging model against the swept value, one line per
operational model, with its interval (moments: block-bootstrap CI at diagnostics.confidence_level; Hellinger: the
reference's 5–95 % null band at equal record length, shaded) and its target or control (the idealized long run's
moment; the free run's skill).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..diagnostics.figstyle import MAX_WIDTH_IN, plt, save_figure
from ..settings import PlottingSection

#: (column prefix, panel title, kind): "ci" has _ci_low/_ci_high, "null" a null band, "control" a free-run column
PANELS = (
    ("nino3_skewness", "Niño 3 skewness", "ci"),
    ("nino4_skewness", "Niño 4 skewness", "ci"),
    ("nino3_std", "Niño 3 std (°C)", "ci"),
    ("nino3_hellinger", "Niño 3 Hellinger to idealized", "null"),
    ("nino4_hellinger", "Niño 4 Hellinger to idealized", "null"),
    ("innovation_ratio", "innovation ratio (assimilated; withheld dashed)", "health"),
    ("sst_truth_correlation", "SST truth correlation (free run dotted)", "control"),
    ("thermocline_depth_truth_correlation", "D20 truth correlation (free run dotted)", "control"),
)


def _values(rows: Sequence[Mapping], column: str) -> np.ndarray:
    return np.array([np.nan if r.get(column) is None else float(r[column]) for r in rows])


def plot_sweep(
    name: str, labels: Sequence[str], rows: Sequence[Mapping], reference: Mapping, path, plotting: PlottingSection
) -> None:
    """One panel per headline statistic; x: the sweep's values in order (categorical), one line per model."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    panels = list(PANELS)
    if rows and "autoencoder_corr_loss" in rows[0]:  # a retraining sweep: its losses instead of the Niño 3 std
        panels[2] = ("autoencoder_corr_loss", "L_corr held-out (L_recon dashed, right)", "losses")
    x = np.arange(len(labels))
    fig, axes = plt.subplots(4, 2, figsize=(MAX_WIDTH_IN, 14), squeeze=False)  # legible at the report's width
    for ax, (column, title, kind) in zip(axes.flat, panels):
        twin = ax.twinx() if kind == "losses" else None
        for k, model in enumerate(models):
            mine = [r for r in rows if r["model"] == model]
            colour = f"C{k}"
            offset = (k - (len(models) - 1) / 2) * 0.06  # side by side where intervals overlap
            y = _values(mine, column)
            ax.plot(x + offset, y, "o-", color=colour, label=model)
            if kind == "ci":
                low, high = _values(mine, f"{column}_ci_low"), _values(mine, f"{column}_ci_high")
                ax.vlines(x + offset, low, high, color=colour, alpha=0.6, linewidth=2)
            elif kind == "null":
                low, high = _values(mine, f"{column}_null_low"), _values(mine, f"{column}_null_high")
                ax.fill_between(x, low, high, color=colour, alpha=0.12, linewidth=0)
            elif kind == "health":
                ax.plot(x + offset, _values(mine, "withheld_innovation_ratio"), "s--", color=colour, alpha=0.7)
            elif kind == "control":
                ax.plot(x + offset, _values(mine, f"{column}_free_run"), ":", color=colour)
            elif kind == "losses":
                twin.plot(x + offset, _values(mine, "autoencoder_recon_loss"), "s--", color=colour, alpha=0.7)
        index, _, moment = column.partition("_")
        if kind == "ci" and index in reference and moment in reference[index]:
            target = reference[index][moment]["value"]
            ax.axhline(target, color="0.3", linestyle="--", linewidth=1, label="idealized long run")
        if kind == "health":
            ax.axhspan(0.5, 2.0, color="0.9", zorder=0)
            ax.axhline(1.0, color="0.4", linewidth=0.8)
        ax.set_title(title)
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=20)
        ax.grid(alpha=0.3, axis="y")
    axes.flat[0].legend(loc="best")
    fig.suptitle(f"Sweep {name}: the bridging model against the swept value (bars: bootstrap CI; shading: null band)")
    fig.tight_layout()
    save_figure(fig, path, plotting.dpi)
