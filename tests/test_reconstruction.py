"""CF23's 2-D reconstruction and the one index operator: the idealized model's indices, its pseudo-observations and
every gridded source go through the same box means and the same observation operator."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bridging.diagnostics.indices import idealized_indices, store_indices
from bridging.grid import TargetGrid
from bridging.idealized import cf23
from bridging.idealized.pseudo_obs import build_pseudo_obs, cf23_layout, observe_reconstruction
from bridging.idealized.reconstruction import CF23Reconstruction, wave_amplitudes
from bridging.idealized.run import simulate
from bridging.stores import build_store, open_store, write_store


@pytest.fixture(scope="module")
def run():
    return simulate(years=3, seed=1, spinup_years=1).isel(member=0)


def test_the_equator_is_the_node_values_and_the_rossby_lobes_sit_off_it(run):
    lat = np.array([-8.0, -4.0, 0.0, 4.0, 8.0])
    la, lo = np.meshgrid(lat, cf23.NODE_LON, indexing="ij")
    sst, depth = CF23Reconstruction.build(la, lo).apply_run(run)
    assert sst.shape == (36, 5, 56)
    np.testing.assert_allclose(sst[:, 2], run["sst_anomaly"].values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(depth[:, 2], run["thermocline_depth_anomaly"].values, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sst[:, 0], sst[:, 4])  # symmetric about the equator
    # SST falls off as φ0(Y): e^(−Y²/2) with Y = y / 331 km
    y = 4.0 * cf23.KM_PER_DEG_LAT / cf23.OCEAN_MERIDIONAL_KM
    np.testing.assert_allclose(sst[:, 3], sst[:, 2] * np.exp(-0.5 * y * y), rtol=1e-6, atol=1e-9)
    phi0, phi2 = cf23.meridional_functions([0.0, 4.7])
    assert phi2[1] > 0 > phi2[0] and phi0[1] < phi0[0]  # φ2's off-equatorial (Rossby) lobes near ±5°
    k, r = wave_amplitudes(run["thermocline_depth_anomaly"].values, run["zonal_current"].values)
    h = cf23.DEPTH_SCALE * ((k + r) * cf23.PHI0_EQ + r * cf23.PHI2_EQ / np.sqrt(2.0))
    np.testing.assert_allclose(h, run["thermocline_depth_anomaly"].values, rtol=1e-4, atol=1e-4)


def test_a_westward_shift_moves_the_pattern():
    grid_lon = np.arange(120.0, 290.0, 0.5)[None, :]
    impulse = np.zeros((1, 56))
    impulse[0, 30] = 1.0
    shifted = CF23Reconstruction.build(np.zeros_like(grid_lon), grid_lon, westward_shift_deg=15.0)
    sst, _ = shifted.apply(impulse, np.zeros((1, 56)), np.zeros((1, 56)))
    assert grid_lon[0, np.argmax(sst[0, 0])] == pytest.approx(cf23.NODE_LON[30] - 15.0, abs=0.5)


def reconstructed_store(run, grid: TargetGrid, land=()) -> xr.Dataset:
    """A project store whose fields are exactly the run's reconstruction (plus a mean state), with land cells."""
    la, lo = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    sst, depth = CF23Reconstruction.build(la, lo).apply_run(run)
    sst, depth = sst + 27.0 - 0.05 * np.abs(la), depth + 120.0
    for i, j in land:
        sst[:, i, j] = depth[:, i, j] = np.nan
    coords = {"time": run["time"], "lat": grid.lat, "lon": grid.lon}
    fields = {
        "sst": xr.DataArray(sst.astype(np.float32), dims=("time", "lat", "lon"), coords=coords),
        "thermocline_depth": xr.DataArray(depth.astype(np.float32), dims=("time", "lat", "lon"), coords=coords),
    }
    return build_store(fields, source_id="RECONSTRUCTED", source_kind="reanalysis")


def test_the_idealized_indices_and_a_gridded_store_of_the_same_field_agree(run, tmp_path):
    """Both paths, on a field both can represent: the idealized route (node values → reconstruction → box means)
    and the gridded route (a store holding those fields → box means over its ocean cells) give the same numbers,
    land cells in the Niño 3 box included."""
    grid = TargetGrid(resolution=2.0)
    i_eq, j_box = int(np.argmin(np.abs(grid.lat))), int(np.argmin(np.abs(grid.lon - 240.0)))
    write_store(reconstructed_store(run, grid, land=[(i_eq, j_box)]), tmp_path / "s.zarr")
    store = open_store(tmp_path / "s.zarr")
    gridded = store_indices(store, tmp_path / "s.zarr")
    idealized, operator = idealized_indices(run, "run", grid=store)
    assert "reconstruction" in operator
    for name in ("nino3", "nino34", "nino4", "wp_thermocline"):
        np.testing.assert_allclose(
            idealized[name].values, gridded[name].values, atol=2e-5 * float(np.abs(gridded[name]).max())
        )
    # the node means the model reports are a different operator: box means of the 2-D field are weaker, as the
    # field falls off away from the equator
    assert idealized["nino3"].std() < 0.9 * run["nino3"].std()


def test_without_a_grid_an_idealized_run_falls_back_to_its_own_box_variables(run):
    idx, operator = idealized_indices(run, "run")
    assert "own box variables" in operator
    np.testing.assert_allclose(idx["nino3"].values.mean(), 0.0, atol=1e-9)


def test_pseudo_observations_are_the_observation_operator_applied_to_the_reconstruction():
    grid = TargetGrid()
    ds = build_pseudo_obs(
        idealized={"pseudo_obs_years": 2, "spinup_years": 1}, pseudo_obs={"node_stride": 5}, grid=grid
    )
    layout, nodes = cf23_layout(grid, 5)
    run = xr.Dataset(
        {
            name: ds[name].rename(cf23_node="node")
            for name in ("sst_anomaly", "thermocline_depth_anomaly", "zonal_current")
        }
    )
    raw = observe_reconstruction(run, layout, grid)
    anomalies = raw - np.stack([raw[m::12].mean(axis=0) for m in range(12)])[np.arange(raw.shape[0]) % 12]
    np.testing.assert_allclose(ds["observations"].values, anomalies, atol=1e-5)
    # node 1 sits on the 126°E cell: there the observation is the node value itself
    first = np.asarray(ds["sst_anomaly"].values[:, 0], float)
    first = first - np.stack([first[m::12].mean() for m in range(12)])[np.arange(first.size) % 12]
    np.testing.assert_allclose(ds["observations"].values[:, 0], first, atol=1e-5)
    assert ds["obs_lon"].values[0] == 126.0 and nodes[0] == 0
