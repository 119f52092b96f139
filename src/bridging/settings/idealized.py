"""Idealized models (CF23, CFY22), pseudo-observations and the embedded demo data set."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Section


class CF23Params(Section):
    """Chen & Fang (2023) intermediate coupled stochastic model; values from ../shared/spec/idealized_models.md §3.4."""

    c1: float = Field(0.15, description="Ocean Kelvin speed (nondimensional).")
    zeta: float = Field(8.7, description="Latent-heat loss coefficient ζ.")
    alpha_q: float = Field(0.204254, description="Latent heating factor α_q.")
    q_bar: float = Field(0.9, description="Background moisture gradient Q̄.")
    chi_a: float = Field(0.3225, description="Ocean→atmosphere projection χ_A (effective value).")
    chi_o: float = Field(1.3, description="Atmosphere→ocean projection χ_O.")
    gamma: float = Field(6.529, description="Wind-stress coefficient γ.")
    c2: float = Field(0.1, description="Mean-compensation forcing coefficient.")
    r_west: float = Field(0.5, description="Western boundary reflection r_W.")
    r_east: float = Field(1.0, description="Eastern boundary reflection r_E.")
    burst_damping: float = Field(1.1178, description="Wind-burst damping d_p (1 month).")
    burst_noise: float = Field(1.6, description="Wind-burst noise amplitude factor.")
    burst_state_dependent: bool = Field(
        True, description="Wind-burst amplitude factor (tanh T4 + 1); false replaces it by 1 (symmetric ENSO)."
    )
    decadal_damping: float = Field(0.018630, description="Decadal OU damping λ.")
    decadal_mean: float = Field(0.505, description="Decadal OU mean m.")
    phase: float = Field(-1.0 / 12.0, description="Seasonal phase offset (years).")
    dt_days: float = Field(0.5, gt=0, description="Time step in days.")
    burst_substeps: int = Field(10, ge=1, description="Euler–Maruyama sub-steps of the wind bursts per step.")


class CFY22Params(Section):
    """Chen, Fang & Yu (2022) six-variable conceptual model, ACI (Fang & Chen 2024) parameter set, §4.3."""

    factor: float = Field(0.65, description="Scaling factor f of the ACI parameter set.")
    dt: float = Field(0.005, gt=0, description="Time step in model units of 2 months.")
    sigma_e: float = Field(0.0, ge=0, description="Noise on T_E (0 in the original model).")


class IdealizedSection(Section):
    model: Literal["cf23", "cfy22"] = Field("cf23", description="Idealized model that provides pseudo-observations.")
    pseudo_obs_years: int = Field(300, ge=1, description="Length of the pseudo-observation record = length of the bridging run.")
    reference_years: int = Field(1000, ge=1, description="Independent long run: the idealized model's reference statistics.")
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
    error_fraction: float = Field(0.04, gt=0, description="Observation-error variance as a fraction of each observable's variance.")


class DemoBiasSection(Section):
    """CMIP6-like ENSO biases of a demo operational model; each is documented in docs/demo_data.md."""

    symmetric_wind_bursts: bool = Field(False, description="Replace the state-dependent burst factor by 1: near-symmetric ENSO.")
    westward_shift_deg: float = Field(0.0, description="Shift of the ENSO anomaly pattern to the west (degrees).")
    amplitude_factor: float = Field(1.0, gt=0, description="Factor on the ENSO anomaly amplitude.")
    zonal_advective_factor: float = Field(1.0, ge=0, description="Factor on the zonal-advective feedback (<1: fewer CP events).")


class DemoModelSection(Section):
    source_id: str = Field(..., description="source_id written into the files.")
    layout: Literal["cesm2", "gfdl-cm4"] = Field(..., description="Real file layout to imitate.")
    resolution_deg: float = Field(1.5, gt=0, description="Nominal grid spacing of the curvilinear grid.")
    seed: int = Field(0, description="Seed of the ENSO driver run and the noise.")
    bias: DemoBiasSection = Field(default_factory=DemoBiasSection)


class DemoReanalysisSection(Section):
    first_year: int = Field(1981)
    last_year: int = Field(2023)
    resolution_deg: float = Field(1.0, gt=0, description="Nominal spacing of the ORCA-like curvilinear grid.")
    seed: int = Field(7, description="Seed of the reanalysis' ENSO driver (differs from the pseudo-observation seed).")


class DemoSection(Section):
    enabled: bool = Field(True, description="Generate the demo data and use it as the catalog root.")
    output_dir: str = Field("data/demo", description="Where the demo files are written.")
    last_year: int = Field(2014, description="Last year of the operational-model records.")
    n_years: int = Field(100, ge=5, description="Years of operational-model data (ignored when full_record).")
    full_record: bool = Field(False, description="Generate the full 1850–2014 historical record.")
    n_levels: int = Field(12, ge=4, description="Ocean levels of thetao.")
    models: list[DemoModelSection] = Field(
        default_factory=lambda: [
            DemoModelSection(
                source_id="DEMO-CESM2",
                layout="cesm2",
                resolution_deg=1.5,
                seed=11,
                bias=DemoBiasSection(symmetric_wind_bursts=True, westward_shift_deg=20.0, amplitude_factor=1.3),
            ),
            DemoModelSection(
                source_id="DEMO-GFDL-CM4",
                layout="gfdl-cm4",
                resolution_deg=2.0,
                seed=13,
                bias=DemoBiasSection(
                    symmetric_wind_bursts=True, westward_shift_deg=10.0, amplitude_factor=0.8, zonal_advective_factor=0.3
                ),
            ),
        ]
    )
    reanalysis: DemoReanalysisSection = Field(default_factory=DemoReanalysisSection)
