"""Idealized models (CF23, CFY22), pseudo-observations and the embedded demo data set."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Section


class CF23Params(Section):
    """Chen & Fang (2023) intermediate coupled stochastic model (DCM Fortran port); values and equations from
    docs/idealized_models.md (parameters, profiles and damping)."""

    c1: float = Field(0.15, description="Ocean Kelvin speed (nondimensional; 15 000 km per 34 days units).")
    zeta: float = Field(8.7, description="Latent-heat loss coefficient ζ.")
    alpha_q: float = Field(0.204254, description="Latent heating factor α_q = q_c q_e exp(q_e T̄)/τ_q.")
    q_bar: float = Field(0.9, lt=1.0, description="Background moisture gradient Q̄ of the skeleton atmosphere.")
    chi_a: float = Field(
        0.3225,
        description="Ocean→atmosphere projection χ_A (0.325·128/129, the value that reproduces the stored Green's function).",
    )
    chi_o: float = Field(1.3, description="Atmosphere→ocean projection χ_O.")
    gamma: float = Field(6.529, description="Wind-stress coefficient γ.")
    c2: float = Field(
        0.1,
        description="Constant SST forcing c1·χ_O·c2·η2 compensating the mean of the nonlinear damping (sets Niño 4 skewness).",
    )
    r_west: float = Field(0.5, ge=0, le=1, description="Western boundary reflection r_W: K_O(west) = r_W·R_O(west).")
    r_east: float = Field(1.0, ge=0, le=1, description="Eastern boundary reflection r_E: R_O(east) = r_E·K_O(east).")
    thermocline_feedback_factor: float = Field(
        1.0, ge=0, description="Factor on the thermocline feedback c1·η·(K_O + R_O) (1 = the published model)."
    )
    zonal_advective_factor: float = Field(
        1.0, ge=0, description="Factor on the zonal-advective feedback c1·I·η2·(K_O − R_O) (<1: fewer CP El Niños)."
    )
    damping_base: float = Field(
        1.8, description="Constant of the damping b: 1.8 − η2/3 + 0.2·(0.2 + |T4 + shift|·η2)²."
    )
    damping_asymmetry_shift: float = Field(
        0.4, description="Shift inside |T4 + shift| of the state-dependent damping (the source of Niño 4's asymmetry)."
    )
    burst_damping: float = Field(1.1178, gt=0, description="Wind-burst damping d_p = 34·12/365 (1-month memory).")
    burst_noise: float = Field(1.6, ge=0, description="Wind-burst noise amplitude factor of σ_p.")
    burst_state_dependent: bool = Field(
        True, description="Wind-burst amplitude factor (tanh T4 + 1); false replaces it by 1 (symmetric ENSO)."
    )
    burst_seasonal_amplitude: float = Field(0.6, description="Seasonal modulation of σ_p: 1 + a·cos(2π(φ − 1/12)).")
    burst_decadal_coupling: float = Field(0.75, description="Decadal modulation of σ_p: 1 − c·I.")
    decadal_damping: float = Field(0.018630, gt=0, description="Decadal OU damping λ = 34/(5·365) (5-year memory).")
    decadal_mean: float = Field(0.505, description="Decadal OU mean m.")
    decadal_initial: float = Field(0.5, ge=0, le=1, description="Initial decadal variable I.")
    phase: float = Field(-1.0 / 12.0, description="Seasonal phase offset (years); model time zero is 1 January.")
    dt_days: float = Field(0.5, gt=0, description="Time step in days; must divide every calendar month's length.")
    burst_substeps: int = Field(10, ge=1, description="Euler–Maruyama sub-steps of the wind bursts per step.")


class CFY22Params(Section):
    """Chen, Fang & Yu (2022) six-variable conceptual model with the ACI parameter set (Fang & Chen 2024, as used
    in marandmath/ACI_code), docs/idealized_models.md.

    Coefficients are given before the scaling factor f; the model applies f (or √f) exactly as the ACI code does.
    Time unit: 2 months.
    """

    factor: float = Field(0.65, gt=0, description="Scaling factor f of the ACI parameter set.")
    dt: float = Field(0.005, gt=0, description="Time step in model units of 2 months (100 steps per month).")
    b0: float = Field(2.5, description="b_0 of the atmosphere coupling.")
    mu: float = Field(0.5, description="μ of the atmosphere coupling.")
    alpha2: float = Field(0.125, description="α_2 before f; α_1 = α_2·f/2·f as in the ACI code (f applied twice).")
    damping: float = Field(0.25, description="r before f: damping of u and h_W.")
    gamma: float = Field(0.75, description="γ_C = γ_E before f: thermocline feedback.")
    c_u: float = Field(0.03, description="C_u before f: constant forcing of T_C.")
    advective: float = Field(0.2, description="σ(I) = advective·I·f: zonal-advective feedback (I/5 in the ACI set).")
    advective_factor: float = Field(
        1.0, ge=0, description="Extra factor on the zonal-advective feedback σ(I) (1 = ACI)."
    )
    c1_quadratic: float = Field(
        25.0, description="c_1 = f·[c1_quadratic·(T_C + c1_shift)² + c1_constant]·(1 + c1_seasonal sin(2πt/6 − π/6))."
    )
    c1_shift: float = Field(0.1)
    c1_constant: float = Field(0.9)
    c1_seasonal: float = Field(0.3)
    c2_constant: float = Field(
        1.4, description="c_2 = c2_constant·f·[1 + c2_seasonal sin(2πt/6 + 2π/6) + c2_semiannual sin(4πt/6 + 2π/6)]."
    )
    c2_seasonal: float = Field(0.3)
    c2_semiannual: float = Field(0.25)
    beta: tuple[float, float, float, float] = Field(
        (-0.2, -0.4, 0.8, 1.0),
        description="Wind-burst projections (β_u, β_h, β_C, β_E) before the factor (2 − I/5)·beta_scale·√f.",
    )
    beta_scale: float = Field(0.15)
    burst_damping: float = Field(2.0, gt=0, description="d_τ (1-month memory).")
    burst_noise: float = Field(
        0.9, ge=0, description="σ_τ = burst_noise·(tanh(burst_tanh·T_C) + 1)·(1 + 0.3 cos(2πt/6 + 2π/6))."
    )
    burst_tanh: float = Field(7.5)
    burst_seasonal: float = Field(0.3)
    decadal_damping: float = Field(2.0 / 60.0, gt=0, description="λ of I (5-year memory).")
    decadal_mean: float = Field(
        2.0, description="m of I; σ_I = sqrt(λ·I·(decadal_max − I)) makes I ~ Uniform[0, decadal_max]."
    )
    decadal_max: float = Field(4.0, gt=0)
    sigma_u: float = Field(0.04, ge=0, description="Noise on u before √f.")
    sigma_h: float = Field(0.02, ge=0, description="Noise on h_W before √f.")
    sigma_c: float = Field(0.04, ge=0, description="Noise on T_C before √f.")
    sigma_e: float = Field(0.0, ge=0, description="Noise on T_E before √f (0 in the original model; ACI uses √5·0.01).")
    initial: tuple[float, float, float, float, float, float] = Field(
        (6.9e-4, -0.0028, 0.0039, 0.0051, -0.0256, 1.5841),
        description="Initial (u, h_W, T_C, T_E, τ, I) (GODAS 1982–2017 means).",
    )


class IdealizedSection(Section):
    model: Literal["cf23", "cfy22"] = Field("cf23", description="Idealized model that provides pseudo-observations.")
    pseudo_obs_years: int = Field(
        300, ge=1, description="Length of the pseudo-observation record = length of the bridging run."
    )
    reference_years: int = Field(
        30000,
        ge=1,
        description="Independent long run: the idealized model's reference statistics and the null distributions of the "
        "comparison, which take its disjoint chunks as long as each record compared (100 chunks of the 300-year bridging "
        "run need 30 000 years; a shorter run falls back to block-bootstrap records).",
    )
    spinup_years: int = Field(10, ge=0, description="Years discarded at the start of every run.")
    seed_pseudo_obs: int = Field(1, description="Seed of the pseudo-observation run.")
    seed_reference: int = Field(2, description="Seed of the reference long run.")
    chunk_years: int = Field(50, ge=1, description="Years per streamed chunk of long runs.")
    cf23: CF23Params = Field(default_factory=CF23Params)
    cfy22: CFY22Params = Field(default_factory=CFY22Params)


class PseudoObsSection(Section):
    node_stride: int = Field(1, ge=1, description="Use every k-th CF23 node (1 = all 56).")
    variables: list[Literal["sst", "thermocline_depth"]] = Field(
        ["sst", "thermocline_depth"], description="Observed variables at each node."
    )
    error_fraction: float = Field(
        0.04, gt=0, description="Observation-error variance as a fraction of each observable's variance."
    )


class DemoBiasSection(Section):
    """CMIP6-like ENSO biases of a demo operational model; each is documented in docs/demo_data.md."""

    symmetric_wind_bursts: bool = Field(
        False, description="Replace the state-dependent burst factor by 1: near-symmetric ENSO."
    )
    westward_shift_deg: float = Field(0.0, description="Shift of the ENSO anomaly pattern to the west (degrees).")
    amplitude_factor: float = Field(1.0, gt=0, description="Factor on the ENSO anomaly amplitude.")
    zonal_advective_factor: float = Field(
        1.0, ge=0, description="Factor on the zonal-advective feedback (<1: fewer CP events)."
    )


class DemoModelSection(Section):
    source_id: str = Field(..., description="source_id written into the files.")
    layout: Literal["cesm2", "gfdl-cm4"] = Field(..., description="Real file layout to imitate.")
    resolution_deg: float = Field(1.5, gt=0, description="Nominal grid spacing of the curvilinear grid.")
    seed: int = Field(0, description="Seed of the ENSO driver run and the noise.")
    bias: DemoBiasSection = Field(default_factory=DemoBiasSection)


def fraternal_truth_dynamics() -> CF23Params:
    """The demo reanalysis' ENSO dynamics: CF23 with stronger westerly wind bursts and a stronger zonal-advective
    feedback than the idealized model (docs/demo_data.md, "Fraternal twin")."""
    return CF23Params(burst_noise=2.2, zonal_advective_factor=1.5)


class DemoReanalysisSection(Section):
    first_year: int = Field(1981)
    last_year: int = Field(2023)
    resolution_deg: float = Field(1.0, gt=0, description="Nominal spacing of the ORCA-like curvilinear grid.")
    seed: int = Field(7, description="Seed of the reanalysis' ENSO driver (differs from the pseudo-observation seed).")
    dynamics: CF23Params = Field(
        default_factory=fraternal_truth_dynamics,
        description="CF23 parameters of the reanalysis' ENSO (the demo's truth). The default differs from the idealized "
        "model (a fraternal twin: stronger wind bursts, burst_noise 2.2, and zonal-advective feedback ×1.5), so the "
        "bridging model's target and the truth the models learn through the curriculum can be told apart; "
        "config/experiments/identical_twin.yaml sets the idealized model's own parameters.",
    )
    extreme_ep_events: int = Field(
        3,
        ge=0,
        description="The record is the first window of the driver run that holds at least this many extreme EP El Niños, "
        "as the observed 1981–2023 record does (1982/83, 1997/98, 2015/16); scaled to the record's length when it is not "
        "43 years; 0 = simply the run's first years.",
    )
    search_years: int = Field(1000, ge=1, description="Length of the driver run searched for that window.")


class DemoSection(Section):
    enabled: bool = Field(True, description="Generate the demo data and use it as the catalog root.")
    output_dir: str = Field("data/demo", description="Where the demo files are written.")
    last_year: int = Field(2014, description="Last year of the operational-model records.")
    n_years: int = Field(100, ge=5, description="Years of operational-model data (ignored when full_record).")
    full_record: bool = Field(False, description="Generate the full 1850–2014 historical record.")
    n_levels: int = Field(12, ge=4, description="Ocean levels of thetao (5–450 m, refined in the thermocline).")
    driver_spinup_years: int = Field(
        10, ge=0, description="Spin-up years of each source's CF23 driver run (discarded)."
    )
    detail_modes: int = Field(
        4,
        ge=0,
        description="Off-equatorial red-noise modes per source: variability ENSO does not explain (the source's own detail).",
    )
    detail_sst_amplitude: float = Field(
        0.35, ge=0, description="Standard deviation (°C) of each detail mode's SST at its centre."
    )
    detail_depth_amplitude: float = Field(
        10.0, ge=0, description="Standard deviation (m) of each detail mode's thermocline depth."
    )
    detail_persistence: float = Field(
        0.9, ge=0, lt=1, description="Lag-1 (monthly) autocorrelation of the detail modes."
    )
    noise_sst: float = Field(0.08, ge=0, description="White noise (°C) added to SST in every cell and month.")
    noise_depth: float = Field(
        1.5, ge=0, description="White noise (m) added to the thermocline depth in every cell and month."
    )
    long_run_years: int = Field(
        1000,
        ge=10,
        description="Length of the long driver runs whose statistics are recorded beside each source's own.",
    )
    models: list[DemoModelSection] = Field(
        default_factory=lambda: [
            # Measured (1000-year driver runs, Niño boxes on the source grid; docs/demo_data.md): Niño 3 skew +0.03,
            # std 1.03 °C (unbiased CF23: about +0.3…+0.4 and 0.79 °C), Niño 4 / Niño 3 std 0.79 (0.67), pattern 15° west.
            DemoModelSection(
                source_id="DEMO-CESM2",
                layout="cesm2",
                resolution_deg=1.5,
                seed=11,
                bias=DemoBiasSection(symmetric_wind_bursts=True, westward_shift_deg=15.0, amplitude_factor=1.35),
            ),
            # Measured: Niño 3 skew −0.19, std 0.56 °C; Niño 4 skew −0.90; CP 8 % of El Niños (unbiased: about 40 %).
            DemoModelSection(
                source_id="DEMO-GFDL-CM4",
                layout="gfdl-cm4",
                resolution_deg=2.0,
                seed=13,
                bias=DemoBiasSection(
                    symmetric_wind_bursts=True, westward_shift_deg=8.0, amplitude_factor=0.8, zonal_advective_factor=0.4
                ),
            ),
        ],
        description="Operational demo models: layout, grid spacing, seed and ENSO biases (docs/demo_data.md).",
    )
    reanalysis: DemoReanalysisSection = Field(default_factory=DemoReanalysisSection)
