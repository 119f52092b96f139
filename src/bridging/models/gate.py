"""The forecast model's quality gate and its held-out skill evaluation.

Why a gate: whether a model's noisy free run stays bounded with statistics near the training data decides whether
the filter works, and its one-step error does not predict that (docs/method.md, Forecast model: "The gate"). So
before the filter may use a model:

* **free run**: ``free_run_years`` of x_{t+1} = f(x_t) + ε_t with ε ~ N(0, noise_cov), from a warm-up on the last
  training months; it must stay finite with |standardised state| below ``blowup_threshold`` throughout, and the
  decoded Niño 3 and Niño 4 standard deviations must lie within ``std_tolerance`` of the training data's. The
  training data is the curriculum's mixture, so the reference variance is the (1 − p_max, p_max)-weighted mean
  of the operational and reanalysis training months' variances (true fields; both reported separately too);
* **one-step skill**: the held-out lead-1 error in latent space must be below persistence's.

Skill (reported, not gated beyond lead 1): held-out autoregressive rollouts at the configured leads, in latent
space (RMSE of the standardised state) and in decoded field space (SST and thermocline RMSE over ocean cells,
Niño 3 correlation across start dates), against persistence, climatology (zero anomaly; the training-mean state in
latent space), the linear model, and the autoencoder's own floor (the decoded *true* latent state).

Niño 3 / Niño 4 are cos(latitude)-weighted means over the ocean cells of the target grid in 5°S–5°N, 210–270 °E /
160–210 °E, with the boxes and weights of :mod:`bridging.diagnostics.indices` (so the gate and the diagnostics
measure the same index).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..diagnostics.indices import NINO3, NINO4, box_weights
from ..diagnostics.statistics import block_bootstrap_positions
from ..grid import TargetGrid

log = logging.getLogger(__name__)

NINO_BOXES = {"nino3": NINO3, "nino4": NINO4}


def index_weights(grid: TargetGrid, ocean_mask: np.ndarray, boxes: dict = NINO_BOXES) -> np.ndarray:
    """(n_boxes, n_lat·n_lon) cos-lat box-mean weights over ocean cells (the diagnostics' own definition)."""
    return np.stack([box_weights(grid.lat, grid.lon, box, ocean_mask).ravel() for box in boxes.values()])


def box_indices(sst_anomaly: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, n_boxes) box means of SST anomalies (n, n_lat, n_lon); cells outside the weights' ocean never count."""
    flat = np.nan_to_num(np.asarray(sst_anomaly, np.float64).reshape(sst_anomaly.shape[0], -1))
    return flat @ weights.T


def mixture_skewness(series: list[np.ndarray], weights: list[float]) -> float:
    """Skewness of a weighted mixture of records (each record's months weighted equally within it)."""
    total = float(sum(weights))
    mean = sum(w / total * np.mean(s) for s, w in zip(series, weights))
    m2 = sum(w / total * np.mean((s - mean) ** 2) for s, w in zip(series, weights))
    m3 = sum(w / total * np.mean((s - mean) ** 3) for s, w in zip(series, weights))
    return float(m3 / m2**1.5)


def skewness_se(series: list[np.ndarray], weights: list[float], *, block: int = 24, samples: int = 200) -> float:
    """Standard error of :func:`mixture_skewness`: whole-year block bootstrap of each record (the diagnostics'
    :func:`~bridging.diagnostics.statistics.block_bootstrap_positions`, fixed seed)."""
    rng = np.random.default_rng(0)
    positions = [block_bootstrap_positions(len(s), block, samples, rng) for s in series]
    values = [mixture_skewness([s[p[i]] for s, p in zip(series, positions)], weights) for i in range(samples)]
    return float(np.std(values, ddof=1))


# ============================================================================================== data
@dataclass
class GateData:
    """What the gate evaluates a model on (state units for x; standardised anomalies for fields)."""

    x_heldout: np.ndarray  # (T, n_state) held-out operational months
    fields_heldout: (
        np.ndarray
    )  # (T, n_fields, n_lat, n_lon) their true standardised anomalies (any value off the ocean)
    x_warmup: np.ndarray  # (W, n_state) the months before the free run (the end of the training record)
    reference_index_std: dict[str, float]  # Niño 3 / Niño 4 std (°C) of the training data (curriculum mixture)
    decode: Callable[[np.ndarray], np.ndarray]  # z (n, n_latent) → standardised fields (n, n_fields, n_lat, n_lon)
    field_names: tuple[str, ...]
    field_std: dict[str, float]  # physical anomaly = standardised × field_std
    ocean_mask: np.ndarray  # (n_lat, n_lon) cells that count in field errors and indices
    grid: TargetGrid
    n_latent: int
    state_mean: np.ndarray  # the training standardisation (common to every compared model)
    state_std: np.ndarray
    warmup_months: int = 12
    x_heldout_reanalysis: np.ndarray | None = (
        None  # latent skill on the reanalysis' held-out months, when trained on it
    )
    reference_details: dict | None = None  # how reference_index_std was formed (reported)
    # standardised fields (n, n_fields, n_lat, n_lon) → observables y (n, n_obs) in state units; None: not checked
    observe: Callable[[np.ndarray], np.ndarray] | None = None

    def standardise(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.state_mean) / self.state_std

    def physical_sst(self, fields_std: np.ndarray) -> np.ndarray:
        return fields_std[:, self.field_names.index("sst")] * self.field_std["sst"]


# ============================================================================================== rollouts
@torch.no_grad()
def rollout(model, warmup: torch.Tensor, n_leads: int) -> torch.Tensor:
    """Teacher-forced warm-up over (B, T, n) true states, then n_leads months of free forecast: (B, n_leads, n).

    Lead 1 is the forecast made from the last warm-up month; state units in and out.
    """
    model.eval()
    state = model.initial_state(warmup.shape[0], warmup.device, warmup.dtype)
    for t in range(warmup.shape[1]):
        pred, state = model.step(warmup[:, t], state)
    out = [pred]
    for _ in range(n_leads - 1):
        pred, state = model.step(pred, state)
        out.append(pred)
    return torch.stack(out, 1)


def forecast_starts(n_months: int, warmup: int, max_lead: int) -> np.ndarray:
    """Start months t0 (last warm-up month) of a segment with the whole warm-up and every lead inside it."""
    return np.arange(warmup - 1, n_months - max_lead)


def _warmup_windows(x: np.ndarray, starts: np.ndarray, warmup: int) -> torch.Tensor:
    return torch.as_tensor(x[starts[:, None] - warmup + 1 + np.arange(warmup)[None, :]])


@torch.no_grad()
def free_run(
    model, x_warmup: np.ndarray, months: int, *, seed: int, blowup_threshold: float
) -> tuple[np.ndarray, int | None]:
    """x_{t+1} = f(x_t) + ε_t, ε ~ M(x_t) N(0, noise_cov) (the model's error model: ``modulate_noise``), after a
    teacher-forced warm-up; returns (trajectory, blow-up month).

    The run stops at the first month whose state is non-finite or whose standardised magnitude exceeds the threshold.
    """
    model.eval()
    x = torch.as_tensor(np.asarray(x_warmup, np.float32))
    state = model.initial_state(1, x.device, x.dtype)
    for t in range(x.shape[0]):
        pred, state = model.step(x[t : t + 1], state)
    generator = torch.Generator().manual_seed(int(seed))
    factor = model.noise_factor()
    noise = model.sample_noise(months, generator, factor)
    trajectory = np.empty((months, model.n_state), np.float32)
    current, origin = pred, x[-1:]
    for m in range(months):
        current = current + model.modulate_noise(noise[m : m + 1], origin)
        trajectory[m] = current[0].numpy()
        xs = model.standardise(current)
        if not torch.isfinite(xs).all() or float(xs.abs().max()) > blowup_threshold:
            return trajectory[: m + 1], m
        origin = current
        current, state = model.step(current, state)
    return trajectory, None


# ============================================================================================== skill
def latent_forecasts(models: dict, x: np.ndarray, leads: list[int], warmup: int, state_mean: np.ndarray):
    """Rollouts of every model from every start of segment x, plus persistence and climatology, at ``leads``.

    Returns (forecasts {name: (n_starts, n_leads, n_state)}, truth (same shape), starts, target months).
    """
    max_lead = max(leads)
    x = np.asarray(x, np.float32)
    starts = forecast_starts(x.shape[0], warmup, max_lead)
    if starts.size < 2:
        raise ValueError(
            f"{x.shape[0]} held-out months are too few for {warmup} warm-up months and leads up to {max_lead}"
        )
    warm = _warmup_windows(x, starts, warmup)
    lead_idx = np.asarray(leads) - 1
    forecasts = {name: rollout(m, warm, max_lead).numpy()[:, lead_idx] for name, m in models.items()}
    targets = starts[:, None] + np.asarray(leads)[None, :]
    truth = x[targets]
    forecasts["persistence"] = np.repeat(x[starts][:, None], len(leads), 1)
    forecasts["climatology"] = np.broadcast_to(np.asarray(state_mean, np.float32), truth.shape).copy()
    return forecasts, truth, starts, targets


def evaluate_skill(models: dict, data: GateData, leads: list[int]) -> dict:
    """Held-out rollout skill of each model (name → forecaster) and of persistence / climatology, at ``leads``:
    latent and decoded-field scores on the operational held-out months, latent scores on the reanalysis' ones."""
    forecasts, truth, starts, targets = latent_forecasts(
        models, data.x_heldout, leads, data.warmup_months, data.state_mean
    )
    forecasts["autoencoder_floor"] = truth  # the true latent state, decoded: what a perfect latent forecast scores

    def latent_rmse(fc: dict, tr: np.ndarray) -> dict:
        return {
            name: np.sqrt(((data.standardise(f) - data.standardise(tr)) ** 2).mean((0, 2))).tolist()
            for name, f in fc.items()
            if name != "autoencoder_floor"
        }

    mask = np.asarray(data.ocean_mask, bool)
    weights = index_weights(data.grid, mask)
    true_fields = data.fields_heldout[targets.ravel()]
    true_index = box_indices(data.physical_sst(true_fields), weights).reshape(targets.shape + (len(NINO_BOXES),))
    sst_rmse, thermo_rmse, nino3_corr, index_rmse = {}, {}, {}, {box: {} for box in NINO_BOXES}
    f_sst, f_thermo = data.field_names.index("sst"), data.field_names.index("thermocline_depth")
    for name, f in forecasts.items():
        if name == "climatology":
            decoded = np.zeros_like(true_fields)
        elif name == "persistence":
            decoded = np.repeat(data.fields_heldout[starts][:, None], len(leads), 1).reshape(true_fields.shape)
        else:
            decoded = data.decode(f[..., : data.n_latent].reshape(-1, data.n_latent))
        err2 = (np.nan_to_num(decoded) - true_fields) ** 2
        sst_rmse[name] = (_rmse_by_lead(err2[:, f_sst], mask, targets.shape) * data.field_std["sst"]).tolist()
        thermo_rmse[name] = (
            _rmse_by_lead(err2[:, f_thermo], mask, targets.shape) * data.field_std["thermocline_depth"]
        ).tolist()
        f_index = box_indices(data.physical_sst(decoded), weights).reshape(true_index.shape)
        for i, box in enumerate(NINO_BOXES):
            index_rmse[box][name] = np.sqrt(((f_index[..., i] - true_index[..., i]) ** 2).mean(0)).tolist()
        if name == "climatology":
            nino3_corr[name] = [None] * len(leads)
        else:
            fn3, tn3 = f_index[..., 0], true_index[..., 0]
            nino3_corr[name] = [float(np.corrcoef(fn3[:, j], tn3[:, j])[0, 1]) for j in range(len(leads))]
    skill = {
        "leads": list(leads),
        "n_starts": int(starts.size),
        "latent_rmse": latent_rmse(forecasts, truth),
        "sst_rmse_degC": sst_rmse,
        "thermocline_rmse_m": thermo_rmse,
        "nino3_corr": nino3_corr,
        **{f"{box}_rmse_degC": by_model for box, by_model in index_rmse.items()},
    }
    if data.x_heldout_reanalysis is not None:
        fc, tr, st, _ = latent_forecasts(models, data.x_heldout_reanalysis, leads, data.warmup_months, data.state_mean)
        skill["reanalysis_latent_rmse"] = latent_rmse(fc, tr)
        skill["reanalysis_n_starts"] = int(st.size)
    return skill


def _rmse_by_lead(squared_error: np.ndarray, mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """RMSE over starts and ocean cells for each lead; squared_error is (n_starts·n_leads, n_lat, n_lon)."""
    return np.sqrt(squared_error[:, mask].reshape(shape + (-1,)).mean((0, 2)))


# ============================================================================================== the gate
def _consistency(decoded_y: np.ndarray, y: np.ndarray, scale: np.ndarray) -> dict:
    """Correlation and slope (decoded on y) pooled over months and observables, each observable in units of ``scale``."""
    d = (np.asarray(decoded_y, np.float64) / scale).ravel()
    t = (np.asarray(y, np.float64) / scale).ravel()
    d, t = d - d.mean(), t - t.mean()
    return {"correlation": float((d @ t) / np.sqrt((d @ d) * (t @ t))), "slope": float((d @ t) / (t @ t))}


def run_gate(model, data: GateData, settings, *, baselines: dict | None = None) -> dict:
    """Evaluate ``model`` (and report it beside ``baselines``, e.g. {"linear": ...}); returns the gate report.

    ``settings`` is a GateSection (or its dict). The report holds ``passed``, ``failures`` (human-readable),
    each criterion's value and limit, the free-run statistics and the skill table.
    """
    s = settings.model_dump() if hasattr(settings, "model_dump") else dict(settings)
    months = 12 * int(s["free_run_years"])
    trajectory, blowup = free_run(model, data.x_warmup, months, seed=s["seed"], blowup_threshold=s["blowup_threshold"])
    failures = []
    free = {"months": months, "months_completed": int(trajectory.shape[0]), "blowup_month": blowup}
    if blowup is not None:
        failures.append(f"free run blew up in month {blowup + 1} of {months}")
        index_std = {name: None for name in NINO_BOXES}
        ratios = {name: None for name in NINO_BOXES}
    else:
        decoded = data.decode(trajectory[:, : data.n_latent])
        indices = box_indices(data.physical_sst(decoded), index_weights(data.grid, data.ocean_mask))
        index_std = {name: float(indices[:, i].std()) for i, name in enumerate(NINO_BOXES)}
        free["index_skewness"] = {name: mixture_skewness([indices[:, i]], [1.0]) for i, name in enumerate(NINO_BOXES)}
        free["index_skewness_se"] = {name: skewness_se([indices[:, i]], [1.0]) for i, name in enumerate(NINO_BOXES)}
        ratios = {name: index_std[name] / data.reference_index_std[name] for name in NINO_BOXES}
        decoded_truth = (data.reference_details or {}).get("decoded_operational_std", {})
        for name, r in ratios.items():
            if not (np.isfinite(r) and abs(r - 1) <= s["std_tolerance"]):
                hint = ""
                if name in decoded_truth:
                    true_op = data.reference_details["std_by_source"]["operational"][name]
                    hint = f"; the autoencoder alone, decoding the true training latents, gives {decoded_truth[name] / true_op:.2f}x"
                failures.append(
                    f"free-run {name} std {index_std[name]:.3f} is {r:.2f}x the training data's "
                    f"{data.reference_index_std[name]:.3f} (allowed 1 ± {s['std_tolerance']}){hint}"
                )
        if data.observe is not None:
            # The filter's H = [0 I] reads y off the state, the bridging model is D(z): a forecast model whose y and
            # decoded z drift apart in free run makes the analysis correct y but not the fields (da/run.py checks
            # the same consistency every month of the assimilation; here it is caught before any filter runs).
            free["consistency"] = _consistency(
                data.observe(decoded), trajectory[:, data.n_latent :], data.state_std[data.n_latent :]
            )
            held_z, held_y = data.x_heldout[:, : data.n_latent], data.x_heldout[:, data.n_latent :]
            free["consistency_autoencoder_ceiling"] = _consistency(
                data.observe(data.decode(held_z)), held_y, data.state_std[data.n_latent :]
            )
            if free["consistency"]["correlation"] < s["consistency_min"]:
                failures.append(
                    f"free run: decoded observables correlate {free['consistency']['correlation']:.2f} < {s['consistency_min']} with "
                    f"the forecast's y (the autoencoder reaches {free['consistency_autoencoder_ceiling']['correlation']:.2f} on held-out "
                    "months): y and the latent state drift apart"
                )
        free["nino3_first_30_years"] = indices[: 12 * 30, 0].tolist()
        free["state_max_abs_standardised"] = float(np.abs(data.standardise(trajectory)).max())
    free.update(
        {
            "index_std": index_std,
            "reference_index_std": dict(data.reference_index_std),
            "reference_details": data.reference_details,
            "std_ratio": ratios,
        }
    )

    models = {"model": model, **(baselines or {})}
    skill = evaluate_skill(models, data, s["leads"])
    lead1 = skill["leads"].index(1) if 1 in skill["leads"] else None
    if lead1 is None:
        fc, truth, _, _ = latent_forecasts({"model": model}, data.x_heldout, [1], data.warmup_months, data.state_mean)
        model_1, persistence_1 = (
            float(np.sqrt(((data.standardise(fc[k]) - data.standardise(truth)) ** 2).mean()))
            for k in ("model", "persistence")
        )
    else:
        model_1, persistence_1 = skill["latent_rmse"]["model"][lead1], skill["latent_rmse"]["persistence"][lead1]
    if not model_1 < persistence_1:
        failures.append(f"held-out one-step latent RMSE {model_1:.3f} is not below persistence's {persistence_1:.3f}")
    report = {
        "passed": not failures,
        "failures": failures,
        "criteria": {
            "free_run_bounded": {
                "value": blowup is None,
                "limit": f"|standardised state| <= {s['blowup_threshold']} for {months} months",
            },
            "nino3_std_ratio": {"value": ratios["nino3"], "limit": [1 - s["std_tolerance"], 1 + s["std_tolerance"]]},
            "nino4_std_ratio": {"value": ratios["nino4"], "limit": [1 - s["std_tolerance"], 1 + s["std_tolerance"]]},
            "one_step_rmse_vs_persistence": {"value": model_1, "limit": persistence_1},
            **(
                {"free_run_consistency": {"value": free["consistency"]["correlation"], "limit": s["consistency_min"]}}
                if "consistency" in free
                else {}
            ),
        },
        "free_run": free,
        "skill": skill,
    }
    log.info(
        "gate %s: %s",
        "passed" if report["passed"] else "FAILED",
        "; ".join(failures) or f"free run bounded, Niño 3/4 std ratios {ratios['nino3']:.2f}/{ratios['nino4']:.2f}",
    )
    return report
