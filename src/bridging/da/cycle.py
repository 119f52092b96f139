"""The filter cycle: a latent forecast model cycled with the EnKF, on tensors only (no files).

Each month, for every member of every experiment (experiments are a leading batch dimension, for sensitivity
sweeps): a stochastic forecast (the forecast model's step carrying its recurrent state, plus Gaussian model noise,
:mod:`bridging.da.noise`, scaled by the model's state-dependent head when it has one), the analysis against that
month's observations (:func:`bridging.da.analysis.analysis`), and optionally the re-encoding z ← E(D(z)) of each
analysis member. The free run (the control) is the same loop without analysis and re-encoding. Each month also records what the filter statistics need
(:mod:`bridging.da.statistics`): innovations, the forecast spread, and decoded observables of the first members.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import BridgingError
from ..timeaxis import year_month
from .analysis import analysis
from .noise import AdaptiveNoise, NoiseSplit, adaptive_noise_draw
from .statistics import CONSISTENCY_MOMENTS


class FilterDivergedError(BridgingError):
    """The cycle produced non-finite values or a non-positive-definite innovation covariance."""


@dataclass
class CycleSetup:
    """Everything constant over a run. B experiments, N members, n = n_latent + n_observables state entries.

    ``forecaster`` follows the ``bridging.models.forecasters.LatentForecaster`` interface: ``initial_state(batch,
    device, dtype)``, ``step(x, state) -> (x_next, state)`` on (batch, n) states, and ``modulate_noise(noise, x)``
    (the state-dependent noise head; the identity for constant noise).
    """

    forecaster: Any
    observations: torch.Tensor  # (T, B, m)
    obs_var: torch.Tensor  # (B, m)
    noise_factor: torch.Tensor  # (n, n), L Lᵀ = noise_cov
    noise_std_scale: torch.Tensor  # (B,) √model_noise_scale
    inflation: torch.Tensor  # (B,)
    n_latent: int
    method: str = "stochastic"
    taper: torch.Tensor | None = None  # (m, m) observation-space localization taper
    assimilate: bool = True
    reencode: Callable[[torch.Tensor], torch.Tensor] | None = None  # z (K, n_latent) -> E(D(z))
    decoded_observables: Callable[[torch.Tensor], torch.Tensor] | None = None  # z (K, n_latent) -> (K, m)
    consistency_members: int = 0
    observable_std: torch.Tensor | None = None  # (n_obs,) units of the statistics (training std of each row)
    adaptive: AdaptiveNoise | None = None  # online model-noise amplitude (assimilation only)
    noise_split: NoiseSplit | None = None  # the noise covariance split into its observed and unobserved parts
    assimilated: torch.Tensor | None = None  # indices of the observation rows the analysis uses; None: all
    derived: torch.Tensor | None = None  # (k, m_y) the model hierarchy's derived rows on y (bridging.da.sources)

    @property
    def n_obs(self) -> int:
        """Rows of the observation vector: the state's observables y, then the derived rows."""
        return self.observations.shape[-1]

    @property
    def n_observables(self) -> int:
        """m_y: the observables the state holds (its last entries)."""
        return self.n_obs - (0 if self.derived is None else self.derived.shape[0])

    def observe(self, x: torch.Tensor) -> torch.Tensor:
        """H x: the observation vector (…, n_obs) of states (…, n): y, then the derived rows ``derived @ y``."""
        y = x[..., -self.n_observables :]
        return y if self.derived is None else torch.cat([y, y @ self.derived.mT.to(y.dtype)], dim=-1)


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
    if n != setup.n_latent + setup.n_observables:
        raise ValueError(
            f"state has {n} entries, expected n_latent + n_observables = {setup.n_latent} + {setup.n_observables}"
        )
    run = _RunConstants.of(setup, state.members)
    adaptive = setup.adaptive if setup.assimilate else None
    with torch.inference_mode():
        while state.month < stop_month:
            first = state.month
            last = min((first // block_months + 1) * block_months, stop_month)
            block = _Block.allocate(last - first, (B, N, n), setup.n_obs, run, adaptive is not None)
            if adaptive is not None and state.adapt is None:
                state.adapt = torch.tensor(
                    [1.0, float("nan"), float("nan")], dtype=run.dtype, device=run.device
                ).repeat(B, 1)
            for i in range(last - first):
                forecast = _forecast(setup, state, adaptive, run)
                block.finite_forecast[i] = torch.isfinite(forecast).flatten(1).all(1)
                y = setup.observations[first + i]
                observed = setup.observe(forecast)
                block.innovation[i] = y - observed.mean(1)
                if setup.assimilate:
                    block.forecast_spread[i] = observed.std(1) * setup.inflation[:, None]
                    if adaptive is not None:
                        block.noise_factor[i] = state.adapt[:, 0]
                        state.adapt = _adapt(adaptive, state.adapt, block, i, setup.obs_var, run)
                    members = _analysis(setup, forecast, y, state.generator, block, i, first, time_values, run)
                else:
                    block.forecast_spread[i] = observed.std(1)
                    members = forecast
                state.members = members
                block.record_members(i, members)
                if run.k:
                    block.decoded[i], block.moments[i] = _consistency(setup, members, run)
            state.month = last
            block.check_finite(first, time_values, _hint(setup))
            if on_block is not None:
                on_block(block.to_host(first), state)
    return state


# --------------------------------------------------------------------------------------------------------------------
# The steps of one month


def _forecast(
    setup: CycleSetup, state: FilterState, adaptive: AdaptiveNoise | None, run: _RunConstants
) -> torch.Tensor:
    """The forecast ensemble (B, N, n): the model step (carrying the recurrent state) plus model noise."""
    B, N, n = state.members.shape
    origin = state.members.reshape(B * N, n)
    x, state.recurrent = setup.forecaster.step(origin, state.recurrent)
    xi = torch.randn((B * N, n), generator=state.generator, dtype=run.dtype, device=run.device)
    if adaptive is None:
        noise = (xi @ setup.noise_factor.mT).reshape(B, N, n) * setup.noise_std_scale[:, None, None]
    else:
        noise = adaptive_noise_draw(xi.reshape(B, N, n), setup.noise_split, setup.noise_std_scale, state.adapt[:, 0])
    noise = setup.forecaster.modulate_noise(noise.reshape(B * N, n), origin)  # the state-dependent head, if any
    return (x + noise).reshape(B, N, n)


def _adapt(
    adaptive: AdaptiveNoise, adapt: torch.Tensor, block: _Block, i: int, obs_var: torch.Tensor, run: _RunConstants
) -> torch.Tensor:
    """One month's step of the adaptive noise factor, from the month's innovations and spread in training-std units
    (of the assimilated observables only)."""
    pick, scale = run.assimilated, run.adaptive_scale
    return adaptive.update(
        adapt,
        ((block.innovation[i] / scale)[..., pick] ** 2).mean(-1),
        ((block.forecast_spread[i] / scale)[..., pick] ** 2).mean(-1),
        (obs_var / scale**2)[..., pick].mean(-1),
    )


def _assimilate(setup: CycleSetup, forecast, y, generator, run: _RunConstants) -> torch.Tensor:
    """The analysis of the assimilated observables. The hierarchy's derived rows are appended to the state as columns
    (the same member weights move them and y; they are dropped after). When only some rows are assimilated, H selects
    them: they are moved to the end of the state (H = [0 I] again, as :func:`analysis` expects), analysed, and moved
    back."""
    settings = dict(method=setup.method, inflation=setup.inflation, generator=generator)
    n = forecast.shape[-1]
    if setup.derived is not None:
        forecast = torch.cat([forecast, setup.observe(forecast)[..., setup.n_observables :]], dim=-1)
    if run.state_order is None:
        return analysis(forecast, y, setup.obs_var, obs_taper=setup.taper, **settings)[..., :n]
    pick = run.assimilated
    taper = None if setup.taper is None else setup.taper[pick][:, pick]
    analysed = analysis(
        forecast[..., run.state_order], y[..., pick], setup.obs_var[..., pick], obs_taper=taper, **settings
    )
    return analysed[..., run.state_inverse][..., :n]


def _analysis(
    setup: CycleSetup, forecast, y, generator, block: _Block, i: int, first: int, time_values, run: _RunConstants
) -> torch.Tensor:
    """The analysis ensemble (re-encoded when configured); a failed factorisation becomes a FilterDivergedError."""
    dtype = run.dtype
    try:
        members = _assimilate(setup, forecast, y, generator, run)
    except torch.linalg.LinAlgError as err:
        bad_forecast = (~block.finite_forecast[: i + 1]).any(1)
        if bool(bad_forecast.any()):  # the CPU analysis raises on NaN input before the block check
            raise FilterDivergedError(
                f"{_month_label(time_values, first + int(torch.nonzero(bad_forecast)[0]))}: the "
                f"forecast model step (or model noise) produced NaN/Inf{_hint(setup)}"
            ) from None
        raise FilterDivergedError(
            f"{_month_label(time_values, first + i)}: the analysis failed ({err}); the forecast ensemble "
            f"is degenerate or has diverged{_hint(setup)}"
        ) from None
    if setup.reencode is None:
        return members
    B, N, _ = members.shape
    n_latent = setup.n_latent
    z = setup.reencode(members[..., :n_latent].reshape(B * N, n_latent))
    return torch.cat([z.reshape(B, N, n_latent).to(dtype), members[..., n_latent:]], dim=-1)


def _consistency(setup: CycleSetup, members: torch.Tensor, run: _RunConstants):
    """Decoded observables (B, k, m) of the first k members and the summed moments (B, 5) of decoded (a) vs analysis
    (b) observables in units of the training std, in ``CONSISTENCY_MOMENTS`` order."""
    B, k, m, n_latent = members.shape[0], run.k, setup.n_observables, setup.n_latent
    decoded = (
        setup.decoded_observables(members[:, :k, :n_latent].reshape(B * k, n_latent)).reshape(B, k, m).to(run.dtype)
    )
    decoded = setup.observe(decoded)  # the derived rows of the decoded y, as of the analysis y
    a = (decoded.to(torch.float64) / run.moments_scale).flatten(1)
    b = (setup.observe(members[:, :k]).to(torch.float64) / run.moments_scale).flatten(1)
    return decoded, torch.stack([a.sum(1), b.sum(1), (a * a).sum(1), (b * b).sum(1), (a * b).sum(1)], dim=-1)


# --------------------------------------------------------------------------------------------------------------------
# Block buffers and helpers


@dataclass(frozen=True)
class _RunConstants:
    """What stays fixed over one call of :func:`run_cycles`: the state's dtype and device, the number k of members
    whose decoded observables are checked, and the units of the per-month statistics (the observables' training std:
    in the state dtype for the adaptive noise, in float64 for the consistency moments; 1 without ``observable_std``)."""

    dtype: torch.dtype
    device: torch.device
    k: int
    adaptive_scale: Any
    moments_scale: torch.Tensor | None
    assimilated: Any = field(default_factory=lambda: slice(None))  # the assimilated observables (indices, or all)
    state_order: torch.Tensor | None = None  # state columns with the assimilated observables last (None: all are)
    state_inverse: torch.Tensor | None = None

    @classmethod
    def of(cls, setup: CycleSetup, members: torch.Tensor) -> _RunConstants:
        device, dtype, std = members.device, members.dtype, setup.observable_std
        k = min(setup.consistency_members, members.shape[1]) if setup.decoded_observables is not None else 0
        adaptive_scale = std.to(device=device, dtype=dtype) if std is not None else 1.0
        moments_scale = None
        if k:
            ones = torch.ones(setup.n_obs, dtype=torch.float64, device=device)
            moments_scale = ones if std is None else std.to(device=device, dtype=torch.float64)
        if setup.assimilated is None:
            return cls(dtype, device, k, adaptive_scale, moments_scale)
        pick = torch.as_tensor(setup.assimilated, dtype=torch.long, device=device)
        n_state = members.shape[-1] + setup.n_obs - setup.n_observables  # with the derived rows appended
        last = setup.n_latent + pick
        keep = torch.ones(n_state, dtype=torch.bool, device=device)
        keep[last] = False
        order = torch.cat([torch.arange(n_state, device=device)[keep], last])
        return cls(dtype, device, k, adaptive_scale, moments_scale, pick, order, torch.argsort(order))


@dataclass
class _Block:
    """Device buffers of one block of K months; copied to the host once per block."""

    members: torch.Tensor  # (K, B, N, n)
    mean: torch.Tensor  # (K, B, n)
    spread: torch.Tensor  # (K, B, n)
    innovation: torch.Tensor  # (K, B, m)
    forecast_spread: torch.Tensor  # (K, B, m)
    finite_forecast: torch.Tensor  # (K, B) bool
    finite_analysis: torch.Tensor  # (K, B) bool
    decoded: torch.Tensor | None  # (K, B, k, m)
    moments: torch.Tensor | None  # (K, B, 5) float64
    noise_factor: torch.Tensor | None  # (K, B)

    @classmethod
    def allocate(cls, K: int, shape: tuple[int, int, int], m: int, run: _RunConstants, adaptive: bool) -> _Block:
        (B, N, n), k, device = shape, run.k, run.device

        def empty(*shape, dtype=run.dtype):
            return torch.empty(shape, dtype=dtype, device=device)

        return cls(
            members=empty(K, B, N, n),
            mean=empty(K, B, n),
            spread=empty(K, B, n),
            innovation=empty(K, B, m),
            forecast_spread=empty(K, B, m),
            finite_forecast=torch.ones((K, B), dtype=torch.bool, device=device),
            finite_analysis=torch.ones((K, B), dtype=torch.bool, device=device),
            decoded=empty(K, B, k, m) if k else None,
            moments=empty(K, B, len(CONSISTENCY_MOMENTS), dtype=torch.float64) if k else None,
            noise_factor=empty(K, B) if adaptive else None,
        )

    def record_members(self, i: int, members: torch.Tensor) -> None:
        self.finite_analysis[i] = torch.isfinite(members).flatten(1).all(1)
        self.members[i] = members
        self.mean[i] = members.mean(1)
        self.spread[i] = members.std(1)

    def check_finite(self, first: int, time_values, hint: str) -> None:
        """One host synchronisation per block: raise naming the first non-finite month, if any."""
        bad_f, bad_a = ~self.finite_forecast.cpu(), ~self.finite_analysis.cpu()
        if not (bool(bad_f.any()) or bool(bad_a.any())):
            return
        first_bad = int(torch.nonzero((bad_f | bad_a).any(1))[0])
        exps = torch.nonzero(bad_f[first_bad] | bad_a[first_bad]).flatten().tolist()
        what = "forecast model step (or model noise)" if bool(bad_f[first_bad].any()) else "analysis"
        raise FilterDivergedError(
            f"{_month_label(time_values, first + first_bad)}: the {what} produced NaN/Inf in experiment(s) "
            f"{exps[:10]}; the forecast model is unstable in the cycle or the noise/inflation is too large{hint}"
        )

    def to_host(self, first_month: int) -> BlockResult:
        return BlockResult(
            first_month=first_month,
            members=_to_host(self.members),
            mean=_to_host(self.mean),
            spread=_to_host(self.spread),
            innovation=_to_host(self.innovation),
            forecast_spread=_to_host(self.forecast_spread),
            decoded=_to_host(self.decoded) if self.decoded is not None else None,
            consistency_moments=_to_host(self.moments, np.float64) if self.moments is not None else None,
            noise_factor=_to_host(self.noise_factor) if self.noise_factor is not None else None,
        )


def _to_host(t: torch.Tensor, dtype=np.float32) -> np.ndarray:
    return t.detach().to("cpu").numpy().astype(dtype, copy=False)


def _month_label(time_values, month: int) -> str:
    if time_values is None:
        return f"month index {month}"
    years, months = year_month(np.asarray(time_values)[month : month + 1])
    return f"month index {month} ({int(years[0]):04d}-{int(months[0]):02d})"


def _hint(setup: CycleSetup) -> str:
    if setup.assimilate and setup.taper is not None:
        return (
            " (localization is on: its increments, though in the ensemble span, weight the members differently "
            "from the unlocalized filter; try da.localization.enabled: false)"
        )
    return ""
