"""XRO pseudo-observations: fitted to a synthetic reanalysis with a known recharge oscillation, written in the
pseudo-observation store format, deterministic per seed, and clear errors for unusable stores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from bridging.errors import ConfigError, InputDataError
from bridging.grid import TargetGrid
from bridging.idealized.pseudo_obs import open_pseudo_obs
from bridging.idealized.xro_obs import build_xro_pseudo_obs, make_xro_pseudo_obs, reanalysis_indices, xro_layout
from bridging.observables import ObservationLayout
from bridging.stores import build_store, write_store
from bridging.timeaxis import monthly_time, year_month

GRID = TargetGrid(lat_min=-10.0, lat_max=10.0, lon_min=120.0, lon_max=280.0, resolution=5.0)
GRID_CFG = {"lat_min": -10, "lat_max": 10, "lon_min": 120, "lon_max": 280, "resolution": 5}
IDEALIZED = {"pseudo_obs_years": 200, "spinup_years": 5, "seed_pseudo_obs": 7}
YEARS = 43


def recharge_oscillation(n_months: int, seed: int = 0) -> np.ndarray:
    """(n_months, 2) T (°C) and h (m) of a noise-driven damped oscillator: 4-year period, 2-year damping time,
    h leading T by a quarter period (the recharge-discharge cycle)."""
    rng = np.random.default_rng(seed)
    omega, decay = 2 * np.pi / 48, np.exp(-1 / 24)
    rotation = decay * np.array([[np.cos(omega), np.sin(omega)], [-np.sin(omega), np.cos(omega)]])
    x = np.zeros((n_months, 2))
    for k in range(1, n_months):
        x[k] = rotation @ x[k - 1] + rng.normal(scale=0.25, size=2)
    return x * [1.0, 10.0]


def synthetic_reanalysis(signal: np.ndarray) -> xr.Dataset:
    """A regridded store: T as an SST pattern over the central-eastern Pacific, h as a D20 anomaly along the
    equatorial band, on a seasonal cycle and mean state, with one land cell inside the thermocline box."""
    time = monthly_time(1981, 1, signal.shape[0])
    _, months = year_month(time)
    la, lo = np.meshgrid(GRID.lat, GRID.lon, indexing="ij")
    sst_pattern = np.exp(-((la / 8) ** 2) - ((lo - 215) / 40) ** 2)
    d20_pattern = np.exp(-((la / 6) ** 2))
    season = np.cos(2 * np.pi * months / 12)[:, None, None]
    sst = 27 - 0.05 * np.abs(la) + season + signal[:, 0, None, None] / sst_pattern[2, 19] * sst_pattern
    depth = 120 + 5 * season + signal[:, 1, None, None] * d20_pattern
    sst[:, 2, 30] = depth[:, 2, 30] = np.nan
    coords = {"time": time, "lat": GRID.lat, "lon": GRID.lon}
    fields = {
        "sst": xr.DataArray(sst, dims=("time", "lat", "lon"), coords=coords),
        "thermocline_depth": xr.DataArray(depth, dims=("time", "lat", "lon"), coords=coords),
    }
    return build_store(fields, source_id="SYNTHETIC", source_kind="reanalysis")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(synthetic_reanalysis(recharge_oscillation(12 * YEARS)), tmp_path_factory.mktemp("r") / "r.zarr")


@pytest.fixture(scope="module")
def pseudo_obs(store):
    return build_xro_pseudo_obs(store, idealized=IDEALIZED, grid=GRID_CFG)


def lag_correlation(x: np.ndarray, lag: int) -> float:
    return float(np.corrcoef(x[:-lag], x[lag:])[0, 1])


def test_layout_is_nino34_sst_and_the_equatorial_thermocline_band():
    layout = xro_layout(TargetGrid())
    assert layout.variable == ("sst", "thermocline_depth")
    assert (layout.lon_min, layout.lon_max) == ((190.0, 120.0), (240.0, 280.0))
    assert xro_layout(TargetGrid(), ["thermocline_depth"]).variable == ("thermocline_depth",)
    with pytest.raises(ConfigError, match="XRO observation boxes"):
        xro_layout(TargetGrid(lon_min=250.0, lon_max=280.0))


def test_reanalysis_indices_are_the_box_anomalies(store):
    indices = reanalysis_indices(store, GRID_CFG)
    signal = recharge_oscillation(12 * YEARS)
    assert indices["Nino34"].attrs["units"] == "degC" and indices["h"].attrs["units"] == "m"
    assert indices.sizes["time"] == 12 * YEARS
    # the box means see the signal (the SST pattern is not flat over the box, so only up to a factor)
    assert np.corrcoef(indices["Nino34"], signal[:, 0])[0, 1] > 0.99
    assert np.corrcoef(indices["h"], signal[:, 1])[0, 1] > 0.99


def test_store_format_matches_the_pseudo_observation_stores(pseudo_obs, store, tmp_path):
    ds = pseudo_obs
    assert dict(ds.sizes) == {"time": 2400, "obs": 2}
    assert ObservationLayout.from_dataset(ds) == xro_layout(GRID)
    # the model-year axis of every pseudo-observation store (bridging.idealized.run.simulate's)
    assert (ds["time"].values == monthly_time(1, 1, 2400).values).all()
    assert ds["observations"].dtype == np.float32 and set(ds) == {"observations", "obs_error_variance", "nino34"}
    obs = ds["observations"].values.astype(float)
    _, months = year_month(ds["time"])
    assert max(np.abs(obs[months == m].mean(0)).max() for m in range(1, 13)) < 1e-4
    np.testing.assert_allclose(ds["obs_error_variance"], 0.04 * obs.var(0), rtol=1e-4)
    np.testing.assert_allclose(ds["nino34"], obs[:, 0], rtol=1e-5, atol=1e-6)
    assert {k: ds.attrs[k] for k in ("model", "seed", "years", "spinup_years", "node_stride")} == {
        "model": "xro", "seed": 7, "years": 200, "spinup_years": 5, "node_stride": 1,
    }  # fmt: skip
    assert json.loads(ds.attrs["parameters"])["fit_years"] == [1981, 1981 + YEARS - 1]
    assert json.loads(ds.attrs["provenance"])["input_files"] == [str(store)]
    written = open_pseudo_obs(
        make_xro_pseudo_obs(tmp_path / "xro.zarr", store, idealized={**IDEALIZED, "pseudo_obs_years": 3}, grid=GRID_CFG)
    )
    assert written.attrs["config_hash"] and (written["time"].values == monthly_time(1, 1, 36).values).all()


def test_deterministic_per_seed_without_touching_numpy_global_state(pseudo_obs, store):
    short = {**IDEALIZED, "pseudo_obs_years": 20}
    np.random.seed(123)
    a = build_xro_pseudo_obs(store, idealized=short, grid=GRID_CFG)
    after = np.random.random()
    np.random.seed(123)
    assert after == np.random.random()
    b = build_xro_pseudo_obs(store, idealized=short, grid=GRID_CFG)
    c = build_xro_pseudo_obs(store, idealized={**short, "seed_pseudo_obs": 8}, grid=GRID_CFG)
    np.testing.assert_array_equal(a["observations"], b["observations"])
    assert not np.allclose(a["observations"], c["observations"])


def test_the_fitted_oscillator_reproduces_amplitude_and_period(pseudo_obs, store):
    """The fit recovers the 4-year oscillation (complex eigenvalues of its annual-mean operator); the run has the
    input's Niño 3.4 std within 30 %, oscillates (negative lag-24-month autocorrelation, half a period, where red
    noise stays positive) and its recharge h leads T by a quarter period as in the input."""
    operator = np.array(json.loads(pseudo_obs.attrs["parameters"])["annual_mean_operator_per_year"])
    eigenvalue = np.linalg.eigvals(operator)[0]
    assert eigenvalue.real < 0 and 3.0 < 2 * np.pi / abs(eigenvalue.imag) < 6.0
    observed = reanalysis_indices(store, GRID_CFG)
    t_obs, t_sim = observed["Nino34"].values, pseudo_obs["nino34"].values.astype(float)
    assert abs(t_sim.std() / t_obs.std() - 1) < 0.3
    assert lag_correlation(t_sim, 24) < 0
    h_obs, h_sim = observed["h"].values, pseudo_obs["observations"].values[:, 1].astype(float)
    for h, t in ((h_obs, t_obs), (h_sim, t_sim)):
        assert np.corrcoef(h[:-12], t[12:])[0, 1] > 0.3


def test_unusable_reanalysis_stores_name_the_path(tmp_path):
    store = synthetic_reanalysis(recharge_oscillation(48))
    no_depth = tmp_path / "no_depth.zarr"
    store.drop_vars(["thermocline_depth", "thermocline_depth_climatology"]).to_zarr(no_depth)
    with pytest.raises(InputDataError, match="no_depth.zarr.*thermocline_depth"):
        build_xro_pseudo_obs(no_depth, idealized=IDEALIZED, grid=GRID_CFG)
    land = store.copy()
    land["sst"] = land["sst"].where(land["lon"] < 190)  # the whole Niño 3.4 box on land
    write_store(land, tmp_path / "land.zarr")
    with pytest.raises(InputDataError, match="land.zarr.*XRO indices"):
        reanalysis_indices(tmp_path / "land.zarr", GRID_CFG)
    with pytest.raises(InputDataError, match="land.zarr.*target grid"):
        reanalysis_indices(tmp_path / "land.zarr", {**GRID_CFG, "resolution": 2})
