"""The form of every output store: consolidated metadata in the configured zarr format, CF metadata, and the
sentinel that stands for a store in the rules (Snakemake's bookkeeping beside the store, never inside)."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import cftime
import numpy as np
import pytest
import xarray as xr
import zarr

from bridging import cf
from bridging.atomic import set_zarr_format, write_zarr_atomic
from bridging.grid import TargetGrid
from bridging.layout import sentinel
from bridging.runtime import StorePaths, write_sentinels
from bridging.stores import build_store, has_consolidated_metadata, open_store, write_store
from bridging.timeaxis import monthly_time


def _store(years=3, first_year=2000) -> xr.Dataset:
    g = TargetGrid(lat_min=-2, lat_max=2, lon_min=150, lon_max=160, resolution=2.0)
    time = monthly_time(first_year, 1, 12 * years)
    rng = np.random.default_rng(0)
    shape = (time.size, *g.shape)
    coords = {"time": time, **g.coords()}
    fields = {
        "sst": xr.DataArray(27 + rng.normal(0, 0.5, shape), dims=("time", "lat", "lon"), coords=coords),
        "thermocline_depth": xr.DataArray(120 + rng.normal(0, 5, shape), dims=("time", "lat", "lon"), coords=coords),
    }
    return build_store(fields, source_id="X", source_kind="operational", climatology_period=(2000, 2001))


@pytest.fixture
def zarr_format():
    """Restores the process' zarr format after a test that changes it."""
    before = set_zarr_format(None)
    yield set_zarr_format
    set_zarr_format(before)


@pytest.mark.parametrize("fmt", [3, 2])
def test_a_store_opens_with_plain_xarray_without_warnings(tmp_path, zarr_format, fmt):
    zarr_format(fmt)
    path = write_store(_store(), tmp_path / "x.zarr")
    assert has_consolidated_metadata(path)
    assert zarr.open_group(str(path), mode="r").metadata.zarr_format == fmt
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(path)
        assert float(ds["sst"].mean()) == pytest.approx(27, abs=0.1)
        assert open_store(path)["sst"].dtype == np.float32


def test_an_unconsolidated_store_still_opens_through_the_project_readers(tmp_path):
    """Stores of an older run (no consolidated metadata) open too, without xarray's fallback warning."""
    xr.Dataset({"a": ("x", [1.0])}).to_zarr(tmp_path / "old.zarr", zarr_format=3, consolidated=False)
    from bridging.stores import open_zarr

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(open_zarr(tmp_path / "old.zarr")["a"][0]) == 1.0


def test_zarr_format_is_checked(zarr_format):
    with pytest.raises(ValueError, match="2 or 3"):
        zarr_format(4)


def test_source_store_cf_metadata(tmp_path):
    ds = _store()
    assert cf.missing_attributes(ds) == []
    assert ds.attrs["Conventions"] == cf.CONVENTIONS
    assert ds["lat"].attrs["standard_name"] == "latitude" and ds["lon"].attrs["axis"] == "X"
    assert ds["sst"].attrs["units"] == "degC" and ds["sst"].attrs["cell_methods"] == "time: mean"
    # each monthly mean spans its month: [first day of the month, first day of the next)
    bounds = ds[cf.TIME_BOUNDS].values
    assert bounds[0, 0] == cftime.DatetimeNoLeap(2000, 1, 1) and bounds[11, 1] == cftime.DatetimeNoLeap(2001, 1, 1)
    # the climatology: CF climatological time over the climatology period
    assert ds["sst_climatology"].attrs["cell_methods"] == "time: mean within years time: mean over years"
    clim = ds[cf.CLIMATOLOGY_BOUNDS].values
    assert clim[0, 0] == cftime.DatetimeNoLeap(2000, 1, 1) and clim[11, 1] == cftime.DatetimeNoLeap(2002, 1, 1)
    assert ds.attrs["time_coverage_start"] == "2000-01" and ds.attrs["time_coverage_end"] == "2002-12"
    # written and read back: bounds decode to the same dates, the check still passes
    back = xr.open_zarr(write_store(ds, tmp_path / "x.zarr"), decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    assert back[cf.TIME_BOUNDS].values[0, 1] == cftime.DatetimeNoLeap(2000, 2, 1)
    assert cf.missing_attributes(back) == []


def test_missing_attributes_names_what_is_missing():
    ds = xr.Dataset({"v": ("x", [1.0])}, coords={"lat": ("x", [0.0])})
    problems = cf.missing_attributes(ds)
    assert "global attribute Conventions" in problems and "v: units" in problems and "v: long_name" in problems
    assert "lat: axis" in problems
    flags = xr.Dataset(
        {"f": ("x", np.int8([0]), {"long_name": "f", "flag_values": [0, 1]})}, attrs={"Conventions": "CF-1.11"}
    )
    assert cf.missing_attributes(flags) == []


def test_time_bounds_keep_the_calendar():
    time = xr.DataArray(
        np.array([cftime.DatetimeGregorian(2000, 2, 15), cftime.DatetimeGregorian(2000, 12, 15)]), dims="time"
    )
    bounds = cf.time_bounds(time).values
    assert bounds[0, 1] == cftime.DatetimeGregorian(2000, 3, 1) and bounds[1, 1] == cftime.DatetimeGregorian(2001, 1, 1)


def _snakemake(tmp_path, outputs, **params):
    named = SimpleNamespace()
    output = list(outputs.values())
    items = list(outputs.items())
    return SimpleNamespace(
        output=type("Named", (list,), {"items": lambda self: items})(output),
        rule="ingest",
        wildcards=SimpleNamespace(items=lambda: [("source", "X")]),
        params=SimpleNamespace(items=lambda: list(params.items())),
        named=named,
    )


def test_a_sentinel_is_written_after_its_store_and_names_it(tmp_path):
    store = tmp_path / "stores" / "X.zarr"
    write_zarr_atomic(xr.Dataset({"a": ("x", [1.0])}), store)
    job = _snakemake(tmp_path, {"store": sentinel(str(store)), "log": str(tmp_path / "other.txt")}, grid={"r": 1})
    assert write_sentinels(job) == [sentinel(str(store))]
    record = json.loads((tmp_path / "stores" / "X.zarr.done.json").read_text())
    assert record["store"] == str(store) and record["rule"] == "ingest" and record["wildcards"] == {"source": "X"}
    assert len(record["config_hash"]) == 16
    assert not (store / ".snakemake_timestamp").exists()
    # a job that did not write its store fails instead of writing a sentinel for nothing
    missing = _snakemake(tmp_path, {"store": sentinel(str(tmp_path / "Y.zarr"))})
    with pytest.raises(RuntimeError, match="without writing this store"):
        write_sentinels(missing)


def test_store_paths_resolve_sentinels_by_position_and_name():
    named = type("Named", (list,), {"items": lambda self: [("store", "a.zarr.done.json"), ("code", ["x.py"])]})
    paths = StorePaths(named(["a.zarr.done.json", "x.py"]))
    assert paths[0] == "a.zarr" and paths.store == "a.zarr" and paths.code == ["x.py"]
    assert dict(paths.items())["store"] == "a.zarr"
    with pytest.raises(AttributeError):
        _ = paths.other
