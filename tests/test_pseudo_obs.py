"""Pseudo-observations: mapping of CF23 nodes onto the target grid, ordering, anomalies, error variances, CFY22
boxes, and the written store."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bridging.errors import ConfigError
from bridging.grid import TargetGrid
from bridging.idealized.cf23 import NODE_LON
from bridging.idealized.pseudo_obs import build_pseudo_obs, cf23_layout, make_pseudo_obs, open_pseudo_obs
from bridging.idealized.run import simulate
from bridging.idealized.stats import monthly_anomalies
from bridging.observables import ObservationLayout
from bridging.timeaxis import year_month

SHORT = {"pseudo_obs_years": 20, "spinup_years": 2}


def test_default_layout_has_112_observables_at_the_nearest_equatorial_cells():
    grid = TargetGrid()
    layout, node = cf23_layout(grid)
    assert layout.size == 112
    assert list(layout.variable) == ["sst"] * 56 + ["thermocline_depth"] * 56
    assert np.all(layout.lat == 0.0)
    for k in range(56):
        expected = grid.lon[np.argmin(np.abs(grid.lon - NODE_LON[k]))]
        assert layout.lon[k] == expected == layout.lon[56 + k]
    assert np.all(np.diff(layout.lon[:56]) > 0)  # west → east, one cell per node
    assert layout.lon[0] == 126 and layout.lon[55] == 280  # node 56 (280.69°E) → the grid's edge cell
    assert node.tolist() == list(range(56)) * 2


def test_stride_and_variables():
    layout, node = cf23_layout(TargetGrid(), node_stride=3, variables=["thermocline_depth"])
    assert layout.size == 19 and set(layout.variable) == {"thermocline_depth"}
    assert node.tolist() == list(range(0, 56, 3))
    # the canonical order (SST block first) holds whatever the config's order
    layout, _ = cf23_layout(TargetGrid(), node_stride=2, variables=["thermocline_depth", "sst"])
    assert list(layout.variable) == ["sst"] * 28 + ["thermocline_depth"] * 28


def test_layout_errors_name_the_problem():
    with pytest.raises(ConfigError, match="node_stride"):
        cf23_layout(TargetGrid(resolution=4.0, lat_min=-20, lat_max=20, lon_min=120, lon_max=280))
    with pytest.raises(ConfigError, match="outside the target grid"):
        cf23_layout(TargetGrid(lon_min=120, lon_max=240))


def test_observations_are_the_run_anomalies_with_4_percent_error_variance():
    ds = build_pseudo_obs(idealized=SHORT, pseudo_obs={"node_stride": 5})
    run = simulate(SHORT, years=20, seed=1).isel(member=0)
    _, months = year_month(run["time"])
    assert ds.sizes == {"time": 240, "obs": 24, "cf23_node": 56}  # the run's node fields ride along
    assert ds.attrs["model"] == "cf23" and ds.attrs["seed"] == 1 and ds.attrs["years"] == 20
    # observable 3 = SST at node 16, observed on its nearest cell (168°E); observable 12 + 3 = thermocline depth there.
    # The value is the run's 2-D field on that cell: linear in longitude between nodes 15 and 16 (168.19°E).
    node_lon = run["node_lon"].values
    frac = (168.0 - node_lon[14]) / (node_lon[15] - node_lon[14])

    def on_cell(name):
        x = run[name].values.astype(float)
        return monthly_anomalies((1 - frac) * x[:, 14] + frac * x[:, 15], months)

    expected_sst, expected_depth = on_cell("sst_anomaly"), on_cell("thermocline_depth_anomaly")
    assert float(ds["obs_lon"][3]) == 168.0
    np.testing.assert_allclose(ds["observations"].values[:, 3], expected_sst, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds["observations"].values[:, 15], expected_depth, rtol=1e-5, atol=1e-5)
    assert int(ds["obs_node"][15]) == 16
    obs = ds["observations"].values.astype(float)
    for month in range(1, 13):
        assert np.abs(obs[months == month].mean(0)).max() < 1e-4  # anomalies vs the run's own climatology
    np.testing.assert_allclose(ds["obs_error_variance"].values, 0.04 * obs.var(0), rtol=1e-4)
    # physical units: thermocline anomalies are metres (≈ 10 m), SST anomalies degrees (≈ 1 °C)
    assert 3 < np.sqrt(obs[:, 12:].var(0)).mean() < 30 and 0.1 < np.sqrt(obs[:, :12].var(0)).mean() < 2


def test_cfy22_box_observables():
    ds = build_pseudo_obs(idealized={**SHORT, "model": "cfy22"})
    assert ObservationLayout.from_dataset(ds).variable == ("sst", "sst", "thermocline_depth")
    # the kinds as CF flags (a string coordinate would read back as StringDType, which dask cannot auto-chunk)
    assert ds["obs_variable"].values.tolist() == [0, 0, 1] and ds["obs_variable"].dtype == np.int64
    assert ds["obs_variable"].attrs["flag_meanings"] == "sst thermocline_depth"
    assert ds["obs_lon_min"].values.tolist() == [160, 210, 120] and ds["obs_lon_max"].values.tolist() == [210, 270, 180]
    assert ds["obs_lat_min"].values.tolist() == [-5, -5, -5]
    np.testing.assert_allclose(ds["observations"].values[:, 0], ds["nino4"].values, atol=1e-5)
    np.testing.assert_allclose(ds["observations"].values[:, 1], ds["nino3"].values, atol=1e-5)
    layout = ObservationLayout.from_dataset(ds)
    assert layout.weights(TargetGrid()).shape == (3, 41 * 161)


def test_written_store_round_trips_and_the_layout_extracts_itself(tmp_path):
    grid = TargetGrid()
    out = make_pseudo_obs(tmp_path / "cf23.zarr", idealized=SHORT, pseudo_obs={}, grid={})
    ds = open_pseudo_obs(out)
    assert ds["observations"].dtype == np.float32 and ds.sizes["obs"] == 112
    layout = ObservationLayout.from_dataset(ds)
    lon_field = np.broadcast_to(grid.lon, grid.shape)
    y = layout.extract({"sst": lon_field, "thermocline_depth": lon_field + 1000}, grid)
    np.testing.assert_allclose(y, np.concatenate([ds["obs_lon"].values[:56], ds["obs_lon"].values[56:] + 1000]))
    # dask's automatic chunking (intake-esm's default) accepts every variable, the kind flags included
    auto = xr.open_dataset(out, engine="zarr", chunks="auto")
    assert ObservationLayout.from_dataset(auto) == layout
    # CF §3.5: flag_values of the variable's own type, also after the JSON round trip of zarr attributes
    kind = auto["obs_variable"]
    assert np.asarray(kind.attrs["flag_values"]).dtype == kind.dtype, (
        np.asarray(kind.attrs["flag_values"]).dtype,
        kind.dtype,
    )


def test_bad_grid_leaves_no_output(tmp_path):
    with pytest.raises(ConfigError):
        make_pseudo_obs(tmp_path / "x.zarr", idealized=SHORT, grid={"lon_min": 150.0, "lon_max": 280.0})
    assert list(tmp_path.iterdir()) == []
