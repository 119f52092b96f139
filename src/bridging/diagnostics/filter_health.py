"""The filter-health figure (rule ``filter_health``): how the bridging filter and its free-run control behaved, per
decade, from the statistics the filter stage writes beside its store (:mod:`bridging.da.statistics`).

* the innovation ratio E[d²]/(spread² + R): ≈ 1 for a filter whose ensemble spread explains its distance to the
  observations; far above 1 the ensemble has collapsed (the filter logs a warning above ``da.innovation_ratio_warn``);
* the correlation and slope of the decoded fields at the observation points against the analysis observables: a
  latent state drifting off the autoencoder's manifold shows here first (warning below ``da.consistency_warn``; the
  autoencoder's own consistency on training states is the ceiling);
* the adaptive model-noise factor (when ``da.adaptive_noise`` is on) and the ensemble spreads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputDataError
from ..settings import PlottingSection
from .figstyle import ROLE_STYLE, plt, save_figure

RUNS = {"assimilation": ("bridging filter", "bridging"), "free_run": ("free run (control)", "free_run")}


def read_statistics(path) -> dict:
    """A filter stage's statistics JSON (``<kind>/<model>_statistics.json``)."""
    try:
        record = json.loads(Path(path).read_text())
        record["per_decade"]  # noqa: B018 (the one key the figure cannot do without)
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputDataError(path, f"not a filter statistics record ({err!r})") from None
    return record


def decade_series(record: dict, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(mid-decade year since the run's start, values (decade, experiment)) of one per-decade statistic."""
    rows = [r for r in record["per_decade"] if key in r]
    if not rows:
        return None
    years = np.array([(r["first_month"] + r["months"] / 2) / 12 for r in rows])
    values = np.array([[np.nan if v is None else v for v in r[key]] for r in rows], float)
    return years, values


def _experiment_label(record: dict, b: int, name: str) -> str:
    experiments = record.get("experiments") or []
    if len(experiments) <= 1:
        return name
    return name + " (" + ", ".join(f"{k} {v:g}" for k, v in experiments[b].items()) + ")"


PANELS = (
    ("innovation_ratio", "innovation ratio E[d²]/(spread² + R)", "ratio"),
    ("consistency_correlation", "decoded vs analysis observables: correlation", "correlation"),
    ("consistency_slope", "decoded vs analysis observables: slope", "slope"),
    ("model_noise_factor", "adaptive model-noise factor", "factor"),
    ("spread_latent", "ensemble spread, latent block", "rms spread (standardised)"),
    ("spread_obs", "ensemble spread, observables", "rms spread (in obs. std)"),
)


def plot_filter_health(
    records: dict, path, plotting: PlottingSection, *, innovation_ratio_warn: float, consistency_warn: float, title: str
) -> None:
    """Per-decade statistics of each filter run (``records``: kind → statistics record) against their warning
    thresholds; one line per run and experiment."""
    fig, axes = plt.subplots(3, 2, figsize=(11.0, 10.0), layout="constrained")
    for ax, (key, panel_title, ylabel) in zip(axes.ravel(), PANELS):
        drawn = False
        for kind, record in records.items():
            series = decade_series(record, key)
            if series is None:
                continue
            name, role = RUNS[kind]
            years, values = series
            for b in range(values.shape[1]):
                style = {**ROLE_STYLE[role], "alpha": 1.0 if b == 0 else 0.6}
                ax.plot(
                    years, values[:, b], marker="o", markersize=4, label=_experiment_label(record, b, name), **style
                )
                drawn = True
        if key == "innovation_ratio":
            ax.axhline(1.0, color="0.4", linewidth=1.0, linestyle="--", label="consistent (1)")
            ax.axhline(innovation_ratio_warn, color="tab:red", linewidth=1.0, linestyle=":", label="warning")
        elif key == "consistency_correlation":
            ax.axhline(consistency_warn, color="tab:red", linewidth=1.0, linestyle=":", label="warning")
            ceiling = records.get("assimilation", {}).get("autoencoder", {}).get("training_consistency_correlation")
            if ceiling is not None:
                ax.axhline(ceiling, color="0.4", linewidth=1.0, linestyle="--", label="autoencoder on training states")
        elif key == "consistency_slope":
            ax.axhline(1.0, color="0.4", linewidth=1.0, linestyle="--", label="consistent (1)")
        if not drawn:
            reason = "adaptive model noise off" if key == "model_noise_factor" else "not recorded"
            ax.text(0.5, 0.5, reason, ha="center", va="center", transform=ax.transAxes, color="0.3")
        ax.set_title(panel_title)
        ax.set_xlabel("years since the start of the run (decade means)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(loc="best")
    fig.suptitle(title)
    save_figure(fig, path, plotting.dpi)


def filter_health_stage(
    assimilation, free_run, *, figure, plotting: dict | PlottingSection, innovation_ratio_warn: float,
    consistency_warn: float, model: str,
) -> None:  # fmt: skip
    """The rule ``filter_health``: the figure from the bridging filter's and the free run's statistics JSONs."""
    records = {"assimilation": read_statistics(assimilation), "free_run": read_statistics(free_run)}
    warnings = len(records["assimilation"].get("warnings", []))
    plot_filter_health(
        records,
        figure,
        PlottingSection.model_validate(plotting),
        innovation_ratio_warn=innovation_ratio_warn,
        consistency_warn=consistency_warn,
        title=f"Filter health, {model}: {warnings} warning{'s' if warnings != 1 else ''} in the filter's log",
    )
