"""Explainability of the latent filter: what a correction of the observables does to the decoded fields.

A stage of its own (rule ``explain``), after the filter: it reloads the trained models (:mod:`bridging.models`) to
rebuild a forecast ensemble and to decode the gain's increments, so it sits beside the filter rather than in
:mod:`bridging.diagnostics`, which compares stores and never imports the models. Its figures are drawn by
:mod:`bridging.diagnostics.explain_plots`.

The augmented state is x = [z; y] (``n_latent`` latent variables, then the observables), observed through
H = [0 I]. With a forecast ensemble X (N members × n), the ensemble Kalman gain is

    K = C_xy (C_yy + R)⁻¹,   C_xy = cov(x, y),  C_yy = cov(y, y),

and an innovation d moves the state by Δx = K d. For each **observable group** — SST at the Niño 3 nodes, SST at
the Niño 4 nodes, thermocline depth in the west (< 180°E) and in the east (≥ 210°E) — d is a one-standard-
deviation innovation of that group: every observable of the group displaced by its innovation std
√(C_yy,kk + R_kk) (the spread of y − Hx the filter expects), the others by zero. The decoded field response is
D(z̄ + Δz) − D(z̄), which for a linear decoder is the decoder applied to Δz. An optional ``taper`` (n × n_obs,
e.g. the filter's Gaspari–Cohn localization) multiplies C_xy and the y-rows alike, as in the filter.

The decoder is any callable mapping a (B, n_latent) array to (B, channels, n_lat, n_lon) fields, so it can be
the trained autoencoder (wrap ``ae.decode`` with torch conversions) or, in tests, a linear map.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .atomic import write_text_atomic
from .diagnostics.explain_plots import plot_gain_responses, plot_latent_observable_correlation
from .errors import InputDataError
from .models.autoencoder import load_autoencoder
from .models.forecast import load_forecast_model
from .observables import ObservationLayout
from .settings import DASection, DiagnosticsSection
from .stores import FIELDS, open_store, open_zarr_checked

# (variable, lon_min inclusive, lon_max exclusive) in °E. Niño 4 is 160–210°E and Niño 3 210–270°E; the shared
# 210°E edge goes to Niño 3 (half-open intervals, so no node is in both groups).
OBSERVABLE_GROUPS: dict[str, tuple[str, float, float]] = {
    "sst_nino3": ("sst", 210.0, 270.0 + 1e-6),
    "sst_nino4": ("sst", 160.0, 210.0),
    "thermocline_west": ("thermocline_depth", 0.0, 180.0),
    "thermocline_east": ("thermocline_depth", 210.0, 360.0),
}


def observable_groups(
    layout: ObservationLayout, groups: dict[str, tuple[str, float, float]] = OBSERVABLE_GROUPS
) -> dict[str, np.ndarray]:
    """Positions (along the obs axis) of the observables in each group; groups with no observable are left out."""
    variables = np.asarray(layout.variable)
    lon = np.asarray(layout.lon, float) % 360.0
    out = {}
    for name, (variable, lo, hi) in groups.items():
        idx = np.flatnonzero((variables == variable) & (lon >= lo) & (lon < hi))
        if idx.size:
            out[name] = idx
    return out


def ensemble_covariances(ensemble: np.ndarray, n_latent: int) -> tuple[np.ndarray, np.ndarray]:
    """(C_xy (n, n_obs), C_yy (n_obs, n_obs)) sample covariances of an (N, n) ensemble of x = [z; y]."""
    x = np.asarray(ensemble, float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"ensemble must be (N >= 2, n), got {x.shape}")
    if not 0 <= n_latent < x.shape[1]:
        raise ValueError(f"n_latent={n_latent} leaves no observable in a state of size {x.shape[1]}")
    a = x - x.mean(axis=0)
    c_xy = a.T @ a[:, n_latent:] / (x.shape[0] - 1)
    return c_xy, c_xy[n_latent:]


def kalman_gain(
    ensemble: np.ndarray, n_latent: int, obs_error_variance: np.ndarray, taper: np.ndarray | None = None
) -> np.ndarray:
    """The (n, n_obs) ensemble Kalman gain K = C_xy (C_yy + R)⁻¹ with diagonal R."""
    c_xy, _ = ensemble_covariances(ensemble, n_latent)
    if taper is not None:
        c_xy = c_xy * np.asarray(taper, float)
    c_yy = c_xy[n_latent:]
    r = np.asarray(obs_error_variance, float)
    if r.shape != (c_yy.shape[0],) or np.any(r < 0):
        raise ValueError(f"obs_error_variance must be ({c_yy.shape[0]},) and non-negative")
    s = c_yy + np.diag(r)
    try:
        return np.linalg.solve(s, c_xy.T).T
    except np.linalg.LinAlgError:
        # Singular only without observation error and with N ≤ n_obs; the pseudo-inverse gives the minimum-norm gain.
        return c_xy @ np.linalg.pinv(s)


@dataclass(frozen=True)
class GainResponse:
    """The effect of a one-std innovation of one observable group."""

    innovation: np.ndarray  # (n_obs,)
    state_increment: np.ndarray  # (n,) = K d
    field: np.ndarray  # (channels, n_lat, n_lon): D(z̄ + Δz) − D(z̄), times field_scale per channel


def gain_responses(
    ensemble: np.ndarray,
    n_latent: int,
    obs_error_variance: np.ndarray,
    decoder: Callable[[np.ndarray], np.ndarray],
    groups: dict[str, np.ndarray],
    *,
    field_scale: np.ndarray | None = None,
    taper: np.ndarray | None = None,
) -> dict[str, GainResponse]:
    """For each observable group, the decoded field response to a one-std innovation of the group (see the module
    docstring). ``field_scale`` (channels,) converts decoder units to physical ones (e.g. the anomaly stds used to
    standardise the autoencoder's input)."""
    x = np.asarray(ensemble, float)
    gain = kalman_gain(x, n_latent, obs_error_variance, taper)
    _, c_yy = ensemble_covariances(x, n_latent)
    sigma = np.sqrt(np.clip(np.diag(c_yy), 0, None) + np.asarray(obs_error_variance, float))
    z_mean = x[:, :n_latent].mean(axis=0)
    names = list(groups)
    innovations, increments = [], []
    for name in names:
        d = np.zeros(sigma.size)
        d[np.asarray(groups[name])] = sigma[np.asarray(groups[name])]
        innovations.append(d)
        increments.append(gain @ d)
    batch = np.vstack([z_mean] + [z_mean + inc[:n_latent] for inc in increments])
    decoded = np.asarray(decoder(batch), float)
    if decoded.ndim != 4 or decoded.shape[0] != batch.shape[0]:
        raise ValueError(f"the decoder must map (B, n_latent) to (B, channels, n_lat, n_lon); got {decoded.shape}")
    base = decoded[0]
    scale = np.ones(decoded.shape[1]) if field_scale is None else np.asarray(field_scale, float)
    return {
        name: GainResponse(innovations[i], increments[i], (decoded[i + 1] - base) * scale[:, None, None])
        for i, name in enumerate(names)
    }


def latent_observable_correlation(latent: np.ndarray, observables: np.ndarray) -> np.ndarray:
    """(n_latent, n_obs) Pearson correlations between latent series (T, n_latent) and observables (T, n_obs)
    (an ensemble (N, ·) works the same); NaN where a series is constant."""
    z = np.asarray(latent, float)
    y = np.asarray(observables, float)
    if z.shape[0] != y.shape[0]:
        raise ValueError(f"latent ({z.shape[0]}) and observables ({y.shape[0]}) have different lengths")
    z = z - z.mean(axis=0)
    y = y - y.mean(axis=0)
    sz, sy = np.sqrt((z * z).sum(axis=0)), np.sqrt((y * y).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (z.T @ y) / np.outer(sz, sy)
    corr[~np.isfinite(corr)] = np.nan
    return corr


def observable_labels(layout: ObservationLayout) -> list[str]:
    """Short labels 'sst 210.0°E' of the observables, for plot axes."""
    short = {"sst": "SST", "thermocline_depth": "D20"}
    return [f"{short.get(v, v)} {lon:.0f}°E" for v, lon in zip(layout.variable, layout.lon)]


# --------------------------------------------------------------------------------------------------------------------
# The explainability stage of the workflow (rule `explain`)


def representative_forecast(analysis_window: np.ndarray, forecaster, *, noise_scale: float, seed: int) -> np.ndarray:
    """The filter's forecast ensemble (N, n) for the month after an analysis window (W + 1, N, n).

    The assimilation store keeps analysis members, not forecasts; the forecast of month t is one step of the forecast
    model from each member's analysis at t − 1 (the window's last entry) plus model noise, with the recurrent state
    spun up on that member's own analysis trajectory over the W preceding months, as the filter's state is. The noise
    draw differs from the run's, so this is a statistically equivalent forecast ensemble, not a bitwise copy.
    """
    window = np.asarray(analysis_window, np.float32)
    if window.ndim != 3 or window.shape[0] < 1:
        raise ValueError(f"analysis window must be (W + 1, N, n), got {window.shape}")
    dtype = forecaster.dtype
    with torch.inference_mode():
        state = forecaster.initial_state(window.shape[1], torch.device("cpu"), dtype)
        for t in range(window.shape[0] - 1):
            _, state = forecaster.step(torch.as_tensor(window[t], dtype=dtype), state)
        x, _ = forecaster.step(torch.as_tensor(window[-1], dtype=dtype), state)
        gen = torch.Generator().manual_seed(int(seed))
        noise = forecaster.sample_noise(window.shape[1], generator=gen) * float(noise_scale)
    return (x + noise).double().numpy()


def explain_model(
    responses_png,
    correlation_png,
    summary_json,
    *,
    assimilation,
    latent_store,
    forecast_model,
    autoencoder,
    operational_store,
    da,
    diagnostics,
    model_name: str,
) -> dict:
    """Maps of the decoded response to a one-std innovation of each observable group through the filter's gain at a
    representative month (``diagnostics.explain_month``; default the middle of the run), the latent–observable
    cross-correlation matrix of the training data, and a JSON summary (response amplitudes on and off the equator)."""
    da = DASection.model_validate(da)
    diagnostics = DiagnosticsSection.model_validate(diagnostics)
    fs = open_zarr_checked(assimilation, "assimilation store", ("members", "obs_error_variance"))
    n_latent = int(fs.attrs["n_latent"])
    layout = ObservationLayout.from_dataset(fs)
    T = fs.sizes["time"]
    month = diagnostics.explain_month if diagnostics.explain_month is not None else T // 2
    if not 1 <= month < T:
        raise InputDataError(assimilation, f"diagnostics.explain_month = {month} is outside 1…{T - 1}")
    warmup = min(da.init_warmup_months, month - 1)
    members = fs["members"].isel(experiment=0, time=slice(month - 1 - warmup, month)).values
    forecaster = load_forecast_model(forecast_model, "cpu").float()
    forecast = representative_forecast(members, forecaster, noise_scale=da.model_noise_scale, seed=diagnostics.seed)
    # the filter's prior: inflated anomalies, the taper it used (if any) and its observation errors
    forecast = forecast.mean(0) + da.inflation * (forecast - forecast.mean(0))
    taper = fs["taper"].values.astype(float) if "taper" in fs else None
    obs_var = fs["obs_error_variance"].values.astype(float)

    op = open_store(operational_store)
    ocean = op["ocean_mask"].values.astype(bool)
    scale = np.array([float(op[f"{f}_anomaly_std"]) for f in FIELDS])
    ae = load_autoencoder(autoencoder, "cpu").float().eval()

    def decoder(z: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = ae.decode(torch.as_tensor(z, dtype=torch.float32)).numpy().astype(float)
        return np.where(ocean, out, np.nan)

    groups = observable_groups(layout)
    responses = gain_responses(forecast, n_latent, obs_var, decoder, groups, field_scale=scale, taper=taper)
    lat, lon = op["lat"].values, op["lon"].values
    plot_gain_responses(
        {g: r.field for g, r in responses.items()}, lat, lon, responses_png, diagnostics.plotting, ocean_mask=ocean
    )

    lat_ds = open_zarr_checked(latent_store, "latent store", ("z", "y"))
    corr = latent_observable_correlation(lat_ds["z"].values, lat_ds["y"].values)
    plot_latent_observable_correlation(
        corr, observable_labels(layout), correlation_png, diagnostics.plotting,
        title=f"{model_name}: latent–observable cross-correlation (training data)",
    )  # fmt: skip

    off_equator = np.abs(lat) > 5.0
    summary = {
        "model": model_name,
        "month_index": int(month),
        "inflation": da.inflation,
        "localized": taper is not None,
        "definition": "response = decoded field change for a one-std innovation of the group through "
        "K = C_xy (C_yy + R)^-1 of the forecast ensemble; rms over ocean cells, equatorial = |lat| <= 5",
        "groups": {},
        "latent_observable_correlation": {
            "max_abs_per_observable_mean": float(np.nanmean(np.nanmax(np.abs(corr), axis=0))),
        },
    }
    for name, r in responses.items():
        row = {"n_observables": int(len(groups[name]))}
        for c, field in enumerate(FIELDS):
            f = r.field[c]
            eq = f[~off_equator][np.isfinite(f[~off_equator])]
            off = f[off_equator][np.isfinite(f[off_equator])]
            row[f"{field}_rms_equatorial"] = float(np.sqrt(np.mean(eq**2))) if eq.size else float("nan")
            row[f"{field}_rms_off_equatorial"] = float(np.sqrt(np.mean(off**2))) if off.size else float("nan")
        summary["groups"][name] = row
    write_text_atomic(json.dumps(summary, indent=2) + "\n", summary_json)
    return summary
