"""Figures of the model stages (matplotlib, Agg backend: no display needed, safe in cluster jobs): training curves
of the autoencoder and the forecast model, and the forecast gate's skill and free runs."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..atomic import atomic_output  # noqa: E402


def plot_panels(path: str | Path, panels: list[dict], *, title: str, dpi: int = 120) -> Path:
    """Line panels: each {"title", "xlabel", "ylabel", "series": {label: (x, y)}, "logy"?, "hline"?}; written atomically."""
    n = len(panels)
    ncol = min(n, 3)
    nrow = int(math.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.4 * nrow), squeeze=False)
    for ax, panel in zip(axes.ravel(), panels):
        for label, (x, y) in panel["series"].items():
            y = np.asarray([np.nan if v is None else v for v in y], dtype=float)
            style = panel.get("styles", {}).get(label, "-")
            ax.plot(np.asarray(x), y, style, label=label, lw=1.4, ms=4)
        if panel.get("logy"):
            ax.set_yscale("log")
        for value, label in panel.get("hlines", []):
            ax.axhline(value, color="0.5", ls=":", lw=1)
            ax.annotate(label, (0.01, value), xycoords=("axes fraction", "data"), fontsize=7, color="0.4", va="bottom")
        ax.set_title(panel["title"], fontsize=10)
        ax.set_xlabel(panel.get("xlabel", "epoch"))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return Path(path)


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
                "title": f"held-out mean RMSE, leads 1–{len(h[0]['heldout_rmse_by_lead'][0])} (best epoch {record['best_epoch'] + 1}; 0 = initial)",
                "series": {"held-out": (epochs, [r["heldout_score"] for r in h])},
                "hlines": [(record["initial_heldout_score"], "initial model = linear skip")],
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
    plot_panels(path, panels, title=title, dpi=dpi)
