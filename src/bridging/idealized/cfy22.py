"""CFY22: the six-variable multiscale conceptual ENSO model of Chen, Fang & Yu (2022, npj Clim. Atmos. Sci. 5, 19).

Parameter choice: the **ACI parameter set** (Fang & Chen 2024, J. Climate; as coded in marandmath/ACI_code
``ENSO_model_cond_ACI_u_unobs.m``), scaling factor f = 0.65, with α_1 = α_2·f/2 (the code applies f twice; the
spec's independent check found no difference). The original npj-2022 values differ slightly
(docs/idealized_models.md); the ACI set is the best documented, so it is the default.

Variables (all anomalies, nondimensional): u (central-Pacific zonal current, ×1.5 m/s), h_W (western-Pacific
thermocline depth, ×150 m), T_C (central-Pacific SST ≈ Niño 4, ×7.5 °C), T_E (eastern-Pacific SST ≈ Niño 3,
×7.5 °C), τ (wind-burst amplitude, ×5 m/s), I (decadal Walker variable, stationary ~ Uniform[0, 4]).
Time unit 2 months; dt = 0.005 (100 steps per month). Euler–Maruyama for u, h_W, T_C, T_E and τ (τ's noise does
not depend on τ, so Milstein adds nothing), Milstein for I, I clipped to [0, 4].

Calendar: twelve equal months of 0.5 time units; model time zero is 1 January (t = 0 in the seasonal terms).
Monthly values are the means of the 100 steps of each month.

Niño 3.4 is not a model variable; ``nino34`` is the box-overlap approximation 0.4·T_C + 0.6·T_E (Niño 3.4,
190–240°E, shares 20° of longitude with Niño 4 and 30° with Niño 3).

Randomness: per-member xoshiro256** streams (:mod:`bridging.idealized.rng`), six normals per step in the order
u, h_W, T_C, T_E, τ, I; reproducible for a given seed, member k independent of the member count.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ..errors import ConfigError
from ..settings import CFY22Params
from .rng import MemberStreams, next_normal

CURRENT_SCALE = 1.5  # m/s
DEPTH_SCALE = 150.0  # m
SST_SCALE = 7.5  # °C
WIND_SCALE = 5.0  # m/s
NINO34_WEIGHTS = (0.4, 0.6)  # (T_C, T_E)
NOISE_PER_STEP = 6

_Coef = namedtuple(
    "_Coef",
    [
        "dt", "r", "delta_u", "delta_h", "r_c", "zeta_c", "zeta_e", "r_e", "gamma", "c_u", "advective",
        "c1_scale", "c1_quadratic", "c1_shift", "c1_constant", "c1_seasonal",
        "c2_scale", "c2_seasonal", "c2_semiannual",
        "beta_u", "beta_h", "beta_c", "beta_e", "beta_scale",
        "burst_damping", "burst_noise", "burst_tanh", "burst_seasonal",
        "decadal_damping", "decadal_mean", "decadal_max",
        "sigma_u", "sigma_h", "sigma_c", "sigma_e",
    ],
)  # fmt: skip


def _params(params: CFY22Params | Mapping | None) -> CFY22Params:
    if params is None:
        return CFY22Params()
    if isinstance(params, CFY22Params):
        return params
    return CFY22Params.model_validate(dict(params))


def _coefficients(p: CFY22Params) -> _Coef:
    """The ACI parameter table: f and √f applied where the ACI code applies them."""
    f = p.factor
    sf = np.sqrt(f)
    alpha2 = p.alpha2 * f
    alpha1 = alpha2 / 2.0 * f
    gamma = p.gamma * f
    return _Coef(
        dt=p.dt,
        r=p.damping * f,
        delta_u=alpha1 * p.b0 * p.mu,
        delta_h=alpha2 * p.b0 * p.mu,
        r_c=gamma * p.b0 * p.mu / 2.0,
        zeta_c=gamma * p.b0 * p.mu / 2.0,
        zeta_e=gamma * p.b0 * p.mu / 2.0,
        r_e=3.0 * gamma * p.b0 * p.mu / 2.0,
        gamma=gamma,
        c_u=p.c_u * f,
        advective=p.advective * f * p.advective_factor,
        c1_scale=f,
        c1_quadratic=p.c1_quadratic,
        c1_shift=p.c1_shift,
        c1_constant=p.c1_constant,
        c1_seasonal=p.c1_seasonal,
        c2_scale=p.c2_constant * f,
        c2_seasonal=p.c2_seasonal,
        c2_semiannual=p.c2_semiannual,
        beta_u=p.beta[0],
        beta_h=p.beta[1],
        beta_c=p.beta[2],
        beta_e=p.beta[3],
        beta_scale=p.beta_scale * sf,
        burst_damping=p.burst_damping,
        burst_noise=p.burst_noise,
        burst_tanh=p.burst_tanh,
        burst_seasonal=p.burst_seasonal,
        decadal_damping=p.decadal_damping,
        decadal_mean=p.decadal_mean,
        decadal_max=p.decadal_max,
        sigma_u=p.sigma_u * sf,
        sigma_h=p.sigma_h * sf,
        sigma_c=p.sigma_c * sf,
        sigma_e=p.sigma_e * sf,
    )


def steps_per_month(dt: float) -> int:
    steps = 0.5 / dt
    if abs(steps - round(steps)) > 1e-9:
        raise ConfigError(f"idealized.cfy22.dt = {dt}: must divide one month (0.5 time units), e.g. 0.005")
    return int(round(steps))


@njit(cache=True, parallel=True)
def _integrate_months(state, rng_state, rng_spare, rng_has_spare, step0, n_months, month_steps, co, means):
    """Advance every member's (u, h_W, T_C, T_E, τ, I) = state[m] by n_months; monthly means into means[m, month]."""
    n_members = state.shape[0]
    two_pi = 2.0 * np.pi
    for m in prange(n_members):
        u, h, tc, te, tau, dec = state[m, 0], state[m, 1], state[m, 2], state[m, 3], state[m, 4], state[m, 5]
        sqrt_dt = np.sqrt(co.dt)
        step = step0
        for month in range(n_months):
            acc = np.zeros(6)
            for _ in range(month_steps):
                t = step * co.dt
                w_u = next_normal(rng_state, rng_spare, rng_has_spare, m) * sqrt_dt
                w_h = next_normal(rng_state, rng_spare, rng_has_spare, m) * sqrt_dt
                w_c = next_normal(rng_state, rng_spare, rng_has_spare, m) * sqrt_dt
                w_e = next_normal(rng_state, rng_spare, rng_has_spare, m) * sqrt_dt
                w_tau = next_normal(rng_state, rng_spare, rng_has_spare, m) * sqrt_dt
                w_dec = next_normal(rng_state, rng_spare, rng_has_spare, m) * sqrt_dt
                beta = (2.0 - dec / 5.0) * co.beta_scale
                c1 = (
                    co.c1_scale
                    * (co.c1_quadratic * (tc + co.c1_shift) ** 2 + co.c1_constant)
                    * (1.0 + co.c1_seasonal * np.sin(two_pi * t / 6.0 - np.pi / 6.0))
                )
                c2 = co.c2_scale * (
                    1.0
                    + co.c2_seasonal * np.sin(two_pi * t / 6.0 + two_pi / 6.0)
                    + co.c2_semiannual * np.sin(2.0 * two_pi * t / 6.0 + two_pi / 6.0)
                )
                sigma_tau = (
                    co.burst_noise
                    * (np.tanh(co.burst_tanh * tc) + 1.0)
                    * (1.0 + co.burst_seasonal * np.cos(two_pi * t / 6.0 + two_pi / 6.0))
                )
                mean_t = 0.5 * (tc + te)
                du = -co.r * u - co.delta_u * mean_t + co.beta_u * beta * tau
                dh = -co.r * h - co.delta_h * mean_t + co.beta_h * beta * tau
                dtc = (
                    (co.r_c - c1) * tc
                    + co.zeta_c * te
                    + co.gamma * h
                    + co.advective * dec * u
                    + co.c_u
                    + co.beta_c * beta * tau
                )
                dte = (co.r_e - c2) * te - co.zeta_e * tc + co.gamma * h + co.beta_e * beta * tau
                dtau = -co.burst_damping * tau
                var_dec = co.decadal_damping * dec * (co.decadal_max - dec)
                sigma_dec = np.sqrt(max(var_dec, 0.0))
                # Milstein: ½ σ σ' (ΔW² − dt) with σσ' = ½ d(σ²)/dI = ½ λ (I_max − 2I)
                milstein = 0.25 * co.decadal_damping * (co.decadal_max - 2.0 * dec) * (w_dec * w_dec - co.dt)
                u = u + du * co.dt + co.sigma_u * w_u
                h = h + dh * co.dt + co.sigma_h * w_h
                tc = tc + dtc * co.dt + co.sigma_c * w_c
                te = te + dte * co.dt + co.sigma_e * w_e
                tau = tau + dtau * co.dt + sigma_tau * w_tau
                dec = dec - co.decadal_damping * (dec - co.decadal_mean) * co.dt + sigma_dec * w_dec + milstein
                dec = min(max(dec, 0.0), co.decadal_max)
                step += 1
                acc[0] += u
                acc[1] += h
                acc[2] += tc
                acc[3] += te
                acc[4] += tau
                acc[5] += dec
            for v in range(6):
                means[m, month, v] = acc[v] / month_steps
        state[m, 0] = u
        state[m, 1] = h
        state[m, 2] = tc
        state[m, 3] = te
        state[m, 4] = tau
        state[m, 5] = dec


@dataclass
class CFY22State:
    """(n, 6) nondimensional (u, h_W, T_C, T_E, τ, I), the member streams and the step counter."""

    values: np.ndarray
    streams: MemberStreams
    step: int = 0

    @property
    def n_members(self) -> int:
        return self.values.shape[0]

    def subset(self, members: slice) -> CFY22State:
        return CFY22State(self.values[members], self.streams.subset(members), self.step)

    def copy(self) -> CFY22State:
        return CFY22State(self.values.copy(), self.streams.copy(), self.step)


CFY22_VARIABLES: dict[str, tuple[tuple[str, ...], dict]] = {
    "nino3": ((), {"units": "degC", "long_name": "Niño 3 SST anomaly, 7.5 °C·T_E"}),
    "nino34": (
        (),
        {"units": "degC", "long_name": "Niño 3.4 SST anomaly, box-overlap approximation 7.5 °C·(0.4 T_C + 0.6 T_E)"},
    ),
    "nino4": ((), {"units": "degC", "long_name": "Niño 4 SST anomaly, 7.5 °C·T_C"}),
    "wp_thermocline_depth_anomaly": (
        (),
        {"units": "m", "positive": "down", "long_name": "western-Pacific thermocline depth anomaly, 150 m·h_W"},
    ),
    "cp_zonal_current": ((), {"units": "m s-1", "long_name": "central-Pacific zonal current anomaly, 1.5 m/s·u"}),
    "wind_burst": ((), {"units": "m s-1", "long_name": "intraseasonal wind-burst amplitude, 5 m/s·τ"}),
    "decadal": ((), {"units": "1", "long_name": "decadal Walker-circulation variable I (stationary ~ Uniform[0, 4])"}),
}


class CFY22Model:
    name = "cfy22"
    variables = CFY22_VARIABLES

    def __init__(self, params: CFY22Params | Mapping | None = None):
        self.params = _params(params)
        self.month_steps = steps_per_month(self.params.dt)
        self.coefficients = _coefficients(self.params)

    @property
    def steps_per_year(self) -> int:
        return 12 * self.month_steps

    def coords(self) -> dict:
        return {}

    def initial_state(self, n_members: int, seed: int, *, first_member: int = 0) -> CFY22State:
        values = np.tile(np.asarray(self.params.initial, dtype=np.float64), (n_members, 1))
        return CFY22State(values, MemberStreams.from_seed(seed, n_members, first_member=first_member))

    def advance_nondimensional(self, state: CFY22State, n_years: int) -> np.ndarray:
        """Advance in place by whole years; monthly means (n, 12·years, 6) of (u, h_W, T_C, T_E, τ, I)."""
        n_months = 12 * int(n_years)
        means = np.empty((state.n_members, n_months, 6))
        s = state.streams
        _integrate_months(
            state.values,
            s.state,
            s.spare,
            s.has_spare,
            np.int64(state.step),
            n_months,
            self.month_steps,
            self.coefficients,
            means,
        )
        state.step += n_months * self.month_steps
        return means

    def physical(self, means: np.ndarray) -> dict[str, np.ndarray]:
        u, h, tc, te, tau, dec = (means[..., k] for k in range(6))
        out = {
            "nino3": SST_SCALE * te,
            "nino34": SST_SCALE * (NINO34_WEIGHTS[0] * tc + NINO34_WEIGHTS[1] * te),
            "nino4": SST_SCALE * tc,
            "wp_thermocline_depth_anomaly": DEPTH_SCALE * h,
            "cp_zonal_current": CURRENT_SCALE * u,
            "wind_burst": WIND_SCALE * tau,
            "decadal": dec,
        }
        return {name: value.astype(np.float32) for name, value in out.items()}

    def advance_years(self, state: CFY22State, n_years: int) -> dict[str, np.ndarray]:
        return self.physical(self.advance_nondimensional(state, n_years))


def reference_integrate(model: CFY22Model, state: CFY22State, n_steps: int) -> np.ndarray:
    """A plain per-step NumPy transcription of the equations (docs/idealized_models.md) (members vectorised), for checking the compiled
    loop: draws the same noise, returns the state after ``n_steps`` (n, 6) and advances ``state``."""
    p = model.params
    f = p.factor
    sf = np.sqrt(f)
    alpha2 = 0.125 * f
    alpha1 = alpha2 / 2 * f
    gamma = 0.75 * f
    r, d_u, d_h = 0.25 * f, alpha1 * 2.5 * 0.5, alpha2 * 2.5 * 0.5
    r_c = zeta_c = zeta_e = gamma * 2.5 * 0.5 / 2
    r_e = 3 * gamma * 2.5 * 0.5 / 2
    n = state.n_members
    noise = np.stack([state.streams.standard_normal(m, n_steps * NOISE_PER_STEP) for m in range(n)]).reshape(
        n, n_steps, 6
    )
    u, h, tc, te, tau, dec = (state.values[:, k].copy() for k in range(6))
    dt = p.dt
    for k in range(n_steps):
        t = (state.step + k) * dt
        dw = noise[:, k, :] * np.sqrt(dt)
        beta = (2 - dec / 5) * 0.15 * sf
        c1 = f * (25 * (tc + 0.1) ** 2 + 0.9) * (1 + 0.3 * np.sin(2 * np.pi * t / 6 - np.pi / 6))
        c2 = (
            1.4
            * f
            * (1 + 0.3 * np.sin(2 * np.pi * t / 6 + 2 * np.pi / 6) + 0.25 * np.sin(4 * np.pi * t / 6 + 2 * np.pi / 6))
        )
        sigma_tau = 0.9 * (np.tanh(7.5 * tc) + 1) * (1 + 0.3 * np.cos(2 * np.pi * t / 6 + 2 * np.pi / 6))
        sigma_dec = np.sqrt(np.maximum(p.decadal_damping * dec * (4 - dec), 0))
        new = (
            u + (-r * u - d_u * (tc + te) / 2 - 0.2 * beta * tau) * dt + 0.04 * sf * dw[:, 0],
            h + (-r * h - d_h * (tc + te) / 2 - 0.4 * beta * tau) * dt + 0.02 * sf * dw[:, 1],
            tc + ((r_c - c1) * tc + zeta_c * te + gamma * h + dec * f / 5 * u + 0.03 * f + 0.8 * beta * tau) * dt + 0.04 * sf * dw[:, 2],
            te + ((r_e - c2) * te - zeta_e * tc + gamma * h + 1.0 * beta * tau) * dt + p.sigma_e * sf * dw[:, 3],
            tau - 2 * tau * dt + sigma_tau * dw[:, 4],
            np.clip(
                dec + p.decadal_damping * (2 - dec) * dt + sigma_dec * dw[:, 5]
                + 0.5 * p.decadal_damping * (2 - dec) * (dw[:, 5] ** 2 - dt),
                0, 4,
            ),
        )  # fmt: skip
        u, h, tc, te, tau, dec = new
    state.values[:] = np.stack([u, h, tc, te, tau, dec], axis=1)
    state.step += n_steps
    return state.values.copy()
