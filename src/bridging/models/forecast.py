"""The forecast model's training stage (rule ``train_forecast``), and the public interface of the forecast models.

The stage fits the linear model, trains the LSTM correction (``forecast.kind: lstm``), estimates each model's error
covariance, gates both and saves the chosen one. The models and their checkpoints live in :mod:`.forecasters`, the
closed-form fits in :mod:`.ridge`, the LSTM training in :mod:`.lstm_training`, the model error in
:mod:`.model_error`, the training data in :mod:`.latent_data`, the gate in :mod:`.gate` and its data in
:mod:`.gate_data`; the names the other stages use are re-exported here (``load_forecast_model``,
``ensure_gate_passed``, ...).

Data: the standardisation, the LSTM's subspace and (``forecast.skip_data: curriculum``, the default) the linear skip
are fitted on the curriculum's final mixture (1 − p_max operational, p_max reanalysis), the data the LSTM ends up
trained on (docs/method.md, Forecast model). Model error (``noise_cov``): the covariance of one-step residuals on
*held-out* months of the records the skip is fitted on.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..settings import CurriculumSection, ForecastSection
from .figures import plot_forecast_curves, plot_gate
from .forecasters import (
    CHECKPOINT_KIND,
    LatentForecaster,
    LinearForecaster,
    LSTMForecaster,
    ensure_gate_passed,
    load_forecast_model,
    save_forecast_model,
)
from .gate import run_gate
from .gate_data import build_gate_data
from .latent_data import LatentData, LatentRecord, load_latent_record
from .lstm_training import heldout_errors, train_lstm
from .model_error import (
    fit_noise_head,
    fluctuation_dissipation_covariance,
    one_step_pairs,
    one_step_residuals,
    residual_covariance,
)
from .ridge import RidgeFit, fit_ridge, mixture_moments, principal_basis
from .training import Timer, fingerprint, prepare_torch, seed_torch, training_checkpoint, write_json

__all__ = [
    "CHECKPOINT_KIND",
    "LSTMForecaster",
    "LatentForecaster",
    "LatentRecord",
    "LinearForecaster",
    "RidgeFit",
    "build_gate_data",
    "ensure_gate_passed",
    "fit_ridge",
    "load_forecast_model",
    "load_latent_record",
    "heldout_errors",
    "mixture_moments",
    "one_step_pairs",
    "one_step_residuals",
    "principal_basis",
    "residual_covariance",
    "save_forecast_model",
    "train_forecast",
    "train_forecast_into",
    "train_lstm",
]  # fmt: skip

log = logging.getLogger(__name__)


def train_forecast(
    latent_operational: str | Path,
    latent_reanalysis: str | Path,
    autoencoder_checkpoint: str | Path,
    operational_store: str | Path,
    reanalysis_store: str | Path,
    checkpoint_out: str | Path,
    metrics_out: str | Path,
    curves_out: str | Path,
    gate_figure_out: str | Path,
    *,
    forecast,
    curriculum,
    compute,
    grid,
) -> dict:
    """Fit the linear model, train the LSTM (when ``forecast.kind`` is lstm), gate both, save the chosen one.

    Writes the checkpoint (with ``noise_cov``, ``gate_passed`` and the gate report), the metrics JSON (training
    history, ridge fit, noise summary, both models' gate reports and skill tables) and two figures (training curves;
    skill against lead and the free runs). Returns the metrics record.
    """
    settings = ForecastSection.model_validate(forecast)
    cur = CurriculumSection.model_validate(curriculum)
    device = prepare_torch(compute)
    timer = Timer()
    data = LatentData.read(latent_operational, latent_reanalysis, settings, cur)
    linear, ridge = _linear_model(data, settings, device)
    models, noise = {"linear": linear}, {"linear": attach_noise(linear, data, ridge, settings, device)}
    training = {"history": [], "stopper": None, "initial_scores": None}
    if settings.kind == "lstm":
        checkpoint = training_checkpoint(
            checkpoint_out,
            fingerprint(
                {
                    "forecast": settings.model_dump(exclude={"gate"}),
                    "curriculum": cur.model_dump(),
                    "device": device.type,
                },
                [data.op.x, data.rean.x],
            ),
        )
        models["lstm"], training = _trained_lstm(data, ridge, settings, cur, device, checkpoint)
        noise["lstm"] = attach_noise(models["lstm"], data, ridge, settings, device)

    gate_data = build_gate_data(
        autoencoder_checkpoint,
        operational_store,
        reanalysis_store,
        data.op,
        data.rean,
        data.op_split,
        data.rean_split,
        cur.p_max,
        grid,
        settings.teacher_forcing_months,
        device,
        state_mean=data.mean,
        state_std=data.std,
    )
    reports = {}
    for name in reversed(list(models)):  # the chosen model first, so its report carries the baselines
        reports[name] = run_gate(
            models[name], gate_data, settings.gate, baselines={"linear": linear} if name != "linear" else {}
        )
        models[name].gate_passed = reports[name]["passed"]
        models[name].gate_report = reports[name]
    chosen = models[settings.kind]
    extra = _checkpoint_extra(data, settings, ridge, noise, training, latent_operational, latent_reanalysis)
    save_forecast_model(checkpoint_out, chosen, extra)

    record = _metrics_record(
        data, settings, cur, chosen, reports, extra, noise, training, seconds=timer.seconds, device=device
    )
    write_json(metrics_out, record)
    plot_forecast_curves(curves_out, record)
    plot_gate(
        gate_figure_out,
        reports,
        title=f"Forecast gate {data.op.source_id}: {settings.kind} ({'passed' if chosen.gate_passed else 'FAILED'})",
    )
    if settings.kind == "lstm":
        checkpoint.clear()
    log.info(
        "forecast model %s (%s): gate %s in %.0f s",
        data.op.source_id,
        settings.kind,
        "passed" if chosen.gate_passed else "FAILED",
        record["timing"]["seconds"],
    )
    return record


def train_forecast_into(
    latent_dir: str | Path, autoencoder, operational_store, reanalysis_store, out_dir: str | Path, **settings
) -> dict:
    """:func:`train_forecast` with the rule's file names: reads ``latent_dir``/{operational,reanalysis}.zarr, writes
    forecast.pt, forecast_metrics.json, forecast_curves.png and forecast_gate.png to ``out_dir``."""
    latent_dir, out_dir = Path(latent_dir), Path(out_dir)
    return train_forecast(
        latent_dir / "operational.zarr",
        latent_dir / "reanalysis.zarr",
        autoencoder,
        operational_store,
        reanalysis_store,
        out_dir / "forecast.pt",
        out_dir / "forecast_metrics.json",
        out_dir / "forecast_curves.png",
        out_dir / "forecast_gate.png",
        **settings,
    )


# --------------------------------------------------------------------------------------------------------------------
# The models


def _linear_model(data: LatentData, settings: ForecastSection, device) -> tuple[LinearForecaster, RidgeFit]:
    """The ridge skip, on the curriculum mixture (default) or the operational months (``forecast.skip_data``). The
    skip carries every direction of the state, so it must keep y consistent with the decoded z: fitted on latent
    states the autoencoder represents (docs/method.md, Forecast model)."""
    skip_segments, _, skip_weights = data.skip_records(settings.skip_data)
    ridge = fit_ridge(skip_segments, settings.ridge_alpha, skip_weights)
    log.info(
        "ridge fit on %d + %d months (weights %s): spectral radius %.3f, training RMSE %.3f",
        data.op_split.n_train,
        data.rean_split.n_train if len(skip_segments) > 1 else 0,
        skip_weights,
        ridge.spectral_radius,
        ridge.train_rmse,
    )
    return LinearForecaster(data.mean, data.std, ridge.weight, ridge.bias, n_latent=data.op.n_latent).to(device), ridge


def attach_noise(model: LatentForecaster, data: LatentData, ridge: RidgeFit, settings: ForecastSection, device) -> dict:
    """Set the model's error model (``forecast.noise``: Q, and the state-dependent head when configured); returns its
    summary. Held-out residuals are always computed: they are Q's one option and the yardstick of the other."""
    warmup = settings.teacher_forcing_months
    heldout_pairs = [(*one_step_pairs(model, x, warmup, device), w) for x, w in data.noise_validation]
    cov, heldout = residual_covariance([r for r, _, _ in heldout_pairs], [w for _, _, w in heldout_pairs])
    std = data.std.astype(np.float64)
    heldout_var = np.diag(cov) / std**2
    segments, raw, weights = data.skip_records(settings.skip_data)
    summary = {"covariance": settings.noise.covariance, "heldout_residuals": heldout}
    if settings.noise.covariance == "fluctuation_dissipation":
        q_std, summary["fluctuation_dissipation"] = fluctuation_dissipation_covariance(ridge.weight, segments, weights)
        cov = std[:, None] * q_std * std[None, :]
    else:
        q_std = cov / np.outer(std, std)
    n = data.op.n_latent
    summary["trace_standardised"] = {
        "q_latent": float(np.trace(q_std[:n, :n])),
        "q_observables": float(np.trace(q_std[n:, n:])),
        "heldout_residuals_latent": float(heldout_var[:n].sum()),
        "heldout_residuals_observables": float(heldout_var[n:].sum()),
    }
    model.noise_cov.copy_(torch.as_tensor(cov, dtype=model.noise_cov.dtype))
    if settings.noise.state_dependent:

        def standardised(residuals, origins, weight):
            return residuals / std, (origins - data.mean) / std, weight

        train = [standardised(*one_step_pairs(model, x, warmup, device), w) for x, w in zip(raw, weights)]
        head = fit_noise_head(
            q_std,
            _unit_variance_basis(segments, weights, settings.noise.predictors),
            train,
            [standardised(*pair) for pair in heldout_pairs],
            settings.noise.modes,
        )
        model.set_noise_head(head.modes, head.predictors, head.coef)
        summary["head"] = head.summary
    return summary


def _unit_variance_basis(segments: list[np.ndarray], weights: list[float], k: int) -> np.ndarray:
    """The leading k principal components of the standardised training mixture, scaled to unit variance."""
    basis = principal_basis(segments, k, weights)
    total = float(sum(weights))
    var = sum((w / total) * np.var(s.astype(np.float64) @ basis, axis=0) for s, w in zip(segments, weights))
    return basis / np.sqrt(var)


def _trained_lstm(
    data: LatentData, ridge: RidgeFit, settings: ForecastSection, cur: CurriculumSection, device, checkpoint
) -> tuple[LSTMForecaster, dict]:
    """The LSTM on the frozen ridge skip, trained (or resumed) to its best epoch; and its training record."""
    seed_torch(settings.seed)
    basis = principal_basis(data.segments, settings.lstm_subspace, data.segment_weights)
    lstm = LSTMForecaster(
        data.mean,
        data.std,
        ridge.weight,
        ridge.bias,
        settings.hidden,
        settings.layers,
        settings.dropout,
        n_latent=data.op.n_latent,
        basis=basis,
    ).to(device)
    xs_op, xs_rean = data.standardise(data.op.x), data.standardise(data.rean.x)
    lstm, history, stopper, initial_scores = train_lstm(
        lstm,
        xs_op[data.op_split.train],
        xs_rean[data.rean_split.train] if data.use_reanalysis else None,
        data.validation,
        settings,
        cur,
        device,
        checkpoint,
        data.enso_indices(),
    )
    if stopper.best_epoch < 0:
        log.warning(
            "no LSTM epoch beat the frozen linear skip's held-out ENSO-index error on every source (%s); the saved "
            "LSTM is that linear model (zero correction). forecast.kind: linear gives the same model without training",
            [round(v, 4) for v in initial_scores],
        )
    return lstm, {"history": history, "stopper": stopper, "initial_scores": initial_scores}


# --------------------------------------------------------------------------------------------------------------------
# Records


def _checkpoint_extra(
    data: LatentData, settings, ridge: RidgeFit, noise: dict, training: dict, latent_operational, latent_reanalysis
) -> dict:
    extra = {
        "source_id": data.op.source_id,
        "latent_stores": [str(latent_operational), str(latent_reanalysis)],
        "obs_coords": {k: np.asarray(v).tolist() for k, v in data.op.obs_coords.items()},
        "ridge": {
            "alpha": settings.ridge_alpha,
            "data": settings.skip_data,
            "spectral_radius": ridge.spectral_radius,
            "train_rmse": ridge.train_rmse,
        },
        "noise": noise[settings.kind],
    }
    if training["stopper"] is not None:
        extra["best_epoch"] = training["stopper"].best_epoch
    return extra


def _metrics_record(
    data: LatentData,
    settings,
    cur,
    chosen,
    reports: dict,
    extra: dict,
    noise: dict,
    training: dict,
    *,
    seconds: float,
    device,
) -> dict:
    op, rean, history, stopper = data.op, data.rean, training["history"], training["stopper"]
    return {
        "model": op.source_id,
        "kind": settings.kind,
        "gate_passed": chosen.gate_passed,
        "gate": reports[settings.kind],
        "gate_other_models": {k: v for k, v in reports.items() if k != settings.kind},
        "settings": {"forecast": settings.model_dump(), "curriculum": cur.model_dump()},
        "data": {
            "operational": {
                "path": str(op.path),
                "months": op.x.shape[0],
                "train_months": data.op_split.n_train,
                "heldout_months": data.op_split.n_validation,
            },
            "reanalysis": {
                "path": str(rean.path),
                "months": rean.x.shape[0],
                "train_months": data.rean_split.n_train,
                "heldout_months": data.rean_split.n_validation,
                "used_for_training": data.use_reanalysis,
            },
            "n_state": op.n_state,
            "n_latent": op.n_latent,
        },
        "ridge": extra["ridge"],
        "noise": noise,
        "history": history,
        "best_epoch": None if stopper is None else stopper.best_epoch,
        "best_epoch_note": "0-based; -1 = no epoch beat the untrained model, which is exactly the linear skip",
        "initial_heldout_index_error_by_source": training["initial_scores"],
        "heldout_score_note": "held-out ENSO-index error (leads forecast.score_leads) relative to the linear skip's, "
        "worst source; 1 = the linear skip",
        "best_heldout_score": None if stopper is None else stopper.best,
        "epochs_run": len(history),
        "stopped_early": bool(history) and len(history) < settings.epochs,
        "timing": {
            "seconds": seconds,
            "epochs_per_second": len(history) / seconds if history else None,
            "device": device.type,
        },
    }
