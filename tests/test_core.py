"""Core contracts: target grid, month axis, atomic outputs, the store form, observables."""

from __future__ import annotations

import cftime
import numpy as np
import pytest
import xarray as xr

from bridging.atomic import atomic_output, write_zarr_atomic
from bridging.errors import ConfigError, InputDataError
from bridging.grid import TargetGrid
from bridging.observables import ObservationLayout
from bridging.stores import anomalies, build_store, field_anomalies, monthly_climatology, open_store, write_store
from bridging.timeaxis import month_counter, monthly_time, year_month, year_month_from_counter


def test_default_grid_shape_and_values():
    g = TargetGrid()
    assert g.shape == (41, 161)
    assert g.lat[0] == -20 and g.lat[-1] == 20 and 0.0 in g.lat
    assert g.lon[0] == 120 and g.lon[-1] == 280


def test_grid_rejects_bad_ranges():
    with pytest.raises(ConfigError, match="lat_max"):
        TargetGrid(lat_min=10, lat_max=-10)
    with pytest.raises(ConfigError, match="multiple of resolution"):
        TargetGrid(lat_min=-20, lat_max=20.5, resolution=1.0)


def test_nearest_index_wraps_longitude():
    g = TargetGrid()
    assert g.nearest_index(0.2, -100.0) == (20, int(np.flatnonzero(g.lon == 260)[0]))
    assert g.nearest_index(0.0, 126.0)[1] == 6


@pytest.mark.parametrize(
    "times",
    [
        [cftime.DatetimeNoLeap(1850, 1, 15), cftime.DatetimeNoLeap(1850, 2, 14)],
        [cftime.Datetime360Day(1850, 1, 16), cftime.Datetime360Day(1850, 2, 16)],
        [cftime.DatetimeGregorian(1850, 1, 16), cftime.DatetimeGregorian(1850, 2, 15)],
        np.array(["1850-01-16", "1850-02-15"], dtype="datetime64[ns]"),
    ],
)
def test_year_month_any_calendar(times):
    years, months = year_month(np.array(times))
    assert years.tolist() == [1850, 1850] and months.tolist() == [1, 2]


def test_month_counter_round_trip():
    c = month_counter([1999, 2000], [12, 1])
    assert np.diff(c).tolist() == [1]
    y, m = year_month_from_counter(c)
    assert y.tolist() == [1999, 2000] and m.tolist() == [12, 1]
    t = monthly_time(1, 11, 4)
    assert [(d.year, d.month) for d in t.values] == [(1, 11), (1, 12), (2, 1), (2, 2)]


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.zarr"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.mkdir()
            (tmp / "partial").write_text("x")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_replaces_existing(tmp_path):
    target = tmp_path / "a.zarr"
    write_zarr_atomic(xr.Dataset({"v": ("x", [1.0])}), target)
    write_zarr_atomic(xr.Dataset({"v": ("x", [2.0])}), target)
    assert float(xr.open_zarr(target, consolidated=False)["v"][0]) == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr"]


def _fields(n_years=4, seed=0, members=None):
    g = TargetGrid(lat_min=-2, lat_max=2, lon_min=150, lon_max=155)
    time = monthly_time(2000, 1, 12 * n_years)
    rng = np.random.default_rng(seed)
    months = np.array([d.month for d in time.values])
    seasonal = np.cos(2 * np.pi * months / 12)[:, None, None]
    shape = (time.size, *g.shape)
    sst = 27 + seasonal + rng.normal(0, 0.5, shape)
    d20 = 120 + 10 * seasonal + rng.normal(0, 5, shape)
    sst[:, 0, 0] = np.nan  # land
    d20[:, 0, 0] = np.nan
    coords = {"time": time, **g.coords()}
    da = lambda a: xr.DataArray(a, dims=("time", "lat", "lon"), coords=coords)  # noqa: E731
    return g, {"sst": da(sst), "thermocline_depth": da(d20)}


def test_store_round_trip_and_climatology(tmp_path):
    g, fields = _fields()
    ds = build_store(fields, source_id="X", source_kind="operational", climatology_period=(2000, 2002))
    assert ds["sst_climatology"].sizes == {"month": 12, "lat": 5, "lon": 6}
    assert int(ds["ocean_mask"][0, 0]) == 0 and int(ds["ocean_mask"].sum()) == 29
    expected = fields["sst"].isel(time=slice(0, 36)).values.reshape(3, 12, 5, 6).mean(0)
    np.testing.assert_allclose(ds["sst_climatology"].values, expected, rtol=1e-5)
    write_store(ds, tmp_path / "x.zarr", time_chunk=7)
    back = open_store(tmp_path / "x.zarr")
    assert back["sst"].dtype == np.float32
    assert back.attrs["climatology_period"] == "2000-2002"
    anom = field_anomalies(back, "sst")
    assert abs(float(anom.isel(time=slice(0, 36)).mean(skipna=True))) < 1e-4
    # the standardisation statistic: RMS of the anomalies over ocean cells of the climatology period
    period = anom.isel(time=slice(0, 36)).values
    np.testing.assert_allclose(
        float(back["sst_anomaly_std"]), np.sqrt(np.nanmean(period.astype(float) ** 2)), rtol=1e-5
    )
    assert 0.35 < float(back["sst_anomaly_std"]) < 0.45  # 0.5·sqrt(2/3): three years of climatology remove a third


def test_store_with_members_and_given_climatology():
    g, fields = _fields()
    base = build_store(fields, source_id="X", source_kind="operational")
    stacked = {k: xr.concat([v, v + 0.1], dim="member") for k, v in fields.items()}
    ds = build_store(
        stacked,
        source_id="bridging_X",
        source_kind="bridging",
        climatology={k: base[f"{k}_climatology"] for k in fields},
        anomaly_std={k: float(base[f"{k}_anomaly_std"]) for k in fields},
    )
    assert ds["sst"].dims == ("member", "time", "lat", "lon")
    xr.testing.assert_equal(ds["sst_climatology"], base["sst_climatology"])
    assert ds["ocean_mask"].dims == ("lat", "lon")


def test_open_store_errors(tmp_path):
    with pytest.raises(InputDataError, match="does not exist"):
        open_store(tmp_path / "missing.zarr")
    xr.Dataset({"a": ("x", [1])}).to_zarr(tmp_path / "other.zarr", zarr_format=3, consolidated=False)
    with pytest.raises(InputDataError, match="missing"):
        open_store(tmp_path / "other.zarr")
    (tmp_path / "junk.zarr").mkdir()
    (tmp_path / "junk.zarr" / "zarr.json").write_text("{not json")
    with pytest.raises(InputDataError, match="junk.zarr"):
        open_store(tmp_path / "junk.zarr")


def test_climatology_needs_every_month():
    _, fields = _fields(n_years=1)
    with pytest.raises(ValueError, match="every calendar month"):
        monthly_climatology(fields["sst"].isel(time=slice(0, 6)))


def test_anomalies_subtract_matching_month():
    _, fields = _fields(n_years=2)
    clim = monthly_climatology(fields["sst"])
    anom = anomalies(fields["sst"], clim)
    np.testing.assert_allclose(
        anom.isel(time=0).values, (fields["sst"].isel(time=0) - clim.sel(month=1)).values, equal_nan=True
    )


def test_observation_layout_points_and_extract():
    g = TargetGrid()
    node_lons = 126 + 2.8125 * np.arange(56)
    layout = ObservationLayout.points(g, ["sst"] * 56 + ["thermocline_depth"] * 56, [0.0] * 112, list(node_lons) * 2)
    assert layout.size == 112
    assert len(set(layout.lon[:56])) == 56  # distinct cells
    inside = node_lons <= g.lon[-1] + 0.5
    assert np.all(np.abs(layout.lon[:56] - node_lons)[inside] <= 0.5)
    assert layout.lon[55] == g.lon[-1]  # the easternmost node (280.69 °E) lies beyond the grid edge: nearest cell
    rng = np.random.default_rng(0)
    sst = rng.normal(size=(3, *g.shape))
    d20 = rng.normal(size=(3, *g.shape))
    y = layout.extract({"sst": sst, "thermocline_depth": d20}, g)
    i, j = g.nearest_index(0.0, node_lons[10])
    assert y.shape == (3, 112)
    np.testing.assert_allclose(y[:, 10], sst[:, i, j])
    np.testing.assert_allclose(y[:, 56 + 10], d20[:, i, j])


def test_observation_layout_box_mean_ignores_land_and_round_trips():
    g = TargetGrid()
    layout = ObservationLayout(("sst",), (-5.0,), (5.0,), (210.0,), (270.0,))
    field = np.ones((2, *g.shape))
    field[:, 20, 100] = np.nan  # a land cell inside the box
    np.testing.assert_allclose(layout.extract({"sst": field}, g), 1.0)
    ds = xr.Dataset(coords=layout.coords())
    assert ObservationLayout.from_dataset(ds) == layout
    with pytest.raises(ValueError, match="covers no ocean"):
        ObservationLayout(("sst",), (30.0,), (31.0,), (150.0,), (151.0,)).weights(g)
