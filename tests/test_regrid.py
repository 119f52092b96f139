"""Regridding from curvilinear / tripolar / regular ocean grids to the target grid: accuracy, land awareness,
longitude wrap, the static-mask check, and the saved weights."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
import xarray as xr

from bridging.errors import InputDataError
from bridging.fixtures import (
    CurvilinearGrid,
    gx1_like_global_grid,
    gx1_like_grid,
    orca_like_grid,
    pacific_land_mask,
    regular_grid,
)
from bridging.fixtures.mock import mock_gfdl_cm4, mock_oras5, smooth_sst
from bridging.grid import TargetGrid
from bridging.io.readers import open_variable
from bridging.regrid import (
    SourceMaskChangedError,
    compute_weights,
    grid_fingerprint,
    load_weights,
    regrid,
    regrid_array,
    save_weights,
)

TARGET = TargetGrid()
TLAT, TLON = np.meshgrid(TARGET.lat, TARGET.lon, indexing="ij")
OCEAN_TARGETS = ~pacific_land_mask(TLAT, TLON)


def field(lat, lon):
    return smooth_sst(lat, lon, np.array([5]))[0]


GRIDS = {
    "gx1-like 1°": lambda: gx1_like_grid(resolution=1.0),
    "ORCA-like 1°": lambda: orca_like_grid(resolution=1.0),
}


@pytest.fixture(scope="module", params=list(GRIDS))
def grid(request) -> CurvilinearGrid:
    return GRIDS[request.param]()


def _source_values(grid, land_value=np.nan):
    values = field(grid.lat, grid.lon)
    return np.where(grid.ocean, values, land_value)


@pytest.mark.parametrize("method, tolerance", [("bilinear", 0.01), ("idw", 0.02), ("nearest", 0.03)])
def test_smooth_field_within_tolerance_at_every_ocean_target(grid, method, tolerance):
    """bilinear: within 1 % of the field's range at every ocean target point, coasts included."""
    weights = compute_weights(grid.lat, grid.lon, grid.ocean, TARGET, method=method)
    out = regrid_array(_source_values(grid)[None], weights)[0]
    truth = field(TLAT, TLON)
    value_range = np.ptp(truth[OCEAN_TARGETS])
    assert np.isfinite(out[OCEAN_TARGETS]).all(), "an ocean target got no value"
    error = np.abs(out - truth)[OCEAN_TARGETS] / value_range
    assert error.max() < tolerance, f"{method}: max error {error.max():.2%} of the range"
    # Targets far inland are NaN (nothing within max_distance_deg), e.g. central Australia.
    i, j = TARGET.nearest_index(-19.0, 135.0)
    assert np.isnan(out[i, j])


@pytest.mark.parametrize("method", ["bilinear", "idw", "nearest"])
def test_constant_stays_constant_and_land_never_leaks(grid, method):
    weights = compute_weights(grid.lat, grid.lon, grid.ocean, TARGET, method=method)
    const = regrid_array(np.where(grid.ocean, 7.25, np.nan)[None], weights)[0]
    assert np.nanmax(np.abs(const - 7.25)) < 1e-6
    clean = regrid_array(_source_values(grid)[None], weights)[0]
    huge_land = regrid_array(_source_values(grid, land_value=1e30)[None], weights)[0]
    np.testing.assert_array_equal(huge_land, clean)
    rows = weights.matrix.tocsr()
    np.testing.assert_allclose(np.asarray(rows.sum(axis=1)).ravel()[np.diff(rows.indptr) > 0], 1.0, atol=1e-12)
    assert grid.ocean.ravel()[rows.indices].all(), "a land point got weight"


def test_bilinear_uses_cells_and_coastal_planes():
    grid = gx1_like_grid(resolution=1.0)
    weights = compute_weights(grid.lat, grid.lon, grid.ocean, TARGET)
    assert weights.stats["bilinear"] > 0.8 * TARGET.lat.size * TARGET.lon.size
    assert weights.stats["coastal_plane"] > 50  # coasts are handled to first order, not by renormalisation


def test_coastal_cells_do_not_reach_across_a_one_cell_isthmus():
    """Two basins split by one column of land (a Panama at grid scale): each coast sees only its own basin."""
    grid = regular_grid(resolution=1.0, land=False)
    wall = np.isclose(grid.lon, 200.5)
    grid = CurvilinearGrid(grid.lat, grid.lon, ~wall)
    values = np.where(grid.lon < 200.0, 0.0, 10.0)
    weights = compute_weights(grid.lat, grid.lon, grid.ocean, TARGET)
    assert weights.stats["coastal_plane"] > 0
    out = regrid_array(np.where(grid.ocean, values, np.nan)[None], weights)[0]
    west, east = TARGET.lon <= 200.0, TARGET.lon >= 201.0
    np.testing.assert_allclose(out[:, west], 0.0, atol=1e-9)
    np.testing.assert_allclose(out[:, east], 10.0, atol=1e-9)


def test_max_distance_defines_land():
    grid = regular_grid(resolution=1.0, land=False)
    land = grid.lon > 200.0
    grid = CurvilinearGrid(grid.lat, grid.lon, ~land)
    for max_distance in (1.0, 3.0):
        weights = compute_weights(grid.lat, grid.lon, grid.ocean, TARGET, max_distance_deg=max_distance)
        valid = weights.target_valid
        # Target columns at lon 200 + d are valid iff the nearest ocean centre (199.5) is within max_distance.
        for lon, expected in (
            (200.0, True),
            (201.0, max_distance >= 1.5),
            (202.0, max_distance >= 2.5),
            (205.0, False),
        ):
            j = int(np.argmin(np.abs(TARGET.lon - lon)))
            assert valid[:, j].all() == expected and valid[:, j].any() == expected, (max_distance, lon)


def test_longitude_conventions_and_the_date_line_give_identical_weights():
    """NEMO's −180…180 (jump at the date line inside the domain) and MOM6's −300…60 give the 0–360 weights."""
    grid = orca_like_grid(resolution=2.0)
    w360 = compute_weights(grid.lat, grid.lon, grid.ocean, TARGET)
    truth = field(TLAT, TLON)
    nemo = np.mod(grid.lon + 180.0, 360.0) - 180.0
    assert (np.abs(np.diff(nemo, axis=1)) > 300).any(), "the test grid must jump inside the array"
    for lon in (nemo, np.mod(grid.lon + 300.0, 360.0) - 300.0):
        w = compute_weights(grid.lat, lon, grid.ocean, TARGET)
        assert abs(w.matrix - w360.matrix).max() < 1e-12
        out = regrid_array(_source_values(grid)[None], w)[0]
        assert np.abs(out - truth)[OCEAN_TARGETS].max() < 0.01 * np.ptp(truth[OCEAN_TARGETS])
    assert grid_fingerprint(grid.lat, grid.lon) == grid_fingerprint(grid.lat, np.mod(grid.lon + 180.0, 360.0) - 180.0)


def test_periodic_global_grid_across_the_seam():
    """A global displaced-pole grid wraps in x: targets between its last and first column are still bilinear."""
    grid = gx1_like_global_grid(nlon=120, nlat=96, land=False)
    target = TargetGrid(lat_min=-10, lat_max=10, lon_min=0.0, lon_max=4.0, resolution=0.5)
    weights = compute_weights(grid.lat, grid.lon, grid.ocean, target)
    assert weights.stats["periodic_x"] and weights.stats["idw_fallback"] == 0
    tlat, tlon = np.meshgrid(target.lat, target.lon, indexing="ij")

    def wave(lat, lon):
        return np.cos(np.deg2rad(lon)) * np.cos(np.deg2rad(lat))

    out = regrid_array(wave(grid.lat, grid.lon)[None], weights)[0]
    assert np.abs(out - wave(tlat, tlon)).max() < 2e-3


def test_weights_round_trip_and_wrong_grid(tmp_path):
    grid = gx1_like_grid(resolution=2.0)
    weights = compute_weights(grid.lat, grid.lon, grid.ocean, TARGET)
    path = save_weights(weights, tmp_path / "w.nc")
    with netCDF4.Dataset(path) as nc:  # ESMF offline-weights layout, 1-based
        assert {"S", "row", "col", "mask_a", "mask_b", "src_grid_dims", "dst_grid_dims"} <= set(nc.variables)
        assert nc["row"][:].min() >= 1 and nc["row"][:].max() == TARGET.lat.size * TARGET.lon.size
        assert nc["col"][:].min() >= 1 and nc["col"][:].max() <= grid.lat.size
        assert list(nc["src_grid_dims"][:]) == [grid.shape[1], grid.shape[0]]
    loaded = load_weights(path, expected_target=TARGET)
    assert abs(loaded.matrix - weights.matrix).max() == 0 and loaded.method == "bilinear"
    np.testing.assert_array_equal(loaded.target_valid, weights.target_valid)
    np.testing.assert_array_equal(loaded.source_ocean, grid.ocean)
    other = gx1_like_grid(resolution=2.0, distortion=0.5)
    with pytest.raises(InputDataError, match="not the one the regrid weights were computed for"):
        loaded.check_source(other.lat, other.lon, "other.nc")
    with pytest.raises(InputDataError, match="grid shape"):
        loaded.check_source(other.lat[:-1], other.lon[:-1], "other.nc")
    with pytest.raises(InputDataError, match="configured target grid"):
        load_weights(path, expected_target=TargetGrid(resolution=2.0))
    (tmp_path / "junk.nc").write_bytes(b"junk")
    with pytest.raises(InputDataError, match="cannot read regrid weights"):
        load_weights(tmp_path / "junk.nc")


def _as_dataarray(grid, values, first_year=2000):
    from bridging.timeaxis import monthly_time

    return xr.DataArray(
        values.astype(np.float32),
        dims=("time", "y", "x"),
        coords={
            "time": monthly_time(first_year, 1, values.shape[0]),
            "lat": (("y", "x"), grid.lat),
            "lon": (("y", "x"), grid.lon),
        },
        name="sst",
    )


def test_static_mask_check_names_the_month_and_renormalises_small_losses():
    grid = gx1_like_grid(resolution=2.0)
    weights = compute_weights(grid.lat, grid.lon, grid.ocean, TARGET)
    values = np.repeat(_source_values(grid)[None], 6, axis=0)
    rng = np.random.default_rng(1)
    ocean_idx = np.flatnonzero(grid.ocean.ravel())
    few = rng.choice(ocean_idx, size=max(1, ocean_idx.size // 500), replace=False)
    values[2].reshape(-1)[few] = np.nan  # 0.2 % lost: tolerated, renormalised
    da = _as_dataarray(grid, values).chunk({"time": 2})
    out = regrid(da, weights, check_mask=True, max_missing_fraction=0.01, label="tos.nc").values
    truth = field(TLAT, TLON)
    assert np.nanmax(np.abs(out[2] - truth)[OCEAN_TARGETS]) < 0.03 * np.ptp(truth[OCEAN_TARGETS])
    many = rng.choice(ocean_idx, size=ocean_idx.size // 10, replace=False)
    values[4].reshape(-1)[many] = np.nan
    da = _as_dataarray(grid, values).chunk({"time": 2})
    with pytest.raises(SourceMaskChangedError, match=r"month 2000-05 .* ocean points .* static") as err:
        _ = regrid(
            da, weights, check_mask=True, max_missing_fraction=0.01, label="tos.nc"
        ).values  # computing runs the mask check
    assert "tos.nc" in str(err.value)
    # Without the check (thermocline depth), targets keep a value where at least half their weight is valid.
    out = regrid(da, weights, label="d20").values[4].ravel()
    valid = np.isfinite(values[4].ravel())
    valid_weight = weights.matrix @ valid.astype(float)
    mean = (weights.matrix @ np.where(valid, values[4].ravel(), 0.0)) / np.where(valid_weight > 0, valid_weight, 1.0)
    keeps = valid_weight >= 0.5
    assert (keeps & (valid_weight < 1)).sum() > 100, "the test must exercise partial stencils"
    np.testing.assert_array_equal(np.isfinite(out), keeps)
    np.testing.assert_allclose(out[keeps], mean[keeps], rtol=1e-6)


def test_lazy_regrid_of_files_matches_eager_and_keeps_time_chunks(tmp_path):
    src = mock_oras5(tmp_path, first_year=2014, n_years=1, resolution=2.0)
    ds = open_variable(src.files["sosstsst"], chunk_mb=0.02)
    weights = compute_weights(ds["lat"].values, ds["lon"].values, np.isfinite(src.sst[0]), TARGET)
    lazy = regrid(ds["sst"], weights, check_mask=True, label=src.files["sosstsst"])
    assert lazy.chunks is not None and len(lazy.chunks[0]) > 1
    assert lazy.dims == ("time", "lat", "lon")
    np.testing.assert_array_equal(lazy.values, regrid_array(ds["sst"].values, weights))
    np.testing.assert_allclose(lazy["lat"].values, TARGET.lat)


def test_gfdl_file_regrid_matches_the_grid_in_0_360(tmp_path):
    src = mock_gfdl_cm4(tmp_path, n_years=1, resolution=2.0, with_thetao=False)
    ds = open_variable(src.files["tos"], "tos")
    weights = compute_weights(src.grid.lat, src.grid.lon, src.grid.ocean, TARGET)
    out = regrid(ds["sst"], weights, check_mask=True).values
    np.testing.assert_allclose(out, regrid_array(src.sst, weights), atol=1e-5, equal_nan=True)
