"""Figures of the model stages (matplotlib, Agg backend: no display needed, safe in cluster jobs): training curves
of the autoencoder and the forecast model, and the forecast gate's checks, skill and free runs. Shown in the report
(rules train_autoencoder and train_forecast), so they follow its legibility rule (:mod:`..diagnostics.figstyle`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..diagnostics.figstyle import MAX_WIDTH_IN, plt, save_figure


def plot_panels(
    path: str | Path, panels: list[dict], *, title: str, dpi: int = 120, checks: dict | None = None
) -> Path:
    """Line panels, two per row: each {"title", "xlabel", "ylabel", "series": {label: (x, y)}, "logy"?, "hlines"?,
    "styles"?}; ``checks`` (optional) first: the gate's criteria (:func:`plot_checks`). Written atomically."""
    n = len(panels) + (1 if checks else 0)
    ncol = min(n, 2)
    nrow = int(math.ceil(n / ncol))
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(MAX_WIDTH_IN * ncol / 2, 3.5 * nrow), squeeze=False, layout="constrained"
    )
    flat = list(axes.ravel())
    if checks:
        plot_checks(flat.pop(0), checks)
    for ax, panel in zip(flat, panels):
        for label, (x, y) in panel["series"].items():
            y = np.asarray([np.nan if v is None else v for v in y], dtype=float)
            style = panel.get("styles", {}).get(label, "-")
            ax.plot(np.asarray(x), y, style, label=label, lw=1.4, ms=4)
        if panel.get("logy"):
            ax.set_yscale("log")
        for value, label in panel.get("hlines", []):
            ax.axhline(value, color="0.5", ls=":", lw=1)
            ax.annotate(label, (0.01, value), xycoords=("axes fraction", "data"), color="0.3", va="bottom")
        ax.set_title(panel["title"])
        ax.set_xlabel(panel.get("xlabel", "epoch"))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    save_figure(fig, path, dpi)
    return Path(path)


def plot_checks(ax, checks: dict[str, dict]) -> None:
    """The gate's criteria of each model (``checks``: model name → gate report): every check's value against its
    allowed range, in units of that range, so the checks share one axis; a check passes inside the green band.

    Std ratios: |ratio − 1| / tolerance (pass ≤ 1); one-step RMSE: model / persistence (pass < 1); free-run
    consistency: (1 − r) / (1 − r_min) (pass ≤ 1); a blown-up free run is drawn at the right edge.
    """
    names = list(checks)
    rows = ["free run bounded", "Niño 3 std ratio", "Niño 4 std ratio", "one-step RMSE", "free-run consistency"]
    ax.axvspan(0, 1, color="tab:green", alpha=0.12, zorder=0)
    ax.axvline(1, color="tab:green", lw=1.2)
    edge = 3.0
    for k, name in enumerate(names):
        points = _check_points(checks[name]["criteria"], edge)
        y = np.arange(len(rows)) + (k - (len(names) - 1) / 2) * 0.3
        shown = np.minimum(np.asarray([p[0] for p in points], float), edge)
        line = ax.plot(shown, y, "o", ms=8, label=f"{name} ({'pass' if checks[name]['passed'] else 'FAIL'})")[0]
        for x, yy, (_, text) in zip(shown, y, points):
            if np.isfinite(x):
                left = x > edge / 2  # text on the side with room
                ax.annotate(text, (x, yy), xytext=(-8 if left else 8, 0), textcoords="offset points",
                            ha="right" if left else "left", va="center", color=line.get_color())  # fmt: skip
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows)
    ax.invert_yaxis()
    ax.set_xlim(0, edge + 0.1)
    ax.set_xlabel("distance to the limit (≤ 1 passes; right edge: beyond or blown up)")
    ax.set_title("gate checks: free run vs training data, one-step skill")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="lower right")


def _check_points(criteria: dict, edge: float) -> list[tuple[float, str]]:
    """(distance to the limit, value as text) of each check, in the rows' order of :func:`plot_checks`."""
    bounded = criteria["free_run_bounded"]
    points = [(0.0, "bounded") if bounded["value"] else (edge, "blew up")]
    for key in ("nino3_std_ratio", "nino4_std_ratio"):
        c = criteria[key]
        lo, hi = c["limit"]
        if c["value"] is None:
            points.append((edge, "–"))
        else:
            points.append((abs(c["value"] - 1) / ((hi - lo) / 2), f"{c['value']:.2f} (allowed {lo:.2f}–{hi:.2f})"))
    c = criteria["one_step_rmse_vs_persistence"]
    points.append(
        (c["value"] / c["limit"] if c["limit"] else edge, f"{c['value']:.3f} vs persistence {c['limit']:.3f}")
    )
    c = criteria.get("free_run_consistency")
    if c is None or c["value"] is None:
        points.append((np.nan, ""))
    else:
        points.append(((1 - c["value"]) / max(1 - c["limit"], 1e-9), f"r = {c['value']:.2f} (≥ {c['limit']:.2f})"))
    return points


def plot_autoencoder_curves(path, record: dict) -> None:
    """Losses, ‖C‖ and the curriculum by epoch, from the metrics record of ``train_autoencoder``."""
    h = record["history"]
    epochs = [r["epoch"] + 1 for r in h]

    def series(key):
        return {
            "train (drawn samples)": (epochs, [r["train"][key] for r in h]),
            "held-out operational": (epochs, [r["heldout_operational"][key] for r in h]),
            "held-out reanalysis": (epochs, [r["heldout_reanalysis"][key] for r in h]),
        }

    panels = [
        {"title": "L_recon (standardised, ocean only)", "ylabel": "MSE", "series": series("recon_loss"), "logy": True},
        {"title": "L_corr (designated latents)", "ylabel": "−mean corr", "series": series("corr_loss")},
        {"title": "cross-covariance norm ‖C‖", "ylabel": "‖cov(z, y/σ_y)‖_F", "series": series("cross_cov_norm")},
        {
            "title": "curriculum",
            "ylabel": "probability",
            "series": {
                "p_e (reanalysis)": (epochs, [r["p_reanalysis"] for r in h]),
                "share drawn": (epochs, [r["reanalysis_share"] for r in h]),
            },
        },
    ]
    best = record["best_epoch"] + 1
    for p in panels[:3]:
        p["title"] += f" (best epoch {best})"
    plot_panels(path, panels, title=f"Autoencoder {record['model']}: λ = {record['loss']['lambda_corr']}")


def plot_forecast_curves(path, record: dict) -> None:
    """Training loss, held-out score, curriculum and held-out skill by lead, from the metrics record of
    ``train_forecast``."""
    h = record["history"]
    gate = record["gate"]["skill"]
    leads = gate["leads"]
    panels = []
    if h:
        epochs = [r["epoch"] + 1 for r in h]
        panels += [
            {
                "title": "training loss (standardised MSE)",
                "series": {"train": (epochs, [r["train_loss"] for r in h])},
                "logy": True,
            },
            {
                "title": f"held-out ENSO-index error / linear skip's, worst source (best epoch {record['best_epoch'] + 1}; 0 = linear)",
                "series": {"held-out": (epochs, [r["heldout_score"] for r in h])},
                "hlines": [(1.0, "linear skip")],
            },
            {
                "title": "curriculum",
                "ylabel": "",
                "series": {
                    "p_e (reanalysis)": (epochs, [r["p_reanalysis"] for r in h]),
                    "rollout k / max": (
                        epochs,
                        [r["rollout_k"] / record["settings"]["forecast"]["rollout_max"] for r in h],
                    ),
                },
            },
        ]
    panels.append(
        {
            "title": "held-out latent RMSE by lead",
            "xlabel": "lead (months)",
            "series": {(record["kind"] if k == "model" else k): (leads, v) for k, v in gate["latent_rmse"].items()},
        }
    )
    plot_panels(path, panels, title=f"Forecast model {record['model']} ({record['kind']})")


def plot_gate(path, reports: dict[str, dict], *, title: str, dpi: int = 120) -> None:
    """Skill against lead (latent, SST, thermocline, Niño 3 correlation) and the free runs' decoded Niño 3."""
    first_name = next(iter(reports))
    first = reports[first_name]["skill"]
    leads = first["leads"]
    styles = {"persistence": "k--", "climatology": "k:", "autoencoder_floor": "0.6"}

    def lead_series(key):
        # The first report holds the chosen model and every baseline (linear, persistence, climatology, floor).
        return {(first_name if name == "model" else name): (leads, values) for name, values in first[key].items()}

    panels = [
        {
            "title": "latent RMSE (standardised state)",
            "xlabel": "lead (months)",
            "series": lead_series("latent_rmse"),
            "styles": styles,
        },
        {"title": "SST RMSE (°C)", "xlabel": "lead (months)", "series": lead_series("sst_rmse_degC"), "styles": styles},
        {
            "title": "thermocline RMSE (m)",
            "xlabel": "lead (months)",
            "series": lead_series("thermocline_rmse_m"),
            "styles": styles,
        },
        {
            "title": "Niño 3 correlation",
            "xlabel": "lead (months)",
            "series": lead_series("nino3_corr"),
            "styles": styles,
        },
    ]
    free_series, hlines = {}, []
    for name, rep in reports.items():
        series = rep["free_run"].get("nino3_first_30_years")
        if series:
            free_series[
                f"{name} (std ratio {rep['free_run']['std_ratio']['nino3']:.2f}, {'pass' if rep['passed'] else 'FAIL'})"
            ] = (np.arange(len(series)) / 12.0, series)
        ref = rep["free_run"]["reference_index_std"]["nino3"]
    hlines = [(ref, "+1 std (training data)"), (-ref, "−1 std")]
    panels.append(
        {"title": "noisy free run: decoded Niño 3 (°C)", "xlabel": "year", "series": free_series, "hlines": hlines}
    )
    plot_panels(path, panels, title=title, dpi=dpi, checks=reports)
