"""ENSO indices: box means with cos(lat) weights over ocean cells, any grid convention, any calendar."""

from __future__ import annotations

import cftime
import numpy as np
import pytest
import xarray as xr

from bridging.diagnostics.indices import (
    BOXES,
    NINO3,
    box_means,
    idealized_indices,
    indices_from_file,
    normalise_grid,
    open_monthly_field,
    store_indices,
)
from bridging.diagnostics.synthetic import synthetic_idealized_run, synthetic_store
from bridging.errors import InputDataError
from bridging.grid import TargetGrid
from bridging.observables import ObservationLayout
from bridging.stores import write_store

LAT = np.arange(-8.0, 8.0 + 0.5, 1.0)  # 17 rows, cell centres on the ±5° box edges
LON = np.arange(200.0, 280.0 + 0.5, 1.0)
N_MONTHS = 36


def constructed_field() -> tuple[xr.DataArray, np.ndarray, float]:
    """A field whose Niño 3 box mean is known by hand: value = lat-dependent constant + a(t); land cells inside
    the box (NaN) and decoy values just outside it. Returns (field, a(t), constant part of the Niño 3 mean)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal(N_MONTHS)
    row_value = 10.0 + LAT  # the value of each latitude row
    field = np.broadcast_to(row_value[None, :, None] + a[:, None, None], (N_MONTHS, LAT.size, LON.size)).copy()
    # Decoys just outside the box (plausible SSTs, far from the box values): anything leaking in changes the mean by a lot.
    field[:, np.abs(LAT) > 5.0 + 1e-9, :] = 44.0
    field[:, :, (LON < 210.0) | (LON > 270.0)] = -4.0
    land_rows = {2.0: [230.0, 231.0], -5.0: [250.0]}  # land inside the box, one on the box edge row
    for lat, lons in land_rows.items():
        for lon in lons:
            field[:, np.flatnonzero(LAT == lat)[0], np.flatnonzero(LON == lon)[0]] = np.nan
    # Hand computation: rows −5…5 (11 rows, edges included), 61 columns 210…270, minus the land cells.
    weights, values = [], []
    for lat in np.arange(-5.0, 6.0):
        n_ocean = 61 - len(land_rows.get(lat, []))
        weights.append(np.cos(np.deg2rad(lat)) * n_ocean)
        values.append(10.0 + lat)
    constant = float(np.dot(weights, values) / np.sum(weights))
    time = xr.DataArray([cftime.DatetimeNoLeap(2000 + m // 12, m % 12 + 1, 15) for m in range(N_MONTHS)], dims="time")
    da = xr.DataArray(field, dims=("time", "lat", "lon"), coords={"time": time, "lat": LAT, "lon": LON})
    return da, a, constant


def monthly_anomaly(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, float)
    months = np.arange(x.size) % 12
    return x - np.array([x[months == m].mean() for m in range(12)])[months]


def test_nino3_box_mean_matches_hand_computation():
    field, a, constant = constructed_field()
    series = box_means(field, [NINO3])["nino3"]
    np.testing.assert_allclose(series.values, constant + a, rtol=0, atol=1e-12)


def real_like_copy(field: xr.DataArray) -> xr.Dataset:
    """The same data as a real file would hold it: latitude/longitude names, −180…180, descending latitude."""
    lon180 = ((field["lon"].values + 180.0) % 360.0) - 180.0
    ds = field.assign_coords(lon=lon180).sortby("lon").isel(lat=slice(None, None, -1))
    ds = ds.rename({"lat": "latitude", "lon": "longitude"}).to_dataset(name="tos")
    ds["latitude"].attrs = {"units": "degrees_north", "standard_name": "latitude"}
    ds["longitude"].attrs = {"units": "degrees_east", "standard_name": "longitude"}
    return ds


def test_longitude_conventions_and_descending_latitude_give_the_same_index():
    field, a, constant = constructed_field()
    real = real_like_copy(field)
    assert real["longitude"].min() < 0 and np.all(np.diff(real["latitude"].values) < 0)
    normalised = normalise_grid(real, "tos")
    assert normalised.dims == ("time", "lat", "lon")
    np.testing.assert_allclose(normalised["lon"].values, LON)
    np.testing.assert_allclose(normalised["lat"].values, LAT)
    series = box_means(normalised, [NINO3])["nino3"]
    np.testing.assert_allclose(series.values, constant + a, atol=1e-12)


def test_two_dimensional_regular_coordinates_are_accepted():
    field, a, constant = constructed_field()
    lat2, lon2 = np.meshgrid(LAT, LON, indexing="ij")
    ds = xr.Dataset(
        {"sosstsst": (("time_counter", "y", "x"), field.values)},
        coords={
            "time_counter": field["time"].values,
            "nav_lat": (("y", "x"), lat2),
            "nav_lon": (("y", "x"), lon2 - 360.0),
        },
    )
    series = box_means(normalise_grid(ds, "sosstsst"), [NINO3])["nino3"]
    np.testing.assert_allclose(series.values, constant + a, atol=1e-12)


def test_curvilinear_grid_is_refused_with_the_file_name():
    field, _, _ = constructed_field()
    lat2, lon2 = np.meshgrid(LAT, LON, indexing="ij")
    lat2 = lat2 + 0.3 * np.sin(np.deg2rad(lon2))  # rows bend: a curvilinear grid
    ds = xr.Dataset(
        {"tos": (("time", "y", "x"), field.values)},
        coords={"time": field["time"].values, "lat": (("y", "x"), lat2), "lon": (("y", "x"), lon2)},
    )
    with pytest.raises(InputDataError, match=r"model\.nc: .*curvilinear"):
        normalise_grid(ds, "tos", "model.nc")


def test_box_mean_uses_the_observation_operators_convention():
    """A Niño 3 box-mean observable (ObservationLayout) and the Niño 3 index of the same field agree exactly."""
    grid = TargetGrid(-8.0, 8.0, 200.0, 280.0, 1.0)
    field, _, _ = constructed_field()
    layout = ObservationLayout(("sst",), (NINO3.lat_min,), (NINO3.lat_max,), (NINO3.lon_min,), (NINO3.lon_max,))
    observable = layout.extract({"sst": field.values}, grid)[:, 0]
    np.testing.assert_allclose(box_means(field, [NINO3])["nino3"].values, observable, atol=1e-10)


@pytest.mark.parametrize(
    "calendar_time",
    [
        lambda n: [cftime.Datetime360Day(1990 + m // 12, m % 12 + 1, 16) for m in range(n)],
        lambda n: [cftime.DatetimeGregorian(1990 + m // 12, m % 12 + 1, 1) for m in range(n)],
        lambda n: np.array([f"{1990 + m // 12}-{m % 12 + 1:02d}-15" for m in range(n)], dtype="datetime64[ns]"),
    ],
    ids=["360_day", "gregorian", "datetime64"],
)
def test_any_calendar_gives_the_same_anomalies(tmp_path, calendar_time):
    field, a, _ = constructed_field()
    real = real_like_copy(field).assign_coords(time=calendar_time(N_MONTHS))
    path = tmp_path / "tos.nc"
    real.to_netcdf(path)
    idx = indices_from_file(path, "tos")
    np.testing.assert_allclose(idx["nino3"].values, monthly_anomaly(a), atol=1e-10)


def test_gap_in_the_monthly_series_is_refused_with_the_file_name(tmp_path):
    field, _, _ = constructed_field()
    gappy = real_like_copy(field).isel(time=[*range(10), *range(11, N_MONTHS)])
    path = tmp_path / "gappy.nc"
    gappy.to_netcdf(path)
    with pytest.raises(InputDataError, match=r"gappy\.nc: not a gap-free monthly series"):
        open_monthly_field(path, "tos")


def test_missing_variable_and_missing_coordinates_name_the_file(tmp_path):
    field, _, _ = constructed_field()
    path = tmp_path / "sst.nc"
    real_like_copy(field).to_netcdf(path)
    with pytest.raises(InputDataError, match=r"sst\.nc: no variable 'thetao' \(data variables: tos\)"):
        open_monthly_field(path, "thetao")
    bare = xr.Dataset({"tos": (("time", "j", "i"), field.values)}, coords={"time": field["time"].values})
    bare_path = tmp_path / "bare.nc"
    bare.to_netcdf(bare_path)
    with pytest.raises(InputDataError, match=r"bare\.nc: .*no latitude/longitude"):
        open_monthly_field(bare_path, "tos")


def test_box_without_ocean_is_an_error_naming_the_file():
    field, _, _ = constructed_field()
    field = field.where(~((field["lon"] >= 160) & (field["lon"] <= 210)))
    with pytest.raises(InputDataError, match=r"f\.nc: the nino4 box .* holds no ocean cell"):
        box_means(field, [BOXES["nino4"]], path="f.nc")


def test_store_indices_with_members_are_member_time_anomalies(tmp_path):
    ds = synthetic_store(n_years=12, n_members=3, seed=5)
    path = tmp_path / "bridging_X.zarr"
    write_store(ds, path)
    from bridging.stores import open_store

    idx = store_indices(open_store(path))
    assert set(idx.data_vars) == {"nino3", "nino34", "nino4", "wp_thermocline"}
    assert idx["nino3"].dims == ("member", "time")
    # Anomalies against one climatology pooled over members: each calendar month averages to zero over all members.
    months = np.arange(idx.sizes["time"]) % 12
    for m in range(12):
        assert abs(float(idx["nino3"].values[:, months == m].mean())) < 1e-9
    assert idx["wp_thermocline"].attrs["units"] == "m"


def test_idealized_indices_are_re_referenced_to_their_own_climatology():
    run = synthetic_idealized_run(n_years=20, n_members=2, seed=1)
    idx, operator = idealized_indices(run)  # no node fields: the run's own box variables
    assert "own box variables" in operator
    assert idx["nino3"].dims == ("member", "time")
    for member in range(2):
        # The raw series carries a seasonal mean; the index is its anomaly against the pooled monthly climatology.
        raw = run["nino3"].values
        months = np.arange(raw.shape[1]) % 12
        clim = np.array([raw[:, months == m].mean() for m in range(12)])
        np.testing.assert_allclose(idx["nino3"].values[member], raw[member] - clim[months], atol=1e-12)
    with pytest.raises(InputDataError, match="lacks the index variables"):
        idealized_indices(run.drop_vars("nino4"), "run.zarr")
