"""CF23: the multiscale intermediate coupled stochastic ENSO model of Chen & Fang (2023, JAMES 15, e2022MS003469).

Implementation of CF23 as described in docs/idealized_models.md (the DCM Fortran port, re-derived), nondimensional
units: x in 15 000 km, t in 34 days. State per member: ocean Kelvin and first-Rossby long-wave amplitudes K_O,
R_O and SST amplitude T on the 56 equatorial ocean nodes, the wind-burst amplitude a_p and the decadal Walker
variable I.

* Ocean: first-order upwind long waves, K_O eastward at c1, R_O westward at c1/3, reflecting boundaries
  K_O(west) = r_W R_O(west), R_O(east) = r_E K_O(east), forced by the wind stress τ_x = γ(K_A − R_A) + γ a_p s_p.
* Atmosphere: instantaneous, periodic around the equator (128 points, the first 56 coincide with the ocean nodes),
  forced by latent heating α_q T over the Pacific; solved by the discrete Green's function
  K_A[i] = F Σ_j (1/2 − s/127) T_j with s = (j − i) mod 128, R_A = −2 K_A. The compiled loop evaluates this sum
  in O(N) with prefix sums (an exact rearrangement, checked against the matrix in the tests).
* SST: thermocline feedback c1 η (K_O + R_O), zonal-advective feedback c1 I η2 (K_O − R_O), state- and
  season-dependent damping b(x, t, T4), constant forcing c1 χ_O c2 η2.
* Wind bursts: da_p = −d_p a_p dt + σ_p(T4, t, I) dW, 10 Euler–Maruyama sub-steps per step.
* Decadal variable: dI = −λ(I − m) dt + σ_I(I) dW with the tabulated σ_I that makes I ~ Uniform[0, 1].

One forward-Euler step is 0.5 day (730 steps per 365-day year); model time zero is 1 January, so the seasonal
phase is φ = 34 t/365 + phase. Outputs are monthly means over the calendar months of a 365-day year.

Randomness: every member owns an xoshiro256** stream (:mod:`bridging.idealized.rng`) seeded from
(seed, member index). A run is bit-for-bit reproducible for a given seed, and member k's trajectory is the same
whatever the number of members, the member batching, the time chunking or the number of threads.
"""

from __future__ import annotations

import math
from collections import namedtuple
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ..errors import ConfigError
from ..settings import CF23Params
from .rng import MemberStreams, next_normal

# --- grids and scales (docs/idealized_models.md) ---------------------------------------------------------------------------------
N_OCEAN = 56
N_ATMOS = 128
EQUATOR_LENGTH = 8.0 / 3.0  # 40 000 km in units of 15 000 km
DX = EQUATOR_LENGTH / N_ATMOS
OCEAN_LENGTH = N_OCEAN * DX  # 7/6: 17 500 km
X_UNIT_KM = 15000.0
TIME_UNIT_DAYS = 34.0
NODE_LON = 126.0 + 2.8125 * np.arange(N_OCEAN)  # °E, DCM's ocean longitudes
NODE_X = np.arange(N_OCEAN) * DX  # coordinate of η, η2
NODE_X_BURST = np.arange(1, N_OCEAN + 1) * DX  # coordinate of s_p (the DCM fit is exact with i·dx)

PHI0_EQ = np.pi**-0.25  # φ0(0)
PHI2_EQ = -((4.0 * np.pi) ** -0.25)  # φ2(0)
SST_SCALE = 1.5  # °C
DEPTH_SCALE = 20.8  # m
CURRENT_SCALE = 0.5  # m/s
WIND_SCALE = 5.0  # m/s
BETA = 2.28e-11  # 1/(m s)
OCEAN_MERIDIONAL_KM = math.sqrt(2.5 / BETA) / 1e3  # ≈ 331 km: Y = y / this
KM_PER_DEG_LAT = 111.195

# Niño boxes as 1-based node ranges (docs/idealized_models.md), stored 0-based half-open.
NINO3_NODES = slice(30, 53)
NINO4_NODES = slice(13, 31)
NINO34_NODES = slice(24, 43)

MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])

# ζ-damping structural constants (not tunable: they define the fitted DCM damping)
_DAMP_ETA2 = 1.0 / 3.0
_SEASON_ANNUAL = 0.5
_SEASON_ETA2 = 0.1
_SEASON_ETA = 0.15 / 2.4

_Coef = namedtuple(
    "_Coef",
    [
        "dt",  # time step (nondim)
        "kelvin_upwind",  # c1/dx
        "rossby_upwind",  # c1/(3dx)
        "kelvin_wind",  # c1 χ_O / 2
        "rossby_wind",  # c1 χ_O / 3
        "gamma",
        "green",  # F = χ_A α_q dx / (2(1 − Q̄))
        "r_west",
        "r_east",
        "thermocline",  # c1 × thermocline_feedback_factor
        "advective",  # c1 × zonal_advective_factor
        "damping",  # c1 ζ α_q
        "damping_base",
        "asymmetry_shift",
        "forcing",  # c1 χ_O c2
        "burst_damping",
        "burst_noise",
        "burst_state_dependent",  # 1.0 or 0.0
        "burst_seasonal",
        "burst_decadal",
        "decadal_damping",
        "decadal_mean",
        "phase_per_step",  # dt_days / 365: φ advances by this each step
        "phase",
        "substeps",  # int
    ],
)


def _params(params: CF23Params | Mapping | None) -> CF23Params:
    if params is None:
        return CF23Params()
    if isinstance(params, CF23Params):
        return params
    return CF23Params.model_validate(dict(params))


def steps_per_month(dt_days: float) -> np.ndarray:
    """Steps in each calendar month; the step must divide every month length (monthly means need whole steps)."""
    steps = MONTH_DAYS / dt_days
    if not np.allclose(steps, np.round(steps), rtol=0, atol=1e-9):
        raise ConfigError(
            f"idealized.cf23.dt_days = {dt_days}: must divide every calendar month length (e.g. 0.5, 0.25)"
        )
    return np.round(steps).astype(np.int64)


def profiles() -> dict[str, np.ndarray]:
    """η (thermocline feedback), η2 (zonal-advective feedback) and s_p (wind-burst shape) on the ocean nodes."""
    return {
        "eta": 1.3 + 1.1 * np.tanh(7.5 * (NODE_X - OCEAN_LENGTH / 3.0)),
        "eta2": 3.6 * np.exp(-10.0 * (NODE_X - 0.5) ** 2),
        "burst_shape": np.exp(-45.0 * (NODE_X_BURST - OCEAN_LENGTH / 4.0) ** 2),
    }


def decadal_noise_table(decadal_damping: float) -> np.ndarray:
    """σ_I tabulated on x = k/99, k = 0…99: σ_I² = 0.9801 λ x(1 − x) (the DCM table built from a uniform PDF)."""
    x = np.arange(100) / 99.0
    return np.sqrt(0.9801 * decadal_damping * x * (1.0 - x))


def green_coefficient(p: CF23Params) -> float:
    return p.chi_a * p.alpha_q * DX / (2.0 * (1.0 - p.q_bar))


def green_matrix(p: CF23Params | Mapping | None = None) -> np.ndarray:
    """(56, 56) matrix G with K_A(ocean node i) = Σ_j G[i, j] T_j: G = F (1/2 − ((j − i) mod 128)/127)."""
    p = _params(p)
    i = np.arange(N_OCEAN)[:, None]
    j = np.arange(N_OCEAN)[None, :]
    s = (j - i) % N_ATMOS
    return green_coefficient(p) * (0.5 - s / (N_ATMOS - 1.0))


def _coefficients(p: CF23Params) -> _Coef:
    c1 = p.c1
    return _Coef(
        dt=p.dt_days / TIME_UNIT_DAYS,
        kelvin_upwind=c1 / DX,
        rossby_upwind=c1 / (3.0 * DX),
        kelvin_wind=c1 * p.chi_o / 2.0,
        rossby_wind=c1 * p.chi_o / 3.0,
        gamma=p.gamma,
        green=green_coefficient(p),
        r_west=p.r_west,
        r_east=p.r_east,
        thermocline=c1 * p.thermocline_feedback_factor,
        advective=c1 * p.zonal_advective_factor,
        damping=c1 * p.zeta * p.alpha_q,
        damping_base=p.damping_base,
        asymmetry_shift=p.damping_asymmetry_shift,
        forcing=c1 * p.chi_o * p.c2,
        burst_damping=p.burst_damping,
        burst_noise=p.burst_noise,
        burst_state_dependent=1.0 if p.burst_state_dependent else 0.0,
        burst_seasonal=p.burst_seasonal_amplitude,
        burst_decadal=p.burst_decadal_coupling,
        decadal_damping=p.decadal_damping,
        decadal_mean=p.decadal_mean,
        phase_per_step=p.dt_days / 365.0,
        phase=p.phase,
        substeps=int(p.burst_substeps),
    )


# --- the compiled step loop -----------------------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def _integrate_months(
    K, R, T, burst, decadal, rng_state, rng_spare, rng_has_spare, step0, month_steps, eta, eta2, burst_shape, sigma_table, co,
    mean_K, mean_R, mean_T, mean_burst, mean_decadal,
):  # fmt: skip
    """Advance every member through the months of ``month_steps``; write monthly means of the state.

    Members are independent (own state, own random stream), so the member loop runs in parallel without changing
    any result.
    """
    n_members, n = K.shape
    two_pi = 2.0 * np.pi
    inv_atmos = 1.0 / (N_ATMOS - 1.0)
    n4_first, n4_last = 13, 31
    for m in prange(n_members):
        k = K[m].copy()
        r = R[m].copy()
        t = T[m].copy()
        a = burst[m]
        dec = decadal[m]
        dk = np.empty(n)
        dr = np.empty(n)
        dtemp = np.empty(n)
        sum_k = np.empty(n)
        sum_r = np.empty(n)
        sum_t = np.empty(n)
        step = step0
        sub_h = co.dt / co.substeps
        sub_sqrt_h = np.sqrt(sub_h)
        sqrt_dt = np.sqrt(co.dt)
        for month in range(month_steps.size):
            sum_k[:] = 0.0
            sum_r[:] = 0.0
            sum_t[:] = 0.0
            sum_a = 0.0
            sum_dec = 0.0
            for _ in range(month_steps[month]):
                phi = step * co.phase_per_step + co.phase
                # Niño 4 mean of the nondimensional T drives the damping and the wind-burst amplitude.
                t4 = 0.0
                for i in range(n4_first, n4_last):
                    t4 += t[i]
                t4 /= n4_last - n4_first
                # Atmosphere: K_A = G T with G[i, j] = F(1/2 − s/127), s = (j − i) mod 128, via prefix sums.
                total = 0.0
                moment = 0.0
                for j in range(n):
                    total += t[j]
                    moment += j * t[j]
                season_annual = np.sin(two_pi * phi)
                season_lag = np.sin(two_pi * (phi - 1.0 / 12.0))
                season_semi = np.sin(2.0 * two_pi * (phi - 1.0 / 6.0))
                asym = abs(t4 + co.asymmetry_shift)
                cum = 0.0
                for i in range(n):
                    k_atm = co.green * (0.5 * total - (moment - i * total + N_ATMOS * cum) * inv_atmos)
                    cum += t[i]
                    tau = co.gamma * (3.0 * k_atm + a * burst_shape[i])  # K_A − R_A = 3 K_A
                    k_in = co.r_west * r[0] if i == 0 else k[i - 1]
                    r_in = co.r_east * k[n - 1] if i == n - 1 else r[i + 1]
                    dk[i] = co.kelvin_upwind * (k_in - k[i]) + co.kelvin_wind * tau
                    dr[i] = co.rossby_upwind * (r_in - r[i]) - co.rossby_wind * tau
                    q = 0.2 + asym * eta2[i]
                    damp = (
                        co.damping
                        * (co.damping_base - _DAMP_ETA2 * eta2[i] + 0.2 * q * q)
                        * (
                            1.0
                            + _SEASON_ANNUAL * season_annual
                            + _SEASON_ETA2 * eta2[i] * season_lag
                            - _SEASON_ETA * eta[i] * season_semi
                        )
                    )
                    thermo = co.thermocline * eta[i]
                    adv = co.advective * dec * eta2[i]
                    dtemp[i] = (thermo + adv) * k[i] + (thermo - adv) * r[i] - damp * t[i] + co.forcing * eta2[i]
                for i in range(n):
                    k[i] += co.dt * dk[i]
                    r[i] += co.dt * dr[i]
                    t[i] += co.dt * dtemp[i]
                # Wind bursts (multiplicative noise, sub-stepped) and the decadal variable, with the pre-step T4, I, φ.
                amp = np.tanh(t4) + 1.0 if co.burst_state_dependent > 0.5 else 1.0
                sigma_p = (
                    co.burst_noise
                    * amp
                    * (1.0 + co.burst_seasonal * np.cos(two_pi * (phi - 1.0 / 12.0)))
                    * (1.0 - co.burst_decadal * dec)
                )
                for _s in range(co.substeps):
                    a += -co.burst_damping * a * sub_h + sigma_p * sub_sqrt_h * next_normal(
                        rng_state, rng_spare, rng_has_spare, m
                    )
                idx = int(np.floor(100.0 * dec + 0.5))
                idx = min(max(idx, 0), sigma_table.size - 1)
                dec += -co.decadal_damping * (dec - co.decadal_mean) * co.dt + sigma_table[idx] * sqrt_dt * next_normal(
                    rng_state, rng_spare, rng_has_spare, m
                )
                step += 1
                for i in range(n):
                    sum_k[i] += k[i]
                    sum_r[i] += r[i]
                    sum_t[i] += t[i]
                sum_a += a
                sum_dec += dec
            inv = 1.0 / month_steps[month]
            for i in range(n):
                mean_K[m, month, i] = sum_k[i] * inv
                mean_R[m, month, i] = sum_r[i] * inv
                mean_T[m, month, i] = sum_t[i] * inv
            mean_burst[m, month] = sum_a * inv
            mean_decadal[m, month] = sum_dec * inv
        K[m] = k
        R[m] = r
        T[m] = t
        burst[m] = a
        decadal[m] = dec


# --- the model ------------------------------------------------------------------------------------------------------
@dataclass
class CF23State:
    """Nondimensional state of n members and the step counter (steps since model time zero, 1 January)."""

    K: np.ndarray  # (n, 56) ocean Kelvin amplitude
    R: np.ndarray  # (n, 56) ocean Rossby amplitude
    T: np.ndarray  # (n, 56) SST amplitude
    burst: np.ndarray  # (n,) wind-burst amplitude a_p
    decadal: np.ndarray  # (n,) decadal variable I
    streams: MemberStreams
    step: int = 0

    @property
    def n_members(self) -> int:
        return self.K.shape[0]

    def subset(self, members: slice) -> CF23State:
        """Views of some members (advancing the subset advances this state; the step counter is shared by copy)."""
        return CF23State(
            self.K[members], self.R[members], self.T[members], self.burst[members], self.decadal[members],
            self.streams.subset(members), self.step,
        )  # fmt: skip

    def copy(self) -> CF23State:
        return CF23State(
            self.K.copy(),
            self.R.copy(),
            self.T.copy(),
            self.burst.copy(),
            self.decadal.copy(),
            self.streams.copy(),
            self.step,
        )


# Output variables: name → (dims after (member, time), attrs).
CF23_VARIABLES: dict[str, tuple[tuple[str, ...], dict]] = {
    "sst_anomaly": (("node",), {"units": "degC", "long_name": "equatorial SST anomaly, 1.5 °C·φ0(0)·T"}),
    "thermocline_depth_anomaly": (
        ("node",),
        {
            "units": "m",
            "positive": "down",
            "long_name": "equatorial thermocline depth anomaly, 20.8 m·[(K+R)φ0(0) + Rφ2(0)/√2]",
        },
    ),
    "zonal_current": (
        ("node",),
        {"units": "m s-1", "long_name": "equatorial zonal current anomaly, 0.5 m/s·[(K−R)φ0(0) + Rφ2(0)/√2]"},
    ),
    "zonal_wind": (
        ("node",),
        {
            "units": "m s-1",
            "long_name": "equatorial zonal wind anomaly forced by SST (5 m/s·[(K_A−R_A)φ0(0) + R_Aφ2(0)/√2]); bursts excluded",
        },
    ),
    "wind_burst": (
        (),
        {"units": "1", "long_name": "intraseasonal wind-burst amplitude a_p (wind = 5 m/s·φ0(0)·s_p(x)·a_p)"},
    ),
    "decadal": ((), {"units": "1", "long_name": "decadal Walker-circulation variable I (stationary ~ Uniform[0, 1])"}),
    "nino3": ((), {"units": "degC", "long_name": "Niño 3 SST anomaly (raw model anomaly, mean over nodes 31–53)"}),
    "nino34": ((), {"units": "degC", "long_name": "Niño 3.4 SST anomaly (raw model anomaly, mean over nodes 25–43)"}),
    "nino4": ((), {"units": "degC", "long_name": "Niño 4 SST anomaly (raw model anomaly, mean over nodes 14–31)"}),
}


class CF23Model:
    """CF23 with a given parameter set; ``advance_years`` runs many members at once through the compiled loop."""

    name = "cf23"
    variables = CF23_VARIABLES

    def __init__(self, params: CF23Params | Mapping | None = None):
        self.params = _params(params)
        self.month_steps = steps_per_month(self.params.dt_days)
        prof = profiles()
        self.eta = prof["eta"]
        self.eta2 = prof["eta2"]
        self.burst_shape = prof["burst_shape"]
        self.sigma_table = decadal_noise_table(self.params.decadal_damping)
        self.green = green_matrix(self.params)
        self.coefficients = _coefficients(self.params)

    @property
    def steps_per_year(self) -> int:
        return int(self.month_steps.sum())

    def coords(self) -> dict:
        return {"node": np.arange(1, N_OCEAN + 1), "node_lon": ("node", NODE_LON)}

    def initial_state(self, n_members: int, seed: int, *, first_member: int = 0) -> CF23State:
        """The DCM initial condition (K_O = 2 sin(2πi/56), R_O = −K_O/2, T = K_O, a_p = 0, I = decadal_initial)."""
        k0 = 2.0 * np.sin(2.0 * np.pi * np.arange(1, N_OCEAN + 1) / N_OCEAN)
        K = np.tile(k0, (n_members, 1))
        return CF23State(
            K=K,
            R=-0.5 * K,
            T=K.copy(),
            burst=np.zeros(n_members),
            decadal=np.full(n_members, self.params.decadal_initial),
            streams=MemberStreams.from_seed(seed, n_members, first_member=first_member),
        )

    def advance_nondimensional(self, state: CF23State, n_years: int) -> dict[str, np.ndarray]:
        """Advance ``state`` in place by whole years; monthly means of K, R, T (n, 12·years, 56), a_p and I (n, 12·years)."""
        month_steps = np.tile(self.month_steps, int(n_years))
        n, n_months = state.n_members, month_steps.size
        out = {
            "K": np.empty((n, n_months, N_OCEAN)),
            "R": np.empty((n, n_months, N_OCEAN)),
            "T": np.empty((n, n_months, N_OCEAN)),
            "burst": np.empty((n, n_months)),
            "decadal": np.empty((n, n_months)),
        }
        s = state.streams
        _integrate_months(
            state.K, state.R, state.T, state.burst, state.decadal, s.state, s.spare, s.has_spare, np.int64(state.step),
            month_steps, self.eta, self.eta2, self.burst_shape, self.sigma_table, self.coefficients,
            out["K"], out["R"], out["T"], out["burst"], out["decadal"],
        )  # fmt: skip
        state.step += int(month_steps.sum())
        return out

    def physical(self, nondim: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Physical equatorial fields and Niño indices (float32) from nondimensional monthly means (all linear)."""
        K, R, T = nondim["K"], nondim["R"], nondim["T"]
        sst = SST_SCALE * PHI0_EQ * T
        k_atm = T @ self.green.T
        wind_factor = WIND_SCALE * (3.0 * PHI0_EQ - 2.0 * PHI2_EQ / math.sqrt(2.0))  # R_A = −2 K_A
        out = {
            "sst_anomaly": sst,
            "thermocline_depth_anomaly": DEPTH_SCALE * ((K + R) * PHI0_EQ + R * PHI2_EQ / math.sqrt(2.0)),
            "zonal_current": CURRENT_SCALE * ((K - R) * PHI0_EQ + R * PHI2_EQ / math.sqrt(2.0)),
            "zonal_wind": wind_factor * k_atm,
            "wind_burst": nondim["burst"],
            "decadal": nondim["decadal"],
            "nino3": sst[..., NINO3_NODES].mean(-1),
            "nino34": sst[..., NINO34_NODES].mean(-1),
            "nino4": sst[..., NINO4_NODES].mean(-1),
        }
        return {name: value.astype(np.float32) for name, value in out.items()}

    def advance_years(self, state: CF23State, n_years: int) -> dict[str, np.ndarray]:
        return self.physical(self.advance_nondimensional(state, n_years))


# --- a plain NumPy reference (tests and benchmark) ------------------------------------------------------------------
def reference_integrate(model: CF23Model, state: CF23State, n_years: int) -> dict[str, np.ndarray]:
    """The same model as a plain per-step NumPy loop over explicit operators (members vectorised).

    Written independently of the compiled loop: the atmosphere as the (56, 56) Green's-function matrix, the ocean
    as shifted arrays. It draws the same per-member noise in the same order, so it must agree with
    ``CF23Model.advance_nondimensional`` to rounding. Slow (Python overhead per step): for checks and the benchmark.
    """
    p = model.params
    co = model.coefficients
    n = state.n_members
    K, R, T = state.K, state.R, state.T
    a, dec = state.burst, state.decadal
    month_steps = np.tile(model.month_steps, int(n_years))
    n_steps = int(month_steps.sum())
    per_step = co.substeps + 1
    noise = np.stack([state.streams.standard_normal(m, n_steps * per_step) for m in range(n)]).reshape(
        n, n_steps, per_step
    )
    eta, eta2, sp = model.eta, model.eta2, model.burst_shape
    G = model.green
    out = {k: [] for k in ("K", "R", "T", "burst", "decadal")}
    step = state.step
    k_global = 0
    for steps in month_steps:
        acc = {k: 0.0 for k in out}
        for _ in range(steps):
            phi = step * p.dt_days / 365.0 + p.phase
            t4 = T[:, NINO4_NODES].mean(1, keepdims=True)
            k_atm = T @ G.T
            tau = p.gamma * (3.0 * k_atm + a[:, None] * sp)
            k_west = np.concatenate([p.r_west * R[:, :1], K[:, :-1]], axis=1)
            r_east = np.concatenate([R[:, 1:], p.r_east * K[:, -1:]], axis=1)
            dK = p.c1 / DX * (k_west - K) + p.c1 * p.chi_o / 2 * tau
            dR = p.c1 / (3 * DX) * (r_east - R) - p.c1 * p.chi_o / 3 * tau
            b = (
                p.c1 * p.zeta * p.alpha_q
                * (p.damping_base - eta2 / 3 + 0.2 * (0.2 + np.abs(t4 + p.damping_asymmetry_shift) * eta2) ** 2)
                * (1 + 0.5 * np.sin(2 * np.pi * phi) + 0.1 * eta2 * np.sin(2 * np.pi * (phi - 1 / 12))
                   - 0.15 / 2.4 * eta * np.sin(4 * np.pi * (phi - 1 / 6)))
            )  # fmt: skip
            thermo = p.c1 * p.thermocline_feedback_factor * eta * (K + R)
            advective = p.c1 * p.zonal_advective_factor * dec[:, None] * eta2 * (K - R)
            dT = thermo + advective - b * T + p.c1 * p.chi_o * p.c2 * eta2
            K = K + co.dt * dK
            R = R + co.dt * dR
            T = T + co.dt * dT
            amp = np.tanh(t4[:, 0]) + 1 if p.burst_state_dependent else 1.0
            sigma_p = (
                p.burst_noise
                * amp
                * (1 + p.burst_seasonal_amplitude * np.cos(2 * np.pi * (phi - 1 / 12)))
                * (1 - p.burst_decadal_coupling * dec)
            )
            h = co.dt / co.substeps
            for s in range(co.substeps):
                a = a - p.burst_damping * a * h + sigma_p * np.sqrt(h) * noise[:, k_global, s]
            idx = np.clip(np.floor(100 * dec + 0.5).astype(int), 0, 99)
            dec = (
                dec
                - p.decadal_damping * (dec - p.decadal_mean) * co.dt
                + model.sigma_table[idx] * np.sqrt(co.dt) * noise[:, k_global, -1]
            )
            step += 1
            k_global += 1
            for name, value in (("K", K), ("R", R), ("T", T), ("burst", a), ("decadal", dec)):
                acc[name] = acc[name] + value
        for name in out:
            out[name].append(acc[name] / steps)
    state.K[:], state.R[:], state.T[:], state.burst[:], state.decadal[:] = K, R, T, a, dec
    state.step = step
    return {name: np.stack(v, axis=1) for name, v in out.items()}


# --- meridional structure (the 2-D fields: bridging.idealized.reconstruction) ----------------------------------------------------------------------------------------
def meridional_functions(lat) -> tuple[np.ndarray, np.ndarray]:
    """φ0(Y), φ2(Y) of the ocean's equatorial Rossby radius at latitudes (°N)."""
    Y = np.asarray(lat, dtype=float) * KM_PER_DEG_LAT / OCEAN_MERIDIONAL_KM
    phi0 = np.pi**-0.25 * np.exp(-0.5 * Y**2)
    phi2 = (4 * np.pi) ** -0.25 * (2 * Y**2 - 1) * np.exp(-0.5 * Y**2)
    return phi0, phi2
