"""Readers of the real CMIP6 Omon (CESM2, GFDL-CM4) and ORAS5 layouts: normalisation, calendars, units, and every
kind of bad input giving an error that names the file and the problem."""

from __future__ import annotations

import shutil

import netCDF4
import numpy as np
import pytest
import xarray as xr

from bridging.errors import InputDataError
from bridging.fixtures import consecutive_months, regular_grid, write_gfdl_cm4_omon
from bridging.fixtures.mock import MOCK_DEPTHS, linear_profiles, mock_cesm2, mock_gfdl_cm4, mock_oras5
from bridging.io.readers import input_files, open_variable
from bridging.timeaxis import year_month


def _months_of(ds):
    years, months = year_month(ds["time"])
    return np.stack([years, months], axis=1)


def _set_attr(path, variable, **attrs):
    with netCDF4.Dataset(path, "a") as nc:
        for key, value in attrs.items():
            nc[variable].setncattr(key, value)


# ---------------------------------------------------------------------------------------------------------------
# The real layouts
# ---------------------------------------------------------------------------------------------------------------


def test_cesm2_tos_and_thetao_are_normalised(tmp_path):
    src = mock_cesm2(tmp_path, n_years=2)
    with netCDF4.Dataset(src.files["thetao"][0]) as nc:  # the layout really is CESM2's
        assert nc["thetao"].dimensions == ("time", "lev", "nlat", "nlon")
        assert nc["lev"].units == "centimeters" and nc["lev"][0] == pytest.approx(500.0)
        assert nc["lev_bnds"][0, 1] == pytest.approx(10.0)  # bounds in metres
        assert nc["time"].calendar == "noleap" and nc["time"].units.startswith("days since 0001-01-01")
        assert "d2" in nc.dimensions and "vertices" in nc.dimensions

    sst = open_variable(src.files["tos"], "tos")
    assert sst["sst"].dims == ("time", "y", "x")
    assert sst["sst"].chunks is not None, "readers must stay lazy"
    np.testing.assert_allclose(sst["sst"].values, src.sst, atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(sst["lat"].values, src.grid.lat)
    np.testing.assert_allclose(sst["lon"].values, src.grid.lon, atol=1e-9)
    assert np.all((sst["lon"].values >= 0) & (sst["lon"].values < 360))
    assert np.array_equal(_months_of(sst), src.months)
    assert input_files(sst) == [str(p) for p in src.files["tos"]]

    thetao = open_variable(src.files["thetao"], "thetao")
    assert thetao["thetao"].dims == ("time", "depth", "y", "x")
    np.testing.assert_allclose(thetao["depth"].values, MOCK_DEPTHS)  # centimetres → metres
    assert thetao["thetao"].attrs["units"] == "degC"
    assert thetao["thetao"].chunks is not None


@pytest.mark.parametrize("calendar", ["noleap", "365_day", "360_day", "gregorian", "proleptic_gregorian"])
def test_calendars_map_to_year_month(tmp_path, calendar):
    src = mock_cesm2(tmp_path, first_year=1850, n_years=1, calendar=calendar, with_thetao=False)
    ds = open_variable(src.files["tos"], "tos")
    assert np.array_equal(_months_of(ds), src.months)
    assert ds["time"].values[0].calendar == "noleap"  # the project's month stamps


def test_time_bounds_decide_the_month_when_stamps_sit_at_month_ends(tmp_path):
    src = mock_cesm2(tmp_path, n_years=1, with_thetao=False)
    path = src.files["tos"][0]
    with netCDF4.Dataset(path, "a") as nc:  # stamp each mean at the end of its month (first of the next)
        nc["time"][:] = nc["time_bnds"][:, 1]
    assert np.array_equal(_months_of(open_variable(path, "tos")), src.months)


def test_kelvin_and_degc_spellings(tmp_path):
    src = mock_cesm2(tmp_path / "k", n_years=1, tos_units="K", thetao_units="K")
    np.testing.assert_allclose(open_variable(src.files["tos"], "tos")["sst"].values, src.sst, atol=1e-4, equal_nan=True)
    t = open_variable(src.files["thetao"], "thetao")["thetao"].values
    np.testing.assert_allclose(
        t, linear_profiles(src.sst, src.thermocline_depth, MOCK_DEPTHS), atol=1e-4, equal_nan=True
    )
    for units in ("C", "degC", "deg_C", "°C", "Celsius", "degrees_C", "degree_Celsius"):
        o = mock_oras5(tmp_path / f"o{len(units)}{units[-1]}", first_year=2014, n_years=1, sst_units="C")
        for p in o.files["sosstsst"]:
            _set_attr(p, "sosstsst", units=units)
        np.testing.assert_allclose(open_variable(o.files["sosstsst"])["sst"].values, o.sst, atol=1e-5, equal_nan=True)
    o = mock_oras5(tmp_path / "ok", first_year=2014, n_years=1, sst_units="K")
    np.testing.assert_allclose(open_variable(o.files["sosstsst"])["sst"].values, o.sst, atol=1e-4, equal_nan=True)


def test_gfdl_tripolar_multifile_with_negative_longitudes(tmp_path):
    src = mock_gfdl_cm4(tmp_path, first_year=2003, n_years=8, tos_years_per_file=2, thetao_years_per_file=5)
    names = [p.name for p in src.files["thetao"]]
    assert names == [
        "thetao_Omon_GFDL-CM4_historical_r1i1p1f1_gn_200301-200412.nc",  # 5-year files aligned to 1850
        "thetao_Omon_GFDL-CM4_historical_r1i1p1f1_gn_200501-200912.nc",
        "thetao_Omon_GFDL-CM4_historical_r1i1p1f1_gn_201001-201012.nc",
    ]
    with netCDF4.Dataset(src.files["tos"][0]) as nc:
        assert nc["tos"].dimensions == ("time", "y", "x")
        assert nc["lon"][:].min() < -100 and nc["lon"][:].max() <= 60  # the −300…60 convention
        assert nc["x"].ndim == 1 and nc["y"].ndim == 1 and nc["time"].calendar_type == "noleap"
    # files given in any order are sorted by time
    tos = open_variable(src.files["tos"][::-1], "tos")
    assert np.array_equal(_months_of(tos), src.months)
    np.testing.assert_allclose(tos["sst"].values, src.sst, atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(tos["lon"].values, src.grid.lon, atol=1e-9)
    thetao = open_variable(src.files["thetao"], "thetao")
    assert thetao.sizes["time"] == 96 and np.array_equal(_months_of(thetao), src.months)


def test_gfdl_calendar_type_only(tmp_path):
    src = mock_gfdl_cm4(tmp_path, n_years=1, calendar="360_day", calendar_attrs=("calendar_type",), with_thetao=False)
    with netCDF4.Dataset(src.files["tos"][0]) as nc:
        assert "calendar" not in nc["time"].ncattrs()
    assert np.array_equal(_months_of(open_variable(src.files["tos"], "tos")), src.months)


def test_gfdl_gr_regular_one_dimensional_grid(tmp_path):
    src = mock_gfdl_cm4(tmp_path, grid_label="gr", n_years=1, resolution=5.0)
    with netCDF4.Dataset(src.files["tos"][0]) as nc:
        assert nc["lat"].dimensions == ("lat",) and nc["lon"].dimensions == ("lon",)
    ds = open_variable(src.files["tos"], "tos")
    assert ds["lat"].dims == ("y", "x") and ds.attrs["grid_layout"] == "regular"
    np.testing.assert_allclose(ds["sst"].values, src.sst, atol=1e-5, equal_nan=True)


def test_oras5_monthly_files_cons_oper_and_nav_coordinates(tmp_path):
    src = mock_oras5(tmp_path, first_year=2014, n_years=2)
    names = sorted(p.name for p in src.files["sosstsst"])
    assert "sosstsst_control_monthly_highres_2D_201412_CONS_v0.1.nc" in names
    assert "sosstsst_control_monthly_highres_2D_201501_OPER_v0.1.nc" in names
    with netCDF4.Dataset(src.files["so20chgt"][0]) as nc:
        assert set(nc.dimensions) == {"time_counter", "y", "x"} and "x" not in nc.variables
        assert nc["nav_lon"][:].min() < 0  # −180…180
    sst = open_variable(src.files["sosstsst"])
    assert np.array_equal(_months_of(sst), src.months)
    np.testing.assert_allclose(sst["sst"].values, src.sst, atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(sst["lon"].values, src.grid.lon, atol=1e-4)
    depth = open_variable(src.files["so20chgt"], "so20chgt")
    np.testing.assert_allclose(depth["thermocline_depth"].values, src.thermocline_depth, atol=1e-3, equal_nan=True)
    # The month comes from the file name, whatever time_counter says.
    other = mock_oras5(tmp_path / "other", first_year=2014, n_years=1)
    for path in other.files["sosstsst"]:
        with netCDF4.Dataset(path, "a") as nc:
            nc["time_counter"][:] = [0.0]
    assert np.array_equal(_months_of(open_variable(other.files["sosstsst"])), other.months)


def test_latitude_longitude_names_and_nan_or_attribute_free_fill_values(tmp_path):
    src = mock_cesm2(tmp_path / "c", n_years=1, with_thetao=False)
    raw = xr.open_dataset(src.files["tos"][0], decode_times=False, mask_and_scale=False)
    renamed = raw.rename({"lat": "latitude", "lon": "longitude"})
    renamed["tos"].attrs = {k: v for k, v in raw["tos"].attrs.items() if k not in ("missing_value", "_FillValue")}
    path = tmp_path / "renamed_1e20_without_attribute.nc"
    renamed.to_netcdf(path, encoding={"tos": {"_FillValue": None}})
    with netCDF4.Dataset(path) as nc:
        assert "latitude" in nc.variables and not {"_FillValue", "missing_value"} & set(nc["tos"].ncattrs())
    ds = open_variable(path, "tos")
    np.testing.assert_allclose(ds["sst"].values, src.sst, atol=1e-5, equal_nan=True)
    # Nominal 1-D lat/lon beside the true 2-D positions: the 2-D ones are the cell positions.
    nominal = renamed.assign_coords(
        lat=("nlat", renamed["latitude"].values.mean(axis=1)), lon=("nlon", renamed["longitude"].values.mean(axis=0))
    )
    path = tmp_path / "nominal_and_true.nc"
    nominal.to_netcdf(path, encoding={"tos": {"_FillValue": None}})
    np.testing.assert_allclose(open_variable(path, "tos")["lat"].values, src.grid.lat)

    nan_filled = raw.copy()
    nan_filled["tos"] = nan_filled["tos"].where(nan_filled["tos"] < 1e19)
    nan_filled["tos"].attrs = {k: v for k, v in raw["tos"].attrs.items() if k not in ("missing_value", "_FillValue")}
    path = tmp_path / "nan_fill.nc"
    nan_filled.to_netcdf(path, encoding={"tos": {"_FillValue": np.float32(np.nan)}})
    np.testing.assert_allclose(open_variable(path, "tos")["sst"].values, src.sst, atol=1e-5, equal_nan=True)


def test_years_select_whole_years_and_skip_other_files(tmp_path):
    src = mock_gfdl_cm4(tmp_path, first_year=2003, n_years=8, tos_years_per_file=2, with_thetao=False)
    # 2-year files aligned to 1850: 2003, 2004–2005, 2006–2007, 2008–2009, 2010
    ds = open_variable(src.files["tos"], "tos", years=(2006, 2007))
    assert np.array_equal(_months_of(ds), consecutive_months(2006, 24))
    assert [p.rsplit("_", 1)[1] for p in input_files(ds)] == ["200601-200712.nc"]
    ds = open_variable(src.files["tos"], "tos", years=(2005, 2006))
    assert np.array_equal(_months_of(ds), consecutive_months(2005, 24)) and len(input_files(ds)) == 2
    with pytest.raises(InputDataError, match="does not include every month of 2001–2004"):
        open_variable(src.files["tos"], "tos", years=(2001, 2004))


# ---------------------------------------------------------------------------------------------------------------
# Bad input: every error names the file and the problem
# ---------------------------------------------------------------------------------------------------------------


def test_missing_variable(tmp_path):
    src = mock_cesm2(tmp_path, n_years=1, with_thetao=False)
    path = src.files["tos"][0]
    with pytest.raises(InputDataError, match=r"has no variable 'thetao'") as err:
        open_variable(path, "thetao")
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "units, message", [("kg", r"tos: units 'kg' \(\[mass\]\) are not a temperature"), ("furlongs", "not a temperature")]
)
def test_units_that_are_not_a_temperature_are_refused(tmp_path, units, message):
    src = mock_cesm2(tmp_path, n_years=1, with_thetao=False)
    _set_attr(src.files["tos"][0], "tos", units=units)
    with pytest.raises(InputDataError, match=message) as err:
        open_variable(src.files["tos"], "tos")
    assert str(src.files["tos"][0]) in str(err.value) and "\n" not in str(err.value)


def test_levels_in_units_that_are_not_a_length_are_refused(tmp_path):
    src = mock_cesm2(tmp_path, n_years=1)
    _set_attr(src.files["thetao"][0], "lev", units="zorks")
    with pytest.raises(InputDataError, match="vertical coordinate 'lev': unknown length units 'zorks'"):
        open_variable(src.files["thetao"], "thetao")


def test_any_udunits_length_converts_the_levels(tmp_path):
    src = mock_cesm2(tmp_path, n_years=1)
    reference = open_variable(src.files["thetao"], "thetao")["depth"].values
    for path in src.files["thetao"]:
        with netCDF4.Dataset(path, "a") as nc:  # centimetres → decimetres
            nc["lev"][:] = nc["lev"][:] / 10.0
            nc["lev"].units = "dm"
    np.testing.assert_allclose(open_variable(src.files["thetao"], "thetao")["depth"].values, reference)


def test_mislabelled_kelvin_is_implausible(tmp_path):
    src = mock_cesm2(tmp_path, n_years=1, tos_units="K", with_thetao=False)
    _set_attr(src.files["tos"][0], "tos", units="degC")
    with pytest.raises(InputDataError, match="implausible for units 'degC'.*mislabelled"):
        open_variable(src.files["tos"], "tos")


def test_unknown_grid_layout(tmp_path):
    src = mock_gfdl_cm4(tmp_path, n_years=1, with_thetao=False)
    raw = xr.open_dataset(src.files["tos"][0], decode_times=False)
    # Only the 1-D "projection" x/y remain: nominal, not the cell positions.
    path = tmp_path / "no_lat_lon.nc"
    raw.drop_vars(["lat", "lon", "lat_bnds", "lon_bnds"]).to_netcdf(path)
    with pytest.raises(InputDataError, match="unknown grid layout: no latitude/longitude") as err:
        open_variable(path, "tos")
    assert str(path) in str(err.value)
    odd = raw.copy()
    odd["lat"] = odd["lat"].isel(x=0)  # 1-D lat on y with 2-D lon: neither layout
    path = tmp_path / "mixed.nc"
    odd.to_netcdf(path)
    with pytest.raises(InputDataError, match="unknown grid layout"):
        open_variable(path, "tos")


def _write_tos(root, months, grid=None, **kw):
    grid = grid or regular_grid(resolution=10.0)
    from bridging.fixtures.mock import smooth_sst

    ym = np.asarray(months)
    sst = smooth_sst(grid.lat, grid.lon, ym[:, 0] * 12 + ym[:, 1] - 1)
    return write_gfdl_cm4_omon(root, grid=grid, months=ym, tos=sst, **kw)["tos"]


def test_overlapping_and_duplicated_months_across_files(tmp_path):
    a = _write_tos(tmp_path / "a", consecutive_months(2000, 24), tos_years_per_file=None)
    b = _write_tos(tmp_path / "b", consecutive_months(2001, 24), tos_years_per_file=None)
    with pytest.raises(InputDataError, match=r"overlapping months 2001-01…2001-12") as err:
        open_variable(a + b, "tos")
    assert str(a[0]) in str(err.value) and str(b[0]) in str(err.value)
    c = _write_tos(tmp_path / "c", consecutive_months(2001, 1, first_month=12), tos_years_per_file=None)
    with pytest.raises(InputDataError, match=r"duplicate month 2001-12"):
        open_variable(a + c, "tos")
    with pytest.raises(InputDataError, match="listed more than once"):
        open_variable(a + a, "tos")


def test_duplicate_non_monotonic_and_gappy_months_inside_a_file(tmp_path):
    months = consecutive_months(2000, 12)
    dup = _write_tos(tmp_path / "dup", np.concatenate([months[:6], months[5:]]), tos_years_per_file=None)
    with pytest.raises(InputDataError, match="duplicate month 2000-06") as err:
        open_variable(dup, "tos")
    assert str(dup[0]) in str(err.value)
    backwards = _write_tos(tmp_path / "back", months[[0, 1, 3, 2, 4]], tos_years_per_file=None)
    with pytest.raises(InputDataError, match="time is not increasing: record 3 is 2000-03 after 2000-04"):
        open_variable(backwards, "tos")
    gap = _write_tos(tmp_path / "gap", np.delete(months, [4, 5], axis=0), tos_years_per_file=None)
    with pytest.raises(InputDataError, match=r"missing months inside the file: 2000-05…2000-06"):
        open_variable(gap, "tos")


def test_gap_between_files(tmp_path):
    files = _write_tos(tmp_path, consecutive_months(2000, 36), tos_years_per_file=1)
    with pytest.raises(InputDataError, match=r"missing months 2001-01…2001-12 between") as err:
        open_variable([files[0], files[2]], "tos")
    assert files[0].name in str(err.value) and files[2].name in str(err.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_or_truncated_file(tmp_path, damage):
    src = mock_cesm2(tmp_path, n_years=1, with_thetao=True)
    path = src.files["thetao"][0]
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"CDF\x01" + bytes(range(256)) * 40)
    else:
        path.write_bytes(b"")
    with pytest.raises(InputDataError, match="corrupt|truncated|cannot be read") as err:
        open_variable(path, "thetao")
    assert str(path) in str(err.value)


def test_truncated_classic_netcdf_fails_when_opened_not_later(tmp_path):
    """netCDF-3 files have no checksums: truncation shows only when the missing records are read (the probe)."""
    src = mock_cesm2(tmp_path, n_years=1, with_thetao=False)
    classic = tmp_path / "classic.nc"
    xr.open_dataset(src.files["tos"][0], decode_times=False, mask_and_scale=False).to_netcdf(
        classic, format="NETCDF3_64BIT"
    )
    size = classic.stat().st_size
    with open(classic, "r+b") as fh:
        fh.truncate(size - size // 4)
    with pytest.raises(InputDataError, match="corrupt|truncated") as err:
        open_variable(classic, "tos")
    assert str(classic) in str(err.value)


def test_missing_file_and_time_without_units(tmp_path):
    with pytest.raises(InputDataError, match="file does not exist"):
        open_variable(tmp_path / "nope.nc", "tos")
    src = mock_cesm2(tmp_path, n_years=1, with_thetao=False)
    with netCDF4.Dataset(src.files["tos"][0], "a") as nc:
        nc["time"].delncattr("units")
    with pytest.raises(InputDataError, match="no CF units"):
        open_variable(src.files["tos"], "tos")


def test_files_on_different_grids_or_with_different_variables(tmp_path):
    a = _write_tos(tmp_path / "a", consecutive_months(2000, 12), tos_years_per_file=None)
    b = _write_tos(
        tmp_path / "b", consecutive_months(2001, 12), grid=regular_grid(resolution=5.0), tos_years_per_file=None
    )
    with pytest.raises(InputDataError, match="horizontal grids"):
        open_variable(a + b, "tos")
    src = mock_cesm2(tmp_path / "c", n_years=1)
    shutil.copy(src.files["thetao"][0], tmp_path / "thetao_copy.nc")
    with pytest.raises(InputDataError, match="expected exactly one of the variables|different variables"):
        open_variable(src.files["tos"] + [tmp_path / "thetao_copy.nc"])


def test_depth_in_centimetres_with_unattributed_fill_values(tmp_path):
    """1e20 without a _FillValue attribute must be masked before a cm → m scaling makes it look like 1e18 m."""
    src = mock_oras5(tmp_path / "o", first_year=2014, n_years=1)
    out_dir = tmp_path / "cm"
    out_dir.mkdir()
    for path in src.files["so20chgt"]:
        raw = xr.open_dataset(path, decode_times=False, mask_and_scale=False)
        d = raw["so20chgt"]
        raw["so20chgt"] = d.where(d >= 1e19, d * 100.0)
        raw["so20chgt"].attrs = {"units": "cm", "long_name": d.attrs["long_name"]}
        raw.to_netcdf(out_dir / path.name, encoding={"so20chgt": {"_FillValue": None}})
    ds = open_variable(sorted(out_dir.iterdir()), "so20chgt")
    np.testing.assert_allclose(ds["thermocline_depth"].values, src.thermocline_depth, rtol=1e-6, equal_nan=True)
