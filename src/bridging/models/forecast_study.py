"""Seeds × forecast-model variants on a finished run's latent stores: the study behind ``forecast.kind``,
``forecast.hidden`` and ``forecast.noise`` (docs/method.md, Forecast model).

Every variant is the ``train_forecast`` stage with a few settings changed, trained and gated as in a run, once per
seed (``forecast.seed`` and the gate's free-run ``forecast.gate.seed``), into its own folder. The table gives, per
variant, the mean and the spread (standard deviation over seeds) of what decides between them: the held-out decoded
Niño 3 / Niño 4 error at leads ≥ 3 months and its ratio to the linear model's, the stopping record, and the gate's
100-year free-run skewness against the training mixture's, with the number of seeds whose free run lies within 2
combined standard errors of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import write_text_atomic
from ..settings import ForecastSection
from .forecast import train_forecast_into
from .training import write_json

MIN_LEAD = 3  # the 3–12-month window: the gate's leads from 3 on
SKEWNESS_SE_FACTOR = 2.0


def standard_variants(hidden_sizes: list[int]) -> dict[str, dict]:
    """The variants the forecast model's defaults were chosen from: the linear model without and with the
    state-dependent noise head, and the LSTM at each hidden size."""
    variants: dict[str, dict] = {
        "linear": {"kind": "linear", "noise": {"state_dependent": False}},
        "linear+head": {"kind": "linear", "noise": {"state_dependent": True}},
    }
    for hidden in hidden_sizes:
        variants[f"lstm{hidden}"] = {"kind": "lstm", "hidden": hidden}
    return variants


def forecast_study(
    paths: dict[str, Path],
    variants: dict[str, dict],
    seeds: list[int],
    out_dir: str | Path,
    *,
    forecast,
    curriculum,
    compute,
    grid,
) -> dict:
    """Train and gate every variant (overrides of the ``forecast`` settings) for every seed; write ``study.json`` and
    ``study.md`` to ``out_dir``. ``paths`` are the ``train_forecast`` rule's inputs
    (``bridging.commands.train_forecast.default_paths``); the other settings are those of the stage."""
    out_dir = Path(out_dir)
    base = ForecastSection.model_validate(forecast).model_dump()
    rows = []
    for name, overrides in variants.items():
        for seed in seeds:
            settings = _merged(base, overrides) | {"seed": seed}
            settings["gate"] = settings["gate"] | {"seed": seed}
            folder = out_dir / f"{name}_seed{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            record = train_forecast_into(
                paths["latent_dir"],
                paths["autoencoder"],
                paths["operational_store"],
                paths["reanalysis_store"],
                folder,
                forecast=settings,
                curriculum=curriculum,
                compute=compute,
                grid=grid,
            )
            rows.append({"variant": name, "seed": seed, **study_row(record)})
    study = {"variants": variants, "seeds": list(seeds), "runs": rows, "summary": summarise(rows)}
    write_json(out_dir / "study.json", study)
    write_text_atomic(markdown(study), out_dir / "study.md")
    return study


def _merged(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = _merged(base[key], value) if isinstance(value, dict) else value
    return merged


def study_row(record: dict) -> dict:
    """The numbers of one trained model's metrics record that the study compares."""
    skill, free = record["gate"]["skill"], record["gate"]["free_run"]
    late = [i for i, lead in enumerate(skill["leads"]) if lead >= MIN_LEAD]
    row = {
        "epochs_run": record["epochs_run"],
        "best_epoch": record["best_epoch"],
        "best_heldout_score": record["best_heldout_score"],
        "seconds": record["timing"]["seconds"],
    }
    for box in ("nino3", "nino4"):
        by_model = skill[f"{box}_rmse_degC"]
        model_error = float(np.mean([by_model["model"][i] for i in late]))
        linear_error = float(np.mean([by_model.get("linear", by_model["model"])[i] for i in late]))
        row[f"{box}_rmse"] = model_error
        row[f"{box}_rmse_vs_linear"] = model_error / linear_error
        skew, se = free["index_skewness"][box], free["index_skewness_se"][box]
        ref = free["reference_details"]
        row[f"{box}_skewness"] = skew
        row[f"{box}_skewness_se"] = se
        row[f"{box}_reference_skewness"] = ref["skewness"][box]
        combined = float(np.hypot(se, ref["skewness_se"][box]))
        row[f"{box}_skewness_within_2se"] = bool(abs(skew - ref["skewness"][box]) <= SKEWNESS_SE_FACTOR * combined)
    row["nino3_corr_by_lead"] = dict(zip(skill["leads"], skill["nino3_corr"]["model"]))
    return row


SUMMARY_KEYS = (
    "nino3_rmse",
    "nino3_rmse_vs_linear",
    "nino4_rmse",
    "nino4_rmse_vs_linear",
    "nino3_skewness",
    "nino4_skewness",
    "best_heldout_score",
    "epochs_run",
    "seconds",
)


def summarise(rows: list[dict]) -> dict:
    """Per variant: mean and standard deviation over seeds (ddof 1; 0 for one seed), and seeds within 2 SE."""
    summary = {}
    for name in dict.fromkeys(r["variant"] for r in rows):
        runs = [r for r in rows if r["variant"] == name]
        entry = {"n_seeds": len(runs), "best_epochs": [r["best_epoch"] for r in runs]}
        for key in SUMMARY_KEYS:
            values = np.array([np.nan if r[key] is None else r[key] for r in runs], float)
            entry[key] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            }
        for box in ("nino3", "nino4"):
            entry[f"{box}_skewness_within_2se"] = int(sum(r[f"{box}_skewness_within_2se"] for r in runs))
            entry[f"{box}_reference_skewness"] = runs[0][f"{box}_reference_skewness"]
        summary[name] = entry
    return summary


def markdown(study: dict) -> str:
    """The summary as a Markdown table (mean ± spread over seeds)."""

    def cell(entry, key, fmt="{:.3f}"):
        v = entry[key]
        return f"{fmt.format(v['mean'])} ± {fmt.format(v['std'])}"

    lines = [
        f"Forecast-model study: {len(study['seeds'])} seeds {study['seeds']}; mean ± standard deviation over seeds. "
        f"Decoded Niño errors: held-out operational months, mean over gate leads ≥ {MIN_LEAD} months. Skewness: the "
        "gate's 100-year free run; 'within 2 SE': seeds whose free run lies within 2 combined SE of the training "
        "mixture's.",
        "",
        "| variant | Niño 3 RMSE (°C) | / linear | Niño 4 RMSE (°C) | / linear | Niño 3 skew (ref) | within 2 SE "
        "| Niño 4 skew (ref) | within 2 SE | best epochs | epochs run | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in study["summary"].items():
        lines.append(
            f"| {name} | {cell(e, 'nino3_rmse')} | {cell(e, 'nino3_rmse_vs_linear')} | {cell(e, 'nino4_rmse')} "
            f"| {cell(e, 'nino4_rmse_vs_linear')} | {cell(e, 'nino3_skewness', '{:.2f}')} "
            f"({e['nino3_reference_skewness']:.2f}) | {e['nino3_skewness_within_2se']}/{e['n_seeds']} "
            f"| {cell(e, 'nino4_skewness', '{:.2f}')} ({e['nino4_reference_skewness']:.2f}) "
            f"| {e['nino4_skewness_within_2se']}/{e['n_seeds']} | {e['best_epochs']} "
            f"| {cell(e, 'epochs_run', '{:.0f}')} | {cell(e, 'seconds', '{:.0f}')} |"
        )
    return "\n".join(lines) + "\n"
