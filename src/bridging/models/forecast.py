"""The forecast model's training stage (rule ``train_forecast``), and the public interface of the forecast models.

The stage fits the linear model, trains the LSTM correction (``forecast.kind: lstm``), estimates each model's error
covariance, gates both and saves the chosen one. The models and their checkpoints live in :mod:`.forecasters`, the
closed-form fits in :mod:`.ridge`, the LSTM training in :mod:`.lstm_training`, the model error in
:mod:`.model_error`, the gate in :mod:`.gate`; the names the other stages use are re-exported here
(``load_forecast_model``, ``ensure_gate_passed``, ...).

Data: the standardisation, the LSTM's subspace and (``forecast.skip_data: curriculum``, the default) the linear skip
are fitted on the curriculum's final mixture (1 − p_max operational, p_max reanalysis), the data the LSTM ends up
trained on (docs/method.md, Forecast model). Model error (``noise_cov``): the covariance of one-step residuals on
*held-out* months of the records the skip is fitted on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from ..errors import InputDataError
from ..grid import TargetGrid
from ..settings import CurriculumSection, ForecastSection
from .conv_autoencoder import decode_array, load_autoencoder
from .enso_score import EnsoIndices
from .field_records import load_field_record
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
from .gate import NINO_BOXES, GateData, box_indices, index_weights, mixture_skewness, run_gate, skewness_se
from .latent import open_latent_store
from .lstm_training import heldout_errors, train_lstm
from .model_error import (
    fit_noise_head,
    fluctuation_dissipation_covariance,
    one_step_pairs,
    one_step_residuals,
    residual_covariance,
)
from .ridge import RidgeFit, fit_ridge, mixture_moments, principal_basis
from .training import (
    Timer,
    TimeSplit,
    fingerprint,
    prepare_torch,
    seed_torch,
    time_split,
    training_checkpoint,
    write_json,
)

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
    training = {"history": [], "stopper": None, "initial_score": None}
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


# --------------------------------------------------------------------------------------------------------------------
# Data


@dataclass
class LatentRecord:
    """One latent store as the augmented state x = [z; y] (state units)."""

    path: Path
    source_id: str
    x: np.ndarray  # (time, n_state) float32
    n_latent: int
    obs_coords: dict
    time: xr.DataArray

    @property
    def n_state(self) -> int:
        return self.x.shape[1]


def load_latent_record(path: str | Path) -> LatentRecord:
    ds = open_latent_store(path)
    z = ds["z"].transpose("time", "latent").values.astype(np.float32)
    y = ds["y"].transpose("time", "obs").values.astype(np.float32)
    x = np.concatenate([z, y], axis=1)
    if not np.isfinite(x).all():
        raise InputDataError(path, "z or y contain NaN/inf")
    obs = {c: ds[c].values for c in ds["y"].coords if c.startswith("obs_")}
    return LatentRecord(Path(path), str(ds.attrs.get("source_id", Path(path).stem)), x, z.shape[1], obs, ds["time"])


def _same_observables(a: LatentRecord, b: LatentRecord) -> bool:
    if a.n_latent != b.n_latent or set(a.obs_coords) != set(b.obs_coords):
        return False
    return all(np.array_equal(np.asarray(a.obs_coords[k]), np.asarray(b.obs_coords[k])) for k in a.obs_coords)


@dataclass
class LatentData:
    """Both latent records, their time splits, and the standardisation on the curriculum's final mixture.

    Everything is fitted on that mixture (1 − p_max operational, p_max reanalysis), the data the LSTM ends up trained
    on: the standardisation, the linear skip (``forecast.skip_data: curriculum``) and the LSTM's subspace.
    Standardising by the operational months alone would give latents the operational record hardly uses (but the
    reanalysis does) a tiny scale, and free runs would reach tens of "standard deviations" in them.
    """

    op: LatentRecord
    rean: LatentRecord
    op_split: TimeSplit
    rean_split: TimeSplit
    use_reanalysis: bool
    segments: list[np.ndarray]  # standardised training segments of the mixture
    segment_weights: list[float]
    mean: np.ndarray
    std: np.ndarray
    validation: list[tuple[np.ndarray, float]]  # held-out (x, weight) in state units, weight > 0
    noise_validation: list[tuple[np.ndarray, float]]  # those of the records the skip is fitted on

    @classmethod
    def read(
        cls, latent_operational, latent_reanalysis, settings: ForecastSection, cur: CurriculumSection
    ) -> LatentData:
        op, rean = load_latent_record(latent_operational), load_latent_record(latent_reanalysis)
        if not _same_observables(op, rean):
            raise InputDataError(
                [latent_operational, latent_reanalysis],
                "the two latent stores differ in latent size or observables; re-encode both",
            )
        teacher = settings.teacher_forcing_months
        window = teacher + settings.rollout_max + 1
        min_val = teacher + max(settings.rollout_max, settings.score_leads[1], max(settings.gate.leads)) + 1
        op_split = time_split(
            op.x.shape[0], settings.validation_fraction, min_train=window, min_validation=min_val, what=str(op.path)
        )
        use_rean = cur.p_max > 0 or cur.p_start > 0
        rean_split = time_split(
            rean.x.shape[0],
            settings.validation_fraction,
            min_train=window if use_rean else 1,
            min_validation=min_val if use_rean else 1,
            what=str(rean.path),
        )
        raw_segments, seg_weights = [op.x[op_split.train]], [1.0 - cur.p_max]
        if use_rean and cur.p_max > 0:
            raw_segments.append(rean.x[rean_split.train])
            seg_weights.append(cur.p_max)
        mean, std = mixture_moments(raw_segments, seg_weights)
        if not np.all(std > 0):
            raise InputDataError(
                op.path, f"{int(np.sum(std <= 0))} state components are constant over the training months"
            )
        weights = [(op.x[op_split.validation], 1.0 - cur.p_max), (rean.x[rean_split.validation], cur.p_max)]
        validation = [(x, w) for x, w in weights if w > 0]
        # Model error from the held-out months of the records the skip is fitted on: residuals on reanalysis months
        # that the autoencoder represents off its manifold have observable errors no latent error matches, and noisy
        # forecasts then lose y–z consistency (docs/method.md, Forecast model).
        noise_validation = validation if settings.skip_data == "curriculum" else validation[:1]
        data = cls(op, rean, op_split, rean_split, use_rean, [], seg_weights, mean, std, validation, noise_validation)
        data.segments = [data.standardise(x) for x in raw_segments]
        return data

    def standardise(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def skip_records(self, skip_data: str) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
        """The records the linear skip (and the model error) are fitted on: standardised training segments, the same
        training months in state units, and their weights (``forecast.skip_data``)."""
        raw = [self.op.x[self.op_split.train], self.rean.x[self.rean_split.train]][: len(self.segments)]
        if skip_data == "curriculum":
            return self.segments, raw, self.segment_weights
        return self.segments[:1], raw[:1], [1.0]

    def enso_indices(self) -> EnsoIndices:
        """The indices of the LSTM's stopping score (:mod:`.enso_score`)."""
        return EnsoIndices.from_training(
            self.op.obs_coords, self.op.n_latent, self.std, self.segments, self.segment_weights
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
    lstm, history, stopper, initial_score = train_lstm(
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
            "no LSTM epoch beat the frozen linear skip on the held-out multi-step error (%.4f); the saved LSTM "
            "is that linear model (zero correction). forecast.kind: linear gives the same model without training",
            initial_score,
        )
    return lstm, {"history": history, "stopper": stopper, "initial_score": initial_score}


# --------------------------------------------------------------------------------------------------------------------
# The gate's data


def build_gate_data(
    autoencoder_checkpoint,
    operational_store,
    reanalysis_store,
    op: LatentRecord,
    rean: LatentRecord,
    op_split,
    rean_split,
    reanalysis_weight: float,
    grid,
    warmup: int,
    device,
    *,
    state_mean,
    state_std,
):
    """The operational held-out months (latent + true fields), the free run's warm-up and the reference Niño std."""
    ae = load_autoencoder(autoencoder_checkpoint, device)
    target_grid = TargetGrid.from_config(grid)
    records = {}
    for name, store, latent in (("operational", operational_store, op), ("reanalysis", reanalysis_store, rean)):
        if ae.latent_dim != latent.n_latent:
            raise InputDataError(
                latent.path,
                f"has {latent.n_latent} latents but the autoencoder {autoencoder_checkpoint} has {ae.latent_dim}; re-encode",
            )
        records[name] = load_field_record(store, grid=target_grid, layout=ae.layout, field_std=ae.field_std)
        if len(records[name]) != latent.x.shape[0]:
            raise InputDataError(
                latent.path, f"has {latent.x.shape[0]} months but the store {store} has {len(records[name])}; re-encode"
            )
    ae_mask = np.asarray(ae.ocean_mask.cpu().numpy(), bool)
    sst = list(ae.field_names).index("sst")
    variances, train_indices = {}, {}
    for name, split in (("operational", op_split), ("reanalysis", rean_split)):
        # Indices over cells that are ocean in the autoencoder's domain and in the source.
        mask = ae_mask & records[name].ocean
        train_sst = records[name].standardised[split.train, sst] * ae.field_std["sst"]
        train_indices[name] = box_indices(train_sst, index_weights(target_grid, mask))
        variances[name] = {box: float(train_indices[name][:, i].var()) for i, box in enumerate(NINO_BOXES)}
    w = float(reanalysis_weight)
    mixture = [(train_indices["operational"], 1 - w), (train_indices["reanalysis"], w)]
    mixture = [(indices, weight) for indices, weight in mixture if weight > 0]
    reference = {
        box: float(np.sqrt((1 - w) * variances["operational"][box] + w * variances["reanalysis"][box]))
        for box in NINO_BOXES
    }
    op_mask = ae_mask & records["operational"].ocean
    # The same indices from the decoded *true* latents: separates an autoencoder that loses ENSO amplitude from a
    # forecast model that does.
    decoded = decode_array(ae, op.x[op_split.train, : op.n_latent], device=device)[:, sst] * ae.field_std["sst"]
    decoded_indices = box_indices(decoded, index_weights(target_grid, op_mask))
    details = {
        "definition": "sqrt((1 - p_max) * var_operational + p_max * var_reanalysis), training months, true fields",
        "p_max": w,
        "std_by_source": {name: {box: float(np.sqrt(v)) for box, v in var.items()} for name, var in variances.items()},
        "decoded_operational_std": {box: float(decoded_indices[:, i].std()) for i, box in enumerate(NINO_BOXES)},
        "skewness": {
            box: mixture_skewness([x[:, i] for x, _ in mixture], [v for _, v in mixture])
            for i, box in enumerate(NINO_BOXES)
        },
        "skewness_se": {
            box: skewness_se([x[:, i] for x, _ in mixture], [v for _, v in mixture]) for i, box in enumerate(NINO_BOXES)
        },
    }
    layout = ae.layout

    def observe(fields_std: np.ndarray) -> np.ndarray:
        physical = {
            name: np.where(op_mask, fields_std[:, c] * ae.field_std[name], np.nan)
            for c, name in enumerate(ae.field_names)
        }
        return layout.extract(physical, target_grid)

    return GateData(
        observe=observe,
        x_heldout=op.x[op_split.validation],
        fields_heldout=records["operational"].standardised[op_split.validation],
        x_warmup=op.x[op_split.n_train - warmup : op_split.n_train],
        reference_index_std=reference,
        decode=lambda z: decode_array(ae, z, device=device),
        field_names=tuple(ae.field_names),
        field_std=dict(ae.field_std),
        ocean_mask=op_mask,
        grid=target_grid,
        n_latent=op.n_latent,
        state_mean=np.asarray(state_mean, np.float64),
        state_std=np.asarray(state_std, np.float64),
        warmup_months=warmup,
        x_heldout_reanalysis=rean.x[rean_split.validation] if w > 0 else None,
        reference_details=details,
    )


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
        "initial_heldout_score": training["initial_score"],
        "best_heldout_score": None if stopper is None else stopper.best,
        "epochs_run": len(history),
        "stopped_early": bool(history) and len(history) < settings.epochs,
        "timing": {
            "seconds": seconds,
            "epochs_per_second": len(history) / seconds if history else None,
            "device": device.type,
        },
    }
