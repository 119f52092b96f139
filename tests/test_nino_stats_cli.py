"""``bridging nino-stats``: the workflow's numbers for any monthly SST file, errors naming the file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cftime
import numpy as np
import pytest
import xarray as xr

from bridging.cli import main
from bridging.diagnostics.run import gridded_source_diagnostics
from bridging.diagnostics.synthetic import synthetic_store
from bridging.stores import write_store


def real_like_file(ds: xr.Dataset, path: Path) -> Path:
    """The store's SST as a CMIP-like file: ``tos`` on latitude/longitude with longitudes −180…180, latitude
    descending, _FillValue 1e20 on land, a 365_day calendar with time bounds and a different day of month."""
    sst = ds["sst"]
    lon180 = ((sst["lon"].values + 180.0) % 360.0) - 180.0
    tos = sst.assign_coords(lon=lon180).sortby("lon").isel(lat=slice(None, None, -1))
    tos = tos.rename({"lat": "latitude", "lon": "longitude"})
    n = tos.sizes["time"]
    years = np.array([t.year for t in sst["time"].values])
    months = np.array([t.month for t in sst["time"].values])
    time = [cftime.datetime(y, m, 16, 12, calendar="365_day") for y, m in zip(years, months)]
    bounds = np.array(
        [
            [
                cftime.datetime(y, m, 1, calendar="365_day"),
                cftime.datetime(y + m // 12, m % 12 + 1, 1, calendar="365_day"),
            ]
            for y, m in zip(years, months)
        ]
    )
    out = xr.Dataset({"tos": tos.assign_coords(time=time)})
    out["time_bnds"] = (("time", "bnds"), bounds)
    out["time"].attrs["bounds"] = "time_bnds"
    out["tos"].attrs = {"standard_name": "sea_surface_temperature", "units": "degC"}
    out["latitude"].attrs = {"standard_name": "latitude", "units": "degrees_north"}
    out["longitude"].attrs = {"standard_name": "longitude", "units": "degrees_east"}
    encoding = {
        "tos": {"_FillValue": 1e20, "dtype": "float32"},
        "time": {"units": "days since 1850-01-01", "calendar": "365_day"},
    }
    out.to_netcdf(path, encoding=encoding)
    assert n == out.sizes["time"]
    return path


@pytest.fixture(scope="module")
def store_and_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("nino_stats")
    ds = synthetic_store(n_years=40, skew_coefficient=0.2, seed=8, source_id="CLI")
    store = root / "CLI.zarr"
    write_store(ds, store)
    return store, real_like_file(ds, root / "tos_Omon_CLI_historical_r1i1p1f1_gn_195001-198912.nc")


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["nino-stats", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_real_layout_file_and_store_give_the_same_numbers(store_and_file, capsys):
    store, nc = store_and_file
    code, out, _ = run_cli(capsys, nc, "--variable", "tos", "--json")
    assert code == 0
    from_file = json.loads(out)
    for key in ("nino3", "nino34", "nino4"):
        assert set(from_file[key]) >= {"std", "skewness", "kurtosis"}
    assert set(from_file["events"]) >= {"ep", "cp", "la_nina"}
    code, out, _ = run_cli(capsys, store, "--json")
    from_store = json.loads(out)
    for key in ("nino3", "nino34", "nino4"):
        for moment in ("std", "skewness", "kurtosis"):
            # float32 storage on both sides; only the summation order differs.
            assert from_file[key][moment] == pytest.approx(from_store[key][moment], rel=1e-5)
    assert from_file["events"] == from_store["events"]
    assert from_file["events"]["winters"] == 39


def test_cli_reports_exactly_what_the_workflow_computes(store_and_file, capsys, tmp_path):
    store, _ = store_and_file
    code, out, _ = run_cli(capsys, store, "--json")
    cli = json.loads(out)
    record = gridded_source_diagnostics(
        store,
        statistics=tmp_path / "statistics.json",
        indices=tmp_path / "indices.nc",
        maps=tmp_path / "maps.nc",
        diagnostics={"bootstrap_samples": 20},
    )
    for key in ("nino3", "nino34", "nino4"):
        for moment in ("std", "skewness", "kurtosis"):
            assert cli[key][moment] == record["indices"][key][moment]["value"]
    assert {k: cli["events"][k] for k in ("ep", "cp", "la_nina", "extreme_ep")} == record["events"]["counts"]


def test_event_thresholds_come_from_config_files(store_and_file, capsys, tmp_path):
    store, _ = store_and_file
    config = tmp_path / "strict.yaml"
    config.write_text("diagnostics:\n  event_threshold: 1.0\n  extreme_threshold: 3.0\n")
    _, out, _ = run_cli(capsys, store, "--json")
    _, strict_out, _ = run_cli(capsys, store, "--json", "--config", config)
    default, strict = json.loads(out)["events"], json.loads(strict_out)["events"]
    assert strict["ep"] + strict["cp"] < default["ep"] + default["cp"]


def test_table_output(store_and_file, capsys):
    store, _ = store_and_file
    code, out, _ = run_cli(capsys, store)
    assert code == 0
    assert "nino34" in out and "DJF events in 39 winters" in out


def test_errors_name_the_file(store_and_file, capsys, tmp_path):
    _, nc = store_and_file
    code, _, err = run_cli(capsys, nc, "--variable", "sst")
    assert code == 2 and nc.name in err and "no variable 'sst'" in err
    daily = tmp_path / "daily.nc"
    days = xr.date_range("2000-01-01", periods=400, freq="D", use_cftime=True)
    xr.Dataset(
        {"sst": (("time", "lat", "lon"), np.zeros((400, 3, 4)))},
        coords={"time": days, "lat": [-1.0, 0.0, 1.0], "lon": [200.0, 220.0, 240.0, 260.0]},
    ).to_netcdf(daily)
    code, _, err = run_cli(capsys, daily)
    assert code == 2 and "daily.nc" in err and "not a gap-free monthly series" in err
    nolatlon = tmp_path / "nolatlon.nc"
    xr.Dataset(
        {"sst": (("time", "j", "i"), np.zeros((24, 3, 4)))},
        coords={"time": xr.date_range("2000-01-01", periods=24, freq="MS")},
    ).to_netcdf(nolatlon)
    code, _, err = run_cli(capsys, nolatlon)
    assert code == 2 and "nolatlon.nc" in err and "no latitude/longitude" in err
    code, _, err = run_cli(capsys, tmp_path / "missing.nc")
    assert code == 2 and "missing.nc: file does not exist" in err


def test_installed_entry_point(store_and_file):
    store, _ = store_and_file
    exe = Path(sys.executable).parent / "bridging"
    proc = subprocess.run([str(exe), "nino-stats", str(store), "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n_months"] == 480


def _variant(nc: Path, out: Path, *, units: str, scale: float = 1.0, offset: float = 0.0, grid: str = "1d") -> Path:
    """The CMIP-like file with other temperature units and another coordinate layout: ``1d`` keeps 1-D
    latitude/longitude; ``nav`` stores them as NEMO's 2-D nav_lat/nav_lon on (y, x) dims, with CF attributes only;
    ``attrs`` renames the 1-D axes to names no list knows (yc/xc), found by their standard_name and units alone."""
    ds = xr.open_dataset(nc, decode_times=False)
    ds["tos"] = ds["tos"] * scale + offset
    ds["tos"].attrs = {"standard_name": "sea_surface_temperature", "units": units}
    if grid == "nav":
        lat2, lon2 = np.meshgrid(ds["latitude"].values, ds["longitude"].values, indexing="ij")
        ds = ds.rename({"latitude": "y", "longitude": "x"}).drop_vars(["y", "x"])
        ds["nav_lat"] = (("y", "x"), lat2, {"standard_name": "latitude", "units": "degrees_north"})
        ds["nav_lon"] = (("y", "x"), lon2, {"standard_name": "longitude", "units": "degrees_east"})
        ds = ds.set_coords(["nav_lat", "nav_lon"])
    elif grid == "attrs":
        ds = ds.rename({"latitude": "yc", "longitude": "xc"})
    ds.to_netcdf(out, encoding={"tos": {"_FillValue": 1e20, "dtype": "float32"}})
    return out


@pytest.mark.parametrize(
    "units, scale, offset, grid",
    [("degree_Celsius", 1.0, 0.0, "1d"), ("degree_Celsius", 1.0, 0.0, "nav"), ("K", 1.0, 273.15, "attrs")],
)
def test_any_udunits_temperature_and_cf_coordinates(store_and_file, capsys, tmp_path, units, scale, offset, grid):
    """The issue's acceptance: SST in "degree_Celsius" on latitude/longitude, and on 2-D nav_lat/nav_lon with CF
    attributes, give the numbers of the file in degC on lat/lon (kelvins on unlisted names too)."""
    _, nc = store_and_file
    _, out, _ = run_cli(capsys, nc, "--variable", "tos", "--json")
    reference = json.loads(out)
    variant = _variant(nc, tmp_path / f"{grid}.nc", units=units, scale=scale, offset=offset, grid=grid)
    code, out, err = run_cli(capsys, variant, "--variable", "tos", "--json")
    assert code == 0, err
    result = json.loads(out)
    for key in ("nino3", "nino34", "nino4"):
        for moment in ("std", "skewness", "kurtosis"):
            assert result[key][moment] == pytest.approx(reference[key][moment], rel=1e-4, abs=1e-6)
    assert result["events"] == reference["events"]


def test_units_that_are_not_a_temperature_are_refused(store_and_file, capsys, tmp_path):
    _, nc = store_and_file
    variant = _variant(nc, tmp_path / "kg.nc", units="kg")
    code, out, err = run_cli(capsys, variant, "--variable", "tos")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(variant) in err and "tos: units 'kg' ([mass]) are not a temperature" in err
