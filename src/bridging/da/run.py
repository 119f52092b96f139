"""The assimilation run: a latent forecast model cycled with the EnKF against idealized-model pseudo-observations.

Each month, for every member of every experiment (experiments are a leading batch dimension, for sensitivity
sweeps): a stochastic forecast (the forecast model's step carrying its recurrent state, plus Gaussian model noise with
covariance ``noise_cov × model_noise_scale``, drawn through a factor L with L Lᵀ = noise_cov), the analysis against
that month's pseudo-observations (R = the pseudo-observation store's ``obs_error_variance``), and optionally the
re-encoding z ← E(D(z)) of each analysis member. The free run (the control) is the same loop without analysis and
re-encoding.

Why the forecast is stochastic and the filter watched this closely (prototype lessons, docs/architecture.md): with a
deterministic forecast the filter collapsed even with inflation; and a filter whose observed block tracks the
observations can still let the latent block drift off the autoencoder's manifold, which only the consistency between
decoded fields at the observation points and the analysis y reveals. So every month records the innovations, the
forecast spread of the observables and, for the first ``consistency_members`` members, the decoded observables;
per-decade innovation ratios E[d²]/(spread² + R) and consistency correlations are logged while the run goes and
written with the result.

Localization (measured, and why it is off by default): the observables y are a function of the decoded latent
state, so the forecast model has only ever seen states on that manifold. An unlocalized update moves every member
within the ensemble span and keeps the balance; a Schur taper does not (Δy ≠ ∂y/∂z·Δz). With the trained models of
a 2-epoch synthetic workflow run (N = 50, 501 latents, 112 observables, inflation 1.09) the unlocalized filter was
stable over 60 months (innovation ratio 0.47), while tapering the observation rows only, the latent rows only, or
both (latent half-width 0.45 or 1.0) made the ensemble spread grow about tenfold a month until the innovation
covariance could no longer be factorised, after 4–23 months. The toy world of tests/test_da_run.py shows the same
imbalance as a consistency drop (0.83 vs 1.00).

Re-encoding (measured, and why it is off by default): z ← E(D(z)) helps only where the autoencoder is close to a
projection on its manifold (the prototype's well-trained one restored Niño 3 skewness, +0.22 → +0.48). With the
2-epoch models above, whose E(D(z)) moves training states by 0.44 of their spread, re-encoding drove the innovation
ratio to 9.2 and the consistency to 0.07 over 240 months (0.56 and 0.52 without it) and cost 3× the time. Each run
reports ``reencode_relative_change`` and the autoencoder's own consistency on training states (``autoencoder_check``).

Runs are resumable: every ``checkpoint_months`` months the finished block is written into a partial output store and
the filter state (members, recurrent state, RNG state, month) is saved beside it in a hidden sidecar folder. Re-running
after a kill resumes from there when the inputs and settings are unchanged (bit-identical to an uninterrupted run on
the same device); the final store is moved into place only at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from .. import __version__
from ..atomic import atomic_output, variable_length_strings, write_text_atomic
from ..errors import BridgingError, ConfigError, InputDataError
from ..grid import TargetGrid
from ..observables import ObservationLayout
from ..settings import DASection
from ..stores import FIELDS, open_store, open_zarr_checked, provenance
from ..timeaxis import time_encoding, year_month
from .analysis import analysis
from .localization import taper_from_training, taper_summary

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 2
#: the modules the filter stage runs (as the workflow's src() inputs of the assimilate rule); their hash is part of
#: the resume fingerprint, so a run interrupted and re-run after a code edit starts afresh
FILTER_CODE = ("da", "models", "observables.py", "grid.py", "stores.py", "timeaxis.py")
# Re-encoding that moves training states by more than this fraction of their spread jolts members by far more than a
# typical analysis spread (a few % of the climatological spread): warn.
REENCODE_CHANGE_WARN = 0.1
DECADE_MONTHS = 120
CONSISTENCY_MOMENTS = ("sum_decoded", "sum_analysis", "sum_decoded_sq", "sum_analysis_sq", "sum_cross")
# Rows per decoder/encoder call (re-encoding, consistency checks): bounds activation memory at B·N = 16·50 members.
_AUTOENCODER_ROWS = 512


class FilterDivergedError(BridgingError):
    """The cycle produced non-finite values or a non-positive-definite innovation covariance."""


# --------------------------------------------------------------------------------------------------------------------
# The cycle engine (tensors only, no files)


@dataclass
class CycleSetup:
    """Everything constant over a run. B experiments, N members, n = n_latent + n_obs state entries.

    ``forecaster`` follows the ``bridging.models.forecast.LatentForecaster`` interface: ``initial_state(batch,
    device, dtype)`` and ``step(x, state) -> (x_next, state)`` on (batch, n) states.
    """

    forecaster: Any
    observations: torch.Tensor  # (T, B, m)
    obs_var: torch.Tensor  # (B, m)
    noise_factor: torch.Tensor  # (n, n), L Lᵀ = noise_cov
    noise_std_scale: torch.Tensor  # (B,) √model_noise_scale
    inflation: torch.Tensor  # (B,)
    n_latent: int
    method: str = "stochastic"
    taper: torch.Tensor | None = None  # (n, m)
    assimilate: bool = True
    reencode: Callable[[torch.Tensor], torch.Tensor] | None = None  # z (K, n_latent) -> E(D(z))
    decoded_observables: Callable[[torch.Tensor], torch.Tensor] | None = None  # z (K, n_latent) -> (K, m)
    consistency_members: int = 0
    observable_std: torch.Tensor | None = None  # (m,) units of the consistency moments (training std of y)
    adaptive: "AdaptiveNoise | None" = None  # online model-noise amplitude (assimilation only)
    noise_split: "NoiseSplit | None" = None  # the noise covariance split into its observed and unobserved parts

    @property
    def n_obs(self) -> int:
        return self.observations.shape[-1]


@dataclass(frozen=True)
class NoiseSplit:
    """The model-noise covariance Q of x = [z; y] split into the observables' noise and the latent noise they do not
    explain: y_n = L_y ξ_y, z_n = A y_n + L_e ξ_e with A = Q_zy Q_yy⁻¹ and L_e L_eᵀ = Q_zz − A Q_yz (the conditional
    covariance), so that [z_n; y_n] ~ N(0, Q) exactly.

    Why: the adaptive noise factor should answer the innovations, which see only the observables and the latent
    directions they explain; the latent directions the observables do not see carry the operational model's own
    variability (the detail the bridge must keep), and their noise keeps its estimated amplitude.
    """

    gain: torch.Tensor  # A (n_latent, n_obs)
    latent_factor: torch.Tensor  # L_e (n_latent, n_latent)
    obs_factor: torch.Tensor  # L_y (n_obs, n_obs)

    @classmethod
    def from_covariance(cls, noise_cov, n_latent: int, *, device, dtype) -> "NoiseSplit":
        q = torch.as_tensor(np.asarray(noise_cov), dtype=torch.float64)
        q = 0.5 * (q + q.T)
        q_zz, q_zy, q_yy = q[:n_latent, :n_latent], q[:n_latent, n_latent:], q[n_latent:, n_latent:]
        # a pseudo-inverse: a covariance estimated from a short record may be singular in the observable block
        gain = q_zy @ torch.linalg.pinv(q_yy, hermitian=True)
        conditional = q_zz - gain @ q_zy.T

        def sqrt_psd(c):
            vals, vecs = torch.linalg.eigh(0.5 * (c + c.T))
            return vecs * vals.clamp_min(0).sqrt()

        to = dict(device=device, dtype=dtype)
        return cls(gain.to(**to), sqrt_psd(conditional).to(**to), sqrt_psd(q_yy).to(**to))


def adaptive_noise_draw(xi: torch.Tensor, split: NoiseSplit, std_scale: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Model noise (B, N, n) from standard normals ``xi`` (B, N, n): the observables' noise (and the latent noise it
    explains) scaled by std_scale·factor per experiment, the unexplained latent noise by std_scale only."""
    n_latent = split.latent_factor.shape[0]
    y_noise = (xi[..., n_latent:] @ split.obs_factor.mT) * (std_scale * factor)[:, None, None]
    z_noise = y_noise @ split.gain.mT + (xi[..., :n_latent] @ split.latent_factor.mT) * std_scale[:, None, None]
    return torch.cat([z_noise, y_noise], dim=-1)


@dataclass(frozen=True)
class AdaptiveNoise:
    """Settings of the online model-noise amplitude (``DASection.adaptive_noise``)."""

    timescale_months: int
    min_factor: float
    max_factor: float

    def update(self, adapt: torch.Tensor, d2: torch.Tensor, s2: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """One month of adaptation. ``adapt`` (B, 3) = [factor f on the model-noise std, running mean of d², running
        mean of spread² + R]; d2, s2, r (B,) are this month's mean standardised squared innovation, forecast spread²
        and observation-error variance.

        The running means (e-folding ``timescale_months``) estimate E[d²] and E[spread² + R]; f takes a slow
        multiplicative step toward their ratio being 1: log f += ½ log(E[d²] / E[spread² + R]) / timescale. Ratios of
        running means, not running means of monthly ratios: d² over strongly correlated observables is heavy-tailed,
        so the mean of log ratios settles where the ratio of sums is 2–3. The spread answers f at once, the small gain
        keeps the loop stable.
        """
        w = 1.0 / self.timescale_months
        factor, run_d2, run_p = adapt.unbind(-1)
        first = torch.isnan(run_d2)
        run_d2 = torch.where(first, d2, (1 - w) * run_d2 + w * d2)
        run_p = torch.where(first, s2 + r, (1 - w) * run_p + w * (s2 + r))
        tiny = torch.finfo(d2.dtype).tiny
        log_ratio = torch.log(run_d2.clamp_min(tiny) / run_p.clamp_min(tiny))
        factor = (factor * torch.exp(0.5 * w * log_ratio)).clamp(self.min_factor, self.max_factor)
        return torch.stack([factor, run_d2, run_p], dim=-1)


@dataclass
class FilterState:
    month: int  # index of the next month to cycle
    members: torch.Tensor  # (B, N, n) analysis (or initial) ensemble
    recurrent: Any  # the forecast model's recurrent state for B·N rows, or None
    generator: torch.Generator
    # (B, 3) adaptive model noise: [factor on the noise std, running E[d²], running E[spread² + R]], or None
    adapt: torch.Tensor | None = None


@dataclass
class BlockResult:
    """Host copies of one block of months [first_month, first_month + K)."""

    first_month: int
    members: np.ndarray  # (K, B, N, n) float32
    mean: np.ndarray  # (K, B, n) float32
    spread: np.ndarray  # (K, B, n) float32, std over members (ddof 1)
    innovation: np.ndarray  # (K, B, m) y − H mean(forecast)
    forecast_spread: np.ndarray  # (K, B, m) spread of the forecast observables as the analysis used it (inflated)
    decoded: np.ndarray | None  # (K, B, k, m) decoded observables of the first k members
    consistency_moments: np.ndarray | None  # (K, B, 5) moments of decoded vs analysis observables, standardised
    noise_factor: np.ndarray | None = None  # (K, B) adaptive factor on the model-noise std used that month


def _to_host(t: torch.Tensor, dtype=np.float32) -> np.ndarray:
    return t.detach().to("cpu").numpy().astype(dtype, copy=False)


def _map_tensors(obj, fn):
    if obj is None:
        return None
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_map_tensors(o, fn) for o in obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    raise TypeError(f"recurrent state of type {type(obj).__name__} cannot be checkpointed (use tensors, tuples, dicts)")


def _chunked(fn: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
    if rows.shape[0] <= _AUTOENCODER_ROWS:
        return fn(rows)
    return torch.cat([fn(rows[i : i + _AUTOENCODER_ROWS]) for i in range(0, rows.shape[0], _AUTOENCODER_ROWS)])


def _month_label(time_values, month: int) -> str:
    if time_values is None:
        return f"month index {month}"
    years, months = year_month(np.asarray(time_values)[month : month + 1])
    return f"month index {month} ({int(years[0]):04d}-{int(months[0]):02d})"


def _hint(setup: CycleSetup) -> str:
    if setup.assimilate and setup.taper is not None:
        return (" (localization is on: its unbalanced latent/observable increments push members off the training "
                "manifold, where the forecast model can amplify them; try da.localization.enabled: false)")
    return ""


def run_cycles(
    setup: CycleSetup,
    state: FilterState,
    *,
    stop_month: int,
    block_months: int,
    on_block: Callable[[BlockResult, FilterState], None] | None = None,
    time_values=None,
) -> FilterState:
    """Cycle from ``state.month`` to ``stop_month``; after each block of months call ``on_block(result, state)``.

    Blocks end at multiples of ``block_months`` (so they align with the output chunks across resumes). Non-finite
    values stop the run with a ``FilterDivergedError`` naming the first bad month and experiment; the check runs once
    per block so a GPU run synchronises with the host only then.
    """
    B, N, n = state.members.shape
    m, n_latent = setup.n_obs, setup.n_latent
    if n != n_latent + m:
        raise ValueError(f"state has {n} entries, expected n_latent + n_obs = {n_latent} + {m}")
    device, dtype = state.members.device, state.members.dtype
    gen = state.generator
    k = min(setup.consistency_members, N) if setup.decoded_observables is not None else 0
    obs_std_moments = None
    with torch.inference_mode():
        while state.month < stop_month:
            first = state.month
            last = min((first // block_months + 1) * block_months, stop_month)
            K = last - first
            members_buf = torch.empty((K, B, N, n), dtype=dtype, device=device)
            mean_buf = torch.empty((K, B, n), dtype=dtype, device=device)
            spread_buf = torch.empty((K, B, n), dtype=dtype, device=device)
            innov_buf = torch.empty((K, B, m), dtype=dtype, device=device)
            fspread_buf = torch.empty((K, B, m), dtype=dtype, device=device)
            finite_forecast = torch.ones((K, B), dtype=torch.bool, device=device)
            finite_analysis = torch.ones((K, B), dtype=torch.bool, device=device)
            decoded_buf = torch.empty((K, B, k, m), dtype=dtype, device=device) if k else None
            moments_buf = torch.empty((K, B, len(CONSISTENCY_MOMENTS)), dtype=torch.float64, device=device) if k else None
            adaptive = setup.adaptive if setup.assimilate else None
            if adaptive is not None and state.adapt is None:
                state.adapt = torch.tensor([1.0, float("nan"), float("nan")], dtype=dtype, device=device).repeat(B, 1)
            factor_buf = torch.empty((K, B), dtype=dtype, device=device) if adaptive is not None else None
            for i in range(K):
                t = first + i
                x, state.recurrent = setup.forecaster.step(state.members.reshape(B * N, n), state.recurrent)
                xi = torch.randn((B * N, n), generator=gen, dtype=dtype, device=device)
                if adaptive is None:
                    noise = (xi @ setup.noise_factor.mT).reshape(B, N, n) * setup.noise_std_scale[:, None, None]
                else:
                    noise = adaptive_noise_draw(xi.reshape(B, N, n), setup.noise_split, setup.noise_std_scale, state.adapt[:, 0])
                forecast = x.reshape(B, N, n) + noise
                finite_forecast[i] = torch.isfinite(forecast).flatten(1).all(1)
                y = setup.observations[t]
                innov_buf[i] = y - forecast[..., -m:].mean(1)
                if setup.assimilate:
                    fspread_buf[i] = forecast[..., -m:].std(1) * setup.inflation[:, None]
                    if adaptive is not None:
                        factor_buf[i] = state.adapt[:, 0]
                        obs_scale = setup.observable_std.to(device=device, dtype=dtype) if setup.observable_std is not None else 1.0
                        state.adapt = adaptive.update(
                            state.adapt,
                            ((innov_buf[i] / obs_scale) ** 2).mean(-1),
                            ((fspread_buf[i] / obs_scale) ** 2).mean(-1),
                            (setup.obs_var / obs_scale**2).mean(-1),
                        )
                    try:
                        members = analysis(
                            forecast,
                            y,
                            setup.obs_var,
                            method=setup.method,
                            inflation=setup.inflation,
                            taper=setup.taper,
                            generator=gen,
                        )
                    except torch.linalg.LinAlgError as err:
                        bad_forecast = (~finite_forecast[: i + 1]).any(1)
                        if bool(bad_forecast.any()):  # the CPU analysis raises on NaN input before the block check
                            raise FilterDivergedError(
                                f"{_month_label(time_values, first + int(torch.nonzero(bad_forecast)[0]))}: the "
                                f"forecast model step (or model noise) produced NaN/Inf{_hint(setup)}"
                            ) from None
                        raise FilterDivergedError(
                            f"{_month_label(time_values, t)}: the analysis failed ({err}); the forecast ensemble "
                            f"is degenerate or has diverged{_hint(setup)}"
                        ) from None
                    if setup.reencode is not None:
                        z = _chunked(setup.reencode, members[..., :n_latent].reshape(B * N, n_latent))
                        members = torch.cat([z.reshape(B, N, n_latent).to(dtype), members[..., n_latent:]], dim=-1)
                else:
                    fspread_buf[i] = forecast[..., -m:].std(1)
                    members = forecast
                finite_analysis[i] = torch.isfinite(members).flatten(1).all(1)
                state.members = members
                members_buf[i] = members
                mean_buf[i] = members.mean(1)
                spread_buf[i] = members.std(1)
                if k:
                    z_check = members[:, :k, :n_latent].reshape(B * k, n_latent)
                    decoded = setup.decoded_observables(z_check).reshape(B, k, m).to(dtype)
                    decoded_buf[i] = decoded
                    if obs_std_moments is None:
                        obs_std_moments = (
                            torch.ones(m, dtype=torch.float64, device=device)
                            if setup.observable_std is None
                            else setup.observable_std.to(device=device, dtype=torch.float64)
                        )
                    a = (decoded.to(torch.float64) / obs_std_moments).flatten(1)
                    b = (members[:, :k, n_latent:].to(torch.float64) / obs_std_moments).flatten(1)
                    moments_buf[i] = torch.stack(
                        [a.sum(1), b.sum(1), (a * a).sum(1), (b * b).sum(1), (a * b).sum(1)], dim=-1
                    )
            state.month = last
            # One host synchronisation per block: find the first non-finite month, if any.
            bad_f, bad_a = ~finite_forecast.cpu(), ~finite_analysis.cpu()
            if bool(bad_f.any()) or bool(bad_a.any()):
                first_bad = int(torch.nonzero((bad_f | bad_a).any(1))[0])
                exps = torch.nonzero(bad_f[first_bad] | bad_a[first_bad]).flatten().tolist()
                what = "forecast model step (or model noise)" if bool(bad_f[first_bad].any()) else "analysis"
                raise FilterDivergedError(
                    f"{_month_label(time_values, first + first_bad)}: the {what} produced NaN/Inf in experiment(s) "
                    f"{exps[:10]}; the forecast model is unstable in the cycle or the noise/inflation is too large"
                    f"{_hint(setup)}"
                )
            if on_block is not None:
                on_block(
                    BlockResult(
                        first_month=first,
                        members=_to_host(members_buf),
                        mean=_to_host(mean_buf),
                        spread=_to_host(spread_buf),
                        innovation=_to_host(innov_buf),
                        forecast_spread=_to_host(fspread_buf),
                        decoded=_to_host(decoded_buf) if k else None,
                        consistency_moments=_to_host(moments_buf, np.float64) if k else None,
                        noise_factor=_to_host(factor_buf) if factor_buf is not None else None,
                    ),
                    state,
                )
    return state


# --------------------------------------------------------------------------------------------------------------------
# Statistics


def _safe_ratio(num, den):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def consistency_from_moments(moments: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlation and slope (decoded regressed on analysis) from summed moments (..., 5) over ``count`` pairs."""
    sa, sb, saa, sbb, sab = np.moveaxis(np.asarray(moments, dtype=np.float64), -1, 0)
    cov = sab / count - sa * sb / count**2
    var_a = saa / count - (sa / count) ** 2
    var_b = sbb / count - (sb / count) ** 2
    corr = _safe_ratio(cov, np.sqrt(np.clip(var_a, 0, None) * np.clip(var_b, 0, None)))
    slope = _safe_ratio(cov, var_b)
    return corr, slope


def monthly_statistics(
    innovation: np.ndarray,
    forecast_spread: np.ndarray,
    obs_var: np.ndarray,
    observable_std: np.ndarray,
    spread: np.ndarray,
    n_latent: int,
    moments: np.ndarray | None = None,
    consistency_count: int = 0,
) -> dict[str, np.ndarray]:
    """Per-month, per-experiment (T, B) statistics; observables in units of their training standard deviation.

    innovation_mean / innovation_variance: mean over observables of d̃ and d̃², d = y − H x̄_f;
    predicted_variance: mean over observables of (s̃² + R̃), s the forecast spread the analysis used;
    innovation_ratio: innovation_variance / predicted_variance (≈ 1 for a consistent filter);
    spread_latent / spread_obs: root-mean-square ensemble spread of the latent and observable blocks after the update;
    consistency_correlation / consistency_slope: decoded vs analysis observables of the checked members.
    """
    sd = np.asarray(observable_std, dtype=np.float64)
    d = innovation.astype(np.float64) / sd
    s2 = (forecast_spread.astype(np.float64) / sd) ** 2
    r = np.asarray(obs_var, dtype=np.float64) / sd**2  # (B, m)
    out = {
        "innovation_mean": d.mean(-1),
        "innovation_variance": (d * d).mean(-1),
        "predicted_variance": (s2 + r[None]).mean(-1),
    }
    out["innovation_ratio"] = _safe_ratio(out["innovation_variance"], out["predicted_variance"])
    sp = spread.astype(np.float64)
    out["spread_latent"] = np.sqrt((sp[..., :n_latent] ** 2).mean(-1)) if n_latent else np.zeros(sp.shape[:-1])
    out["spread_obs"] = np.sqrt(((sp[..., n_latent:] / sd) ** 2).mean(-1))
    if moments is not None:
        out["consistency_correlation"], out["consistency_slope"] = consistency_from_moments(moments, consistency_count)
    return out


def summarize(
    monthly: Mapping[str, np.ndarray],
    moments: np.ndarray | None,
    consistency_count: int,
    *,
    decade_months: int = DECADE_MONTHS,
    first_month: int = 0,
) -> list[dict]:
    """Aggregate per decade (and ``first_month`` offsets the labels): innovation ratio as a ratio of sums."""
    T = monthly["innovation_variance"].shape[0]
    rows = []
    for a in range(0, T, decade_months):
        b = min(a + decade_months, T)
        row = {
            "first_month": first_month + a,
            "months": b - a,
            "innovation_ratio": (monthly["innovation_variance"][a:b].sum(0) / monthly["predicted_variance"][a:b].sum(0)).tolist(),
            "innovation_mean": monthly["innovation_mean"][a:b].mean(0).tolist(),
            "spread_latent": monthly["spread_latent"][a:b].mean(0).tolist(),
            "spread_obs": monthly["spread_obs"][a:b].mean(0).tolist(),
        }
        if "model_noise_factor" in monthly:
            row["model_noise_factor"] = monthly["model_noise_factor"][a:b].mean(0).tolist()
        if moments is not None:
            corr, slope = consistency_from_moments(moments[a:b].sum(0), consistency_count * (b - a))
            row["consistency_correlation"] = corr.tolist()
            row["consistency_slope"] = slope.tolist()
        rows.append(row)
    return rows


def health_warnings(
    decades: list[dict], *, ratio_max: float, consistency_min: float, assimilating: bool, baseline: float | None = None
) -> list[str]:
    """Warnings about ensemble collapse (innovations far beyond the predicted spread) and consistency drops.

    ``baseline`` is the autoencoder's own consistency on training states (``autoencoder_check``): the message says
    whether the filter lost consistency or the autoencoder never had it.
    """
    warnings = []
    for row in decades:
        span = f"months {row['first_month']}–{row['first_month'] + row['months'] - 1}"
        for b, ratio in enumerate(row["innovation_ratio"]):
            if assimilating and not ratio <= ratio_max:
                warnings.append(
                    f"{span}, experiment {b}: innovation ratio E[d²]/(spread² + R) = {ratio:.2f} > {ratio_max}: "
                    "the ensemble spread is collapsing (raise model_noise_scale or inflation)"
                )
        for b, corr in enumerate(row.get("consistency_correlation", [])):
            if not corr >= consistency_min:
                if baseline is not None and corr >= baseline - 0.1:
                    cause = (f"the autoencoder itself reaches only {baseline:.3f} on training states, so it, not the "
                             "filter, limits the consistency")
                else:
                    cause = "the latent state is drifting off the autoencoder's manifold" + (
                        f" (the autoencoder reaches {baseline:.3f} on training states)" if baseline is not None else "")
                warnings.append(
                    f"{span}, experiment {b}: decoded fields at the observation points correlate {corr:.3f} "
                    f"< {consistency_min} with the analysis observables: {cause}"
                )
    return warnings


# --------------------------------------------------------------------------------------------------------------------
# Building blocks of the stage: inputs, models, initial ensemble


def noise_factor(noise_cov, *, path=None) -> torch.Tensor:
    """A float64 factor L with L Lᵀ = noise_cov: Cholesky, or a scaled eigenbasis when noise_cov is only semi-definite
    (a residual covariance estimated from fewer months than state entries is singular)."""
    q = torch.as_tensor(np.asarray(noise_cov), dtype=torch.float64)
    if q.dim() != 2 or q.shape[0] != q.shape[1]:
        raise InputDataError(path, f"noise_cov must be a square matrix, got shape {tuple(q.shape)}")
    if not bool(torch.isfinite(q).all()):
        raise InputDataError(path, "noise_cov contains NaN/Inf")
    q = 0.5 * (q + q.T)
    factor, info = torch.linalg.cholesky_ex(q)
    if int(info) == 0:
        return factor
    vals, vecs = torch.linalg.eigh(q)
    scale = float(vals.abs().max()) or 1.0
    if float(vals[0]) < -1e-8 * scale:
        raise InputDataError(path, f"noise_cov is not positive semi-definite (smallest eigenvalue {float(vals[0]):.3g})")
    return vecs * vals.clamp_min(0).sqrt()


def initial_members(
    training: np.ndarray, n_members: int, *, warmup: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random training months as initial members: (months (N,), history (N, warmup, n), states (N, n)).

    Months are drawn without replacement when the record allows it; each member's ``warmup`` preceding months are
    returned to spin up the forecast model's recurrent state.
    """
    T = training.shape[0]
    candidates = np.arange(warmup, T)
    if candidates.size == 0:
        raise ConfigError(f"da.init_warmup_months = {warmup} leaves no training month to start from ({T} months)")
    rng = np.random.default_rng(seed)
    months = rng.choice(candidates, size=n_members, replace=n_members > candidates.size)
    history = np.stack([training[t - warmup : t] for t in months]) if warmup else np.zeros((n_members, 0, training.shape[1]))
    return months, history, training[months]


def spin_up(forecaster, history: torch.Tensor, n_experiments: int):
    """The recurrent state after feeding each member's history (N, W, n), repeated for every experiment."""
    N, W, n = history.shape
    rows = history.unsqueeze(0).expand(n_experiments, N, W, n).reshape(n_experiments * N, W, n)
    state = forecaster.initial_state(n_experiments * N, history.device, history.dtype)
    if state is None:
        return None
    with torch.inference_mode():
        for w in range(W):
            _, state = forecaster.step(rows[:, w], state)
    return state


def observation_operator(layout: ObservationLayout, grid: TargetGrid, ocean_mask: np.ndarray) -> np.ndarray:
    """(n_obs, n_fields·n_lat·n_lon) weights that give y from flattened (field, lat, lon) arrays in ``FIELDS`` order.

    The same box-mean weights ``ObservationLayout.extract`` applies to fields that are NaN on land (tested against it).
    """
    n_cells = grid.shape[0] * grid.shape[1]
    op = np.zeros((layout.size, len(FIELDS) * n_cells))
    for c, field in enumerate(FIELDS):
        idx = [k for k, v in enumerate(layout.variable) if v == field]
        if not idx:
            continue
        sub = ObservationLayout(
            tuple(layout.variable[k] for k in idx),
            tuple(layout.lat_min[k] for k in idx),
            tuple(layout.lat_max[k] for k in idx),
            tuple(layout.lon_min[k] for k in idx),
            tuple(layout.lon_max[k] for k in idx),
        )
        op[idx, c * n_cells : (c + 1) * n_cells] = sub.weights(grid, ocean_mask)
    unknown = sorted(set(layout.variable) - set(FIELDS))
    if unknown:
        raise ValueError(f"observables of unknown variables {unknown}; the autoencoder's fields are {FIELDS}")
    return op


def autoencoder_hooks(ae, *, layout, grid, ocean_mask, anomaly_std: Mapping[str, float], device, dtype):
    """(reencode, decoded_observables) closures over the autoencoder (channels in ``stores.FIELDS`` order).

    The decoder may return NaN (or anything) over land; land is set to 0 before re-encoding (the encoder's inputs
    are 0 outside the ocean) and carries zero weight in the extraction. Decoded observables are de-standardised with
    the operational store's anomaly std per field, so they are in the physical units of y.
    """
    names = tuple(getattr(ae, "field_names", FIELDS))
    if names != FIELDS:
        raise ValueError(f"the autoencoder's channels are {names}, the filter expects {FIELDS}")
    ocean = torch.as_tensor(np.asarray(ocean_mask, dtype=bool), device=device)
    op = torch.as_tensor(observation_operator(layout, grid, ocean_mask), dtype=dtype, device=device)
    unit = torch.as_tensor([float(anomaly_std[v]) for v in layout.variable], dtype=dtype, device=device)

    def ocean_only(fields: torch.Tensor) -> torch.Tensor:
        return torch.where(ocean, fields, torch.zeros((), dtype=fields.dtype, device=fields.device))

    def reencode(z: torch.Tensor) -> torch.Tensor:
        return ae.encode(ocean_only(ae.decode(z)))

    def decoded_observables(z: torch.Tensor) -> torch.Tensor:
        return (ocean_only(ae.decode(z).to(dtype)).flatten(1) @ op.mT) * unit

    return reencode, decoded_observables


def autoencoder_check(reencode, decoded_observables, inputs: StageInputs, *, device, dtype, sample: int = 256) -> dict:
    """How well the autoencoder supports the filter, on training months (logged and written to the statistics):

    * ``training_consistency_*``: decoded fields at the observation points vs y on the training record — the
      ceiling of the filter's consistency diagnostic (an imperfect autoencoder cannot reach 1 even without DA);
    * ``reencode_relative_change``: ‖E(D(z)) − z‖ / ‖z − z̄‖: how far one re-encoding moves a training state. Near 0
      the re-encoding is a projection onto the manifold; otherwise it jolts every member each month by far more than
      the analysis spread (with a 2-epoch autoencoder, 0.44, re-encoding collapsed the ensemble: innovation ratio 9.2
      and consistency 0.07 over 240 months, against 0.56 and 0.52 without it).
    """
    rows = np.linspace(0, inputs.training.shape[0] - 1, min(sample, inputs.training.shape[0])).astype(int)
    z = torch.as_tensor(inputs.training[rows, : inputs.n_latent], dtype=dtype, device=device)
    y = inputs.training[rows, inputs.n_latent :] / inputs.observable_std
    with torch.inference_mode():
        decoded = _chunked(decoded_observables, z).double().cpu().numpy() / inputs.observable_std
        moved = _chunked(reencode, z).double().cpu().numpy()
    zc = inputs.training[rows, : inputs.n_latent]
    moments = np.array([decoded.sum(), y.sum(), (decoded**2).sum(), (y**2).sum(), (decoded * y).sum()])
    corr, slope = consistency_from_moments(moments, decoded.size)
    return {
        "training_consistency_correlation": float(corr),
        "training_consistency_slope": float(slope),
        "reencode_relative_change": float(np.linalg.norm(moved - zc) / np.linalg.norm(zc - zc.mean(0))),
        "training_months_checked": int(rows.size),
    }


def load_models(forecast_path, autoencoder_path, device):
    """The trained forecast model and autoencoder (bridging.models; checkpoints load with weights_only=True)."""
    from ..models.autoencoder import load_autoencoder
    from ..models.forecast import load_forecast_model

    return load_forecast_model(forecast_path, device), load_autoencoder(autoencoder_path, device)


def _as_model_dtype(model, dtype):
    """Models run in the filter's dtype (float64 runs exist for testing); modules are cast, other objects kept."""
    if isinstance(model, torch.nn.Module):
        model = model.to(dtype)
        model.eval()
    return model


def _same_layout(a: ObservationLayout, b: ObservationLayout) -> bool:
    return a.variable == b.variable and all(
        np.allclose(getattr(a, f), getattr(b, f)) for f in ("lat_min", "lat_max", "lon_min", "lon_max")
    )




@dataclass
class StageInputs:
    """What the filter reads from files, checked for consistency."""

    training: np.ndarray  # (T_train, n) [z; y] of the operational latent store
    n_latent: int
    observations: np.ndarray  # (T, m)
    obs_error_variance: np.ndarray  # (m,)
    observable_std: np.ndarray  # (m,) std of y over the training record
    time: np.ndarray  # (T,) cftime
    layout: ObservationLayout
    ocean_mask: np.ndarray
    anomaly_std: dict[str, float]
    grid: TargetGrid
    pseudo_obs_attrs: dict


def read_inputs(latent_store, pseudo_obs, operational_store, grid_cfg, months: int | None) -> StageInputs:
    lat_ds = open_zarr_checked(latent_store, "latent store", ["z", "y", "obs_variable", "obs_lat_min"])
    obs_ds = open_zarr_checked(pseudo_obs, "pseudo-observation store", ["observations", "obs_error_variance", "obs_variable", "obs_lat_min"])
    layout = ObservationLayout.from_dataset(obs_ds)
    if not _same_layout(layout, ObservationLayout.from_dataset(lat_ds)):
        raise InputDataError(
            [pseudo_obs, latent_store], "the observables of the pseudo-observations and of the latent store differ"
        )
    z = np.asarray(lat_ds["z"].transpose("time", ...).values, dtype=np.float64)
    y = np.asarray(lat_ds["y"].transpose("time", "obs").values, dtype=np.float64)
    if not (np.isfinite(z).all() and np.isfinite(y).all()):
        raise InputDataError(latent_store, "z or y contains NaN/Inf")
    observations = np.asarray(obs_ds["observations"].transpose("time", "obs").values, dtype=np.float64)
    obs_var = np.asarray(obs_ds["obs_error_variance"].values, dtype=np.float64)
    if not np.isfinite(observations).all():
        bad = int(np.flatnonzero(~np.isfinite(observations).all(1))[0])
        raise InputDataError(pseudo_obs, f"observations contain NaN/Inf (first at time index {bad})")
    if not (np.isfinite(obs_var).all() and (obs_var > 0).all()):
        raise InputDataError(pseudo_obs, "obs_error_variance must be finite and positive for every observable")
    T = observations.shape[0]
    if months is not None:
        if months > T:
            raise ConfigError(f"da.months = {months} exceeds the {T} months of {pseudo_obs}")
        T = months
    op = open_store(operational_store)
    missing = [f"{f}_anomaly_std" for f in FIELDS if f"{f}_anomaly_std" not in op]
    if missing:
        raise InputDataError(operational_store, f"not a store with anomaly std: missing {missing}")
    grid = TargetGrid.from_config(grid_cfg)
    if tuple(op["ocean_mask"].shape) != grid.shape:
        raise InputDataError(operational_store, f"ocean_mask has shape {op['ocean_mask'].shape}, the grid is {grid.shape}")
    ysd = y.std(0)
    if not (ysd > 0).all():
        raise InputDataError(latent_store, f"observables {np.flatnonzero(ysd == 0).tolist()} are constant in y")
    return StageInputs(
        training=np.concatenate([z, y], axis=1),
        n_latent=z.shape[1],
        observations=observations[:T],
        obs_error_variance=obs_var,
        observable_std=ysd,
        time=obs_ds["time"].values[:T],
        layout=layout,
        ocean_mask=np.asarray(op["ocean_mask"].values).astype(bool),
        anomaly_std={f: float(op[f"{f}_anomaly_std"]) for f in FIELDS},
        grid=grid,
        pseudo_obs_attrs=dict(obs_ds.attrs),
    )


# --------------------------------------------------------------------------------------------------------------------
# Output store and checkpoint sidecar


def _fingerprint_path(path) -> list:
    path = Path(path)
    if path.is_dir():
        entries = []
        for root, _, files in sorted(os.walk(path)):
            for name in sorted(files):
                st = os.stat(os.path.join(root, name))
                entries.append((os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns))
        return entries
    st = path.stat()
    return [(path.name, st.st_size, st.st_mtime_ns)]


def filter_code_hash() -> str:
    from ..provenance import code_hash

    return code_hash(FILTER_CODE)


def run_fingerprint(inputs: Sequence, settings: Mapping) -> str:
    """Identity of a run for resuming: input files (names, sizes, mtimes), every setting that changes numbers, and
    the code (version and the hash of the modules the stage runs)."""
    record = {
        "version": CHECKPOINT_VERSION,
        "code": [__version__, filter_code_hash()],
        "settings": settings,
        "inputs": [_fingerprint_path(p) for p in inputs],
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def sidecar_dir(output) -> Path:
    output = Path(output)
    return output.parent / f".{output.name}.resume"


def _template(
    *,
    time_values,
    n_experiments: int,
    n_members: int,
    n_state: int,
    n_latent: int,
    layout: ObservationLayout,
    consistency_members: int,
    chunk_months: int,
    adaptive: bool = False,
    static: Mapping[str, xr.DataArray],
    attrs: Mapping,
) -> tuple[xr.Dataset, dict]:
    import dask.array as dsa

    T, B, N, n, m, k = len(time_values), n_experiments, n_members, n_state, layout.size, consistency_members
    c = min(chunk_months, T)
    specs = {
        "members": (("time", "experiment", "member", "state"), (T, B, N, n), (c, 1, N, n), np.float32),
        "ensemble_mean": (("time", "experiment", "state"), (T, B, n), (c, 1, n), np.float32),
        "ensemble_spread": (("time", "experiment", "state"), (T, B, n), (c, 1, n), np.float32),
        "innovation": (("time", "experiment", "obs"), (T, B, m), (c, 1, m), np.float32),
        "forecast_spread": (("time", "experiment", "obs"), (T, B, m), (c, 1, m), np.float32),
    }
    if adaptive:
        specs["model_noise_factor"] = (("time", "experiment"), (T, B), (c, 1), np.float32)
    if k:
        specs["decoded_observables"] = (("time", "experiment", "check_member", "obs"), (T, B, k, m), (c, 1, k, m), np.float32)
        specs["consistency_moments"] = (("time", "experiment", "moment"), (T, B, 5), (c, 1, 5), np.float64)
    var_attrs = {
        "members": {"long_name": "ensemble members of the augmented state x = [z; y] after each month's cycle"},
        "ensemble_mean": {"long_name": "ensemble mean of x"},
        "ensemble_spread": {"long_name": "ensemble standard deviation of x (ddof 1)"},
        "innovation": {"long_name": "y_obs − H mean(x_f): pseudo-observation minus forecast-mean observable", "units": "physical (obs)"},
        "forecast_spread": {"long_name": "forecast spread of the observables as used by the analysis (after inflation)"},
        "model_noise_factor": {"long_name": "adaptive factor on the model-noise standard deviation used for the month's forecast (da.adaptive_noise)"},
        "decoded_observables": {"long_name": "observables extracted from the decoded fields of the first members (physical units)"},
        "consistency_moments": {"long_name": "moments of decoded vs analysis observables in units of the training std, summed over checked members and observables"},
    }
    data_vars = {}
    encoding = {"time": time_encoding()}
    for name, (dims, shape, chunks, dtype) in specs.items():
        data_vars[name] = xr.DataArray(dsa.zeros(shape, chunks=chunks, dtype=dtype), dims=dims, attrs=var_attrs[name])
        encoding[name] = {"chunks": chunks}
    coords = {
        "time": xr.DataArray(np.asarray(time_values), dims="time"),
        "experiment": np.arange(B),
        "member": np.arange(N),
        "state": np.arange(n),
        "obs": np.arange(m),
        **layout.coords(),
    }
    if k:
        coords["check_member"] = np.arange(k)
        coords["moment"] = np.array(CONSISTENCY_MOMENTS)
    ds = xr.Dataset(data_vars, coords=coords, attrs=dict(attrs))
    for name, da in static.items():
        ds[name] = da
    ds.attrs.update({"n_latent": int(n_latent), "n_obs": int(m)})
    return ds, encoding


class _PartialStore:
    """The output store under construction in the sidecar: created once, then written block by block (region writes)."""

    def __init__(self, path: Path):
        self.path = path

    def create(self, template: xr.Dataset, encoding: dict) -> None:
        if self.path.exists():
            shutil.rmtree(self.path)
        template = variable_length_strings(template)
        template.to_zarr(self.path, mode="w", compute=False, zarr_format=3, consolidated=False, encoding=encoding)

    def write_block(self, result: BlockResult) -> None:
        K = result.members.shape[0]
        dims3 = ("time", "experiment", "state")
        block = {
            "members": (("time", "experiment", "member", "state"), result.members),
            "ensemble_mean": (dims3, result.mean),
            "ensemble_spread": (dims3, result.spread),
            "innovation": (("time", "experiment", "obs"), result.innovation),
            "forecast_spread": (("time", "experiment", "obs"), result.forecast_spread),
        }
        if result.noise_factor is not None:
            block["model_noise_factor"] = (("time", "experiment"), result.noise_factor)
        if result.decoded is not None:
            block["decoded_observables"] = (("time", "experiment", "check_member", "obs"), result.decoded)
            block["consistency_moments"] = (("time", "experiment", "moment"), result.consistency_moments)
        ds = xr.Dataset({k: xr.Variable(*v) for k, v in block.items()})
        region = {"time": slice(result.first_month, result.first_month + K)}
        ds.to_zarr(self.path, region=region, zarr_format=3, consolidated=False)


def _save_checkpoint(path: Path, state: FilterState, fingerprint: str) -> None:
    record = {
        "version": CHECKPOINT_VERSION,
        "fingerprint": fingerprint,
        "code_version": __version__,
        "code_hash": filter_code_hash(),
        "month": state.month,
        "members": state.members.detach().cpu(),
        "recurrent": _map_tensors(state.recurrent, lambda t: t.detach().cpu()),
        "rng_state": state.generator.get_state(),
        "adapt": None if state.adapt is None else state.adapt.detach().cpu(),
    }
    with atomic_output(path) as tmp:
        torch.save(record, tmp)


def _load_checkpoint(path: Path, fingerprint: str, device) -> dict | None:
    if not path.is_file():
        return None
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: start again rather than fail
        log.warning("%s: unreadable checkpoint (%s); starting from month 0", path, err)
        return None
    if not isinstance(record, dict) or not {"fingerprint", "month", "members", "recurrent", "rng_state"} <= record.keys():
        log.warning("%s: corrupt checkpoint (not a filter state: %s); starting from month 0", path, type(record).__name__)
        return None
    if record.get("version") == CHECKPOINT_VERSION and record.get("code_hash") != filter_code_hash():
        log.info(
            "%s: checkpoint was written by other code (version %s, code hash %s; now %s, %s); starting from month 0",
            path, record.get("code_version"), record.get("code_hash"), __version__, filter_code_hash(),
        )  # fmt: skip
        return None
    if record.get("version") != CHECKPOINT_VERSION or record.get("fingerprint") != fingerprint:
        log.info("%s: checkpoint belongs to other inputs or settings; starting from month 0", path)
        return None
    record["members"] = record["members"].to(device)
    record["recurrent"] = _map_tensors(record["recurrent"], lambda t: t.to(device))
    record["adapt"] = None if record.get("adapt") is None else record["adapt"].to(device)
    return record


# --------------------------------------------------------------------------------------------------------------------
# The stage


def _experiments(da: DASection, inflation, model_noise_scale) -> tuple[list[float], list[float]]:
    """Experiments of a sweep: the Cartesian product of the given inflation and noise-scale values."""
    infl = [float(v) for v in (inflation if inflation is not None else [da.inflation])]
    noise = [float(v) for v in (model_noise_scale if model_noise_scale is not None else [da.model_noise_scale])]
    if not infl or not noise:
        raise ConfigError("a sweep needs at least one inflation and one model_noise_scale value")
    if min(infl) < 1.0:
        raise ConfigError(f"inflation values must be ≥ 1, got {infl}")
    if min(noise) < 0.0:
        raise ConfigError(f"model_noise_scale values must be ≥ 0, got {noise}")
    pairs = [(a, b) for a in infl for b in noise]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def run_filter_stage(
    output: str | Path,
    statistics: str | Path,
    *,
    kind: str,
    latent_store: str | Path,
    operational_store: str | Path,
    forecast_model: str | Path,
    autoencoder: str | Path,
    pseudo_obs: str | Path,
    da: DASection | Mapping,
    grid: Mapping,
    allow_failed_gate: bool = False,
    device: str = "auto",
    model_name: str | None = None,
    inflation: Sequence[float] | None = None,
    model_noise_scale: Sequence[float] | None = None,
) -> dict:
    """Run the filter (kind "assimilation") or the free run (kind "free_run") and write the store and statistics.

    ``inflation`` / ``model_noise_scale`` lists turn the run into a batched sweep over their Cartesian product (the
    experiment dimension); by default one experiment with the configured values.
    """
    from ..models.forecast import ensure_gate_passed
    from ..runtime import resolve_device

    if kind not in ("assimilation", "free_run"):
        raise ValueError(f"kind must be 'assimilation' or 'free_run', got {kind!r}")
    da = DASection.model_validate(da)
    assimilating = kind == "assimilation"
    output, statistics = Path(output), Path(statistics)
    dev = resolve_device(device)
    dtype = getattr(torch, da.dtype)
    started = time.perf_counter()

    inputs = read_inputs(latent_store, pseudo_obs, operational_store, grid, da.months)
    fm, ae = load_models(forecast_model, autoencoder, dev)
    # A model whose free run is not stable lets the latent block drift off the autoencoder's manifold in the cycle.
    ensure_gate_passed(fm, allow_failed=allow_failed_gate, path=forecast_model)
    fm, ae = _as_model_dtype(fm, dtype), _as_model_dtype(ae, dtype)
    n_state = inputs.training.shape[1]
    if int(fm.n_state) != n_state:
        raise InputDataError(
            [forecast_model, latent_store],
            f"the forecast model's state has {fm.n_state} entries, the latent store's [z; y] has {n_state}",
        )
    n_obs, T = inputs.layout.size, inputs.observations.shape[0]
    infl, noise_scale = _experiments(da, inflation, model_noise_scale)
    B, N = len(infl), da.ensemble_size
    k = min(da.consistency_members, N)

    taper_np = None
    if assimilating:
        taper_np = taper_from_training(
            inputs.training[:, : inputs.n_latent], inputs.training[:, inputs.n_latent :], inputs.layout.lon, da.localization,
            path=latent_store,
        )
    if assimilating and da.method == "etkf" and taper_np is not None:
        log.info("ETKF with localization: the observation-space symmetric square-root form (m×m) is used")
    reencode, decoded_observables = autoencoder_hooks(
        ae, layout=inputs.layout, grid=inputs.grid, ocean_mask=inputs.ocean_mask, anomaly_std=inputs.anomaly_std,
        device=dev, dtype=dtype,
    )
    ae_check = autoencoder_check(reencode, decoded_observables, inputs, device=dev, dtype=dtype)
    log.info("autoencoder on %d training months: decoded-vs-y consistency corr %.3f slope %.3f; one re-encoding moves "
             "z by %.2f of its spread", ae_check["training_months_checked"], ae_check["training_consistency_correlation"],
             ae_check["training_consistency_slope"], ae_check["reencode_relative_change"])
    if assimilating and da.reencode and ae_check["reencode_relative_change"] > REENCODE_CHANGE_WARN:
        log.warning("da.reencode is on but E(D(z)) moves training states by %.2f of their spread: re-encoding will "
                    "jolt every member each month (it collapsed the ensemble in such a case); consider reencode: false",
                    ae_check["reencode_relative_change"])
    setup = CycleSetup(
        forecaster=fm,
        observations=torch.as_tensor(inputs.observations, dtype=dtype, device=dev).unsqueeze(1).expand(T, B, n_obs),
        obs_var=torch.as_tensor(inputs.obs_error_variance, dtype=dtype, device=dev).expand(B, n_obs),
        noise_factor=noise_factor(fm.noise_cov, path=forecast_model).to(device=dev, dtype=dtype),
        noise_std_scale=torch.as_tensor(noise_scale, dtype=dtype, device=dev).sqrt(),
        inflation=torch.as_tensor(infl if assimilating else [1.0] * B, dtype=dtype, device=dev),
        n_latent=inputs.n_latent,
        method=da.method,
        taper=None if taper_np is None else torch.as_tensor(taper_np, dtype=dtype, device=dev),
        assimilate=assimilating,
        reencode=reencode if (assimilating and da.reencode) else None,
        decoded_observables=decoded_observables,
        consistency_members=k,
        observable_std=torch.as_tensor(inputs.observable_std),
        adaptive=AdaptiveNoise(**da.adaptive_noise.model_dump(exclude={"enabled"})) if da.adaptive_noise.enabled else None,
        noise_split=NoiseSplit.from_covariance(fm.noise_cov, inputs.n_latent, device=dev, dtype=dtype)
        if (assimilating and da.adaptive_noise.enabled) else None,
    )

    settings = {
        "kind": kind,
        "da": da.model_dump(mode="json"),
        "inflation": infl,
        "model_noise_scale": noise_scale,
        "device": dev.type,
        "allow_failed_gate": allow_failed_gate,
    }
    fingerprint = run_fingerprint([latent_store, operational_store, forecast_model, autoencoder, pseudo_obs], settings)
    side = sidecar_dir(output)
    ckpt_path, partial = side / "checkpoint.pt", _PartialStore(side / "store.zarr")
    resumed = _load_checkpoint(ckpt_path, fingerprint, dev) if partial.path.exists() else None

    generator = torch.Generator(device=dev)
    if resumed is None:
        if side.exists():
            shutil.rmtree(side)
        side.mkdir(parents=True)
        months0, history, x0 = initial_members(inputs.training, N, warmup=da.init_warmup_months, seed=da.seed)
        history_t = torch.as_tensor(history, dtype=dtype, device=dev)
        members = torch.as_tensor(x0, dtype=dtype, device=dev).unsqueeze(0).expand(B, N, n_state).contiguous()
        state = FilterState(0, members, spin_up(fm, history_t, B), generator)
        generator.manual_seed(da.seed)
        static = {
            "inflation": xr.DataArray(np.asarray(infl), dims="experiment", attrs={"long_name": "prior inflation factor"}),
            "model_noise_scale": xr.DataArray(np.asarray(noise_scale), dims="experiment"),
            "obs_error_variance": xr.DataArray(inputs.obs_error_variance, dims="obs"),
            "observable_std": xr.DataArray(inputs.observable_std, dims="obs", attrs={"long_name": "std of y over the training record"}),
            "initial_training_month": xr.DataArray(months0, dims="member", attrs={"long_name": "latent-store time index each member started from"}),
        }
        if taper_np is not None:
            static["taper"] = xr.DataArray(taper_np.astype(np.float32), dims=("state", "obs"))
        attrs = {
            "kind": kind,
            "model": model_name or "",
            "method": da.method if assimilating else "none",
            "reencode": int(bool(assimilating and da.reencode)),
            "seed": da.seed,
            "da_settings": json.dumps(settings["da"], sort_keys=True),
            "pseudo_obs_model": str(inputs.pseudo_obs_attrs.get("model", "")),
            "provenance": provenance(
                [latent_store, operational_store, forecast_model, autoencoder, pseudo_obs],
                hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16],
            ),
        }
        template, encoding = _template(
            time_values=inputs.time, n_experiments=B, n_members=N, n_state=n_state, n_latent=inputs.n_latent,
            layout=inputs.layout, consistency_members=k, chunk_months=da.checkpoint_months, static=static, attrs=attrs,
            adaptive=setup.adaptive is not None and assimilating,
        )
        partial.create(template, encoding)
        log.info("%s %s: %d months, %d experiment(s) × %d members, state %d = %d latent + %d observables, %s on %s",
                 kind, model_name or output.name, T, B, N, n_state, inputs.n_latent, n_obs, da.dtype, dev)
    else:
        generator.set_state(resumed["rng_state"])
        state = FilterState(int(resumed["month"]), resumed["members"], resumed["recurrent"], generator, resumed["adapt"])
        log.info("%s: resuming from the checkpoint at month %d of %d", output, state.month, T)

    block_clock = [time.perf_counter()]

    def on_block(result: BlockResult, st: FilterState) -> None:
        partial.write_block(result)
        _save_checkpoint(ckpt_path, st, fingerprint)
        K = result.members.shape[0]
        monthly = monthly_statistics(
            result.innovation, result.forecast_spread, setup.obs_var.cpu().numpy(), inputs.observable_std,
            result.spread, inputs.n_latent, result.consistency_moments, k * n_obs,
        )
        row = summarize(monthly, result.consistency_moments, k * n_obs, decade_months=K, first_month=result.first_month)[0]
        now = time.perf_counter()
        log.info(
            "months %d–%d done (%.2f s/month): innovation ratio %s, consistency corr %s, spread latent %s",
            result.first_month, result.first_month + K - 1, (now - block_clock[0]) / K,
            _fmt(row["innovation_ratio"]), _fmt(row.get("consistency_correlation", [])), _fmt(row["spread_latent"]),
        )
        block_clock[0] = now
        for w in health_warnings([row], ratio_max=da.innovation_ratio_warn, consistency_min=da.consistency_warn,
                                 assimilating=assimilating, baseline=ae_check["training_consistency_correlation"]):
            log.warning(w)

    state = run_cycles(setup, state, stop_month=T, block_months=da.checkpoint_months, on_block=on_block,
                       time_values=inputs.time)

    summary = _finalize(partial.path, inputs=inputs, k=k, kind=kind, assimilating=assimilating, da=da,
                        taper_np=taper_np, seconds=time.perf_counter() - started, model_name=model_name,
                        infl=infl, noise_scale=noise_scale, ae_check=ae_check)
    write_text_atomic(json.dumps(summary, indent=2, default=float) + "\n", statistics)
    with atomic_output(output) as tmp:
        os.replace(partial.path, tmp)
    shutil.rmtree(side, ignore_errors=True)
    return summary


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in values) + "]"


def _finalize(
    path: Path, *, inputs: StageInputs, k, kind, assimilating, da, taper_np, seconds, model_name, infl, noise_scale, ae_check
) -> dict:
    """Add the per-month statistics to the finished partial store; return the JSON summary."""
    ds = xr.open_zarr(path, consolidated=False, decode_times=False)
    moments = ds["consistency_moments"].values if k else None
    monthly = monthly_statistics(
        ds["innovation"].values, ds["forecast_spread"].values,
        np.broadcast_to(inputs.obs_error_variance, (len(infl), inputs.layout.size)), inputs.observable_std,
        ds["ensemble_spread"].values, inputs.n_latent, moments, k * inputs.layout.size,
    )
    # mode="a" replaces the group attributes with those of the appended dataset: carry them over.
    stats = xr.Dataset({name: (("time", "experiment"), values) for name, values in monthly.items()}, attrs=dict(ds.attrs))
    stats.to_zarr(path, mode="a", zarr_format=3, consolidated=False)
    if "model_noise_factor" in ds:
        monthly = {**monthly, "model_noise_factor": ds["model_noise_factor"].values}
    decades = summarize(monthly, moments, k * inputs.layout.size)
    warnings = health_warnings(decades, ratio_max=da.innovation_ratio_warn, consistency_min=da.consistency_warn,
                               assimilating=assimilating, baseline=ae_check["training_consistency_correlation"])
    for w in warnings:
        log.warning(w)
    T = monthly["innovation_ratio"].shape[0]
    overall = summarize(monthly, moments, k * inputs.layout.size, decade_months=max(T, 1))[0]
    return {
        "kind": kind,
        "model": model_name,
        "months": T,
        "experiments": [{"inflation": a, "model_noise_scale": b} for a, b in zip(infl, noise_scale)],
        "ensemble_size": da.ensemble_size,
        "method": da.method if assimilating else None,
        "reencode": bool(assimilating and da.reencode),
        "localization": taper_summary(taper_np, inputs.layout.size) if assimilating else None,
        "autoencoder": ae_check,
        "units": "observables in units of their standard deviation over the training record",
        "definitions": {
            "innovation_ratio": "sum over months and observables of d̃² / sum of (forecast spread̃² + R̃); ≈1 when consistent",
            "consistency_correlation": f"correlation of decoded vs analysis observables of the first {k} members",
            "consistency_slope": "regression slope of decoded on analysis observables (≈1 when consistent)",
        },
        "overall": overall,
        "per_decade": decades,
        "warnings": warnings,
        "seconds": seconds,
        "seconds_per_month": seconds / max(T, 1),
        "package_version": __version__,
    }


def assimilate(output, statistics, **kwargs) -> dict:
    """The bridging filter run: ``run_filter_stage(kind="assimilation", ...)``."""
    return run_filter_stage(output, statistics, kind="assimilation", **kwargs)


def free_run(output, statistics, **kwargs) -> dict:
    """The control: the same forecast model and noise without assimilation, same length and members."""
    return run_filter_stage(output, statistics, kind="free_run", **kwargs)
