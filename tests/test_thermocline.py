"""Thermocline depth (20 °C isotherm): the D20 definition of docs/method.md ("Data and preprocessing"), vectorised and
chunked."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bridging.errors import InputDataError
from bridging.fixtures.mock import MOCK_DEPTHS, linear_profiles, mock_cesm2
from bridging.io.readers import open_variable
from bridging.thermocline import isotherm_depth, thermocline_depth


def reference_d20(theta: np.ndarray, depth: np.ndarray, isotherm: float = 20.0) -> float:
    """Column by column, straight from the definition: first k with θ_k ≥ T > θ_{k+1}, surface ≥ T."""
    if not np.isfinite(theta[0]) or theta[0] < isotherm:
        return np.nan
    for k in range(len(theta) - 1):
        if np.isfinite(theta[k + 1]) and theta[k] >= isotherm > theta[k + 1]:
            return depth[k] + (isotherm - theta[k]) * (depth[k + 1] - depth[k]) / (theta[k + 1] - theta[k])
        if not np.isfinite(theta[k + 1]):
            return np.nan  # sea floor reached without a crossing
    return np.nan


def test_matches_the_column_definition_on_random_profiles():
    rng = np.random.default_rng(3)
    depth = np.cumsum(rng.uniform(5, 40, size=15))
    n = 4000
    # Warm surface layer decreasing with depth, with noise that creates inversions and multiple crossings.
    theta = (
        29
        - np.linspace(0, 22, depth.size)[None, :] * rng.uniform(0.3, 1.6, size=(n, 1))
        + rng.normal(0, 1.2, (n, depth.size))
    )
    theta[:300, 0] = rng.uniform(14, 19.9, 300)  # surface colder than 20: NaN
    theta[300:600] = 25.0  # no crossing: NaN
    floor = rng.integers(2, depth.size, size=n)
    theta[np.arange(depth.size)[None, :] >= floor[:, None]] = np.nan  # sea floor
    theta[600, 0] = 20.0  # surface exactly at the isotherm
    theta[600, 1:] = 19.0
    theta[601] = np.nan  # land
    got = isotherm_depth(theta, depth, axis=-1)
    want = np.array([reference_d20(t, depth) for t in theta])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3, equal_nan=True)
    assert got[600] == pytest.approx(depth[0])
    assert np.isnan(got[:300]).all() and np.isnan(got[300:600]).all() and np.isnan(got[601])
    assert 0.2 < np.isfinite(got).mean() < 0.95  # both outcomes well represented


def test_axis_argument_and_isotherm():
    depth = np.array([0.0, 100.0])
    theta = np.array([[30.0, 10.0]]).T[:, :, None] * np.ones((1, 1, 3))  # (level, 1, 3)
    np.testing.assert_allclose(isotherm_depth(theta, depth, axis=0), 50.0)
    np.testing.assert_allclose(isotherm_depth(theta, depth, 15.0, axis=0), 75.0)
    with pytest.raises(ValueError, match="levels"):
        isotherm_depth(theta, depth[:1], axis=0)


def test_linear_profiles_are_recovered_exactly_from_a_cesm2_file(tmp_path):
    """Through the real layout: lev in centimetres must become metres, or D20 comes out 100× too deep."""
    src = mock_cesm2(tmp_path, n_years=1)
    thetao = open_variable(src.files["thetao"], "thetao", chunk_mb=0.05)
    assert len(thetao["thetao"].chunks[0]) > 1, "chunked in time"
    d20 = thermocline_depth(thetao["thetao"])
    assert d20.chunks is not None and d20.dims == ("time", "y", "x")
    values = d20.values
    ocean = np.isfinite(src.thermocline_depth)
    np.testing.assert_allclose(values[ocean], src.thermocline_depth[ocean], atol=0.01)
    assert np.isnan(values[~ocean]).all()
    assert d20.attrs["units"] == "m"


def test_dask_chunks_give_the_eager_result():
    rng = np.random.default_rng(0)
    depth = MOCK_DEPTHS
    # Warm enough that θ stays linear across the bracketing levels (exact recovery); a few cold surfaces (NaN).
    sst = rng.uniform(23, 30, (7, 5, 6))
    sst[rng.uniform(size=sst.shape) < 0.2] = 18.0
    d20 = rng.uniform(30, 200, (7, 5, 6))
    theta = linear_profiles(sst, d20, depth).astype(np.float32)
    da = xr.DataArray(theta, dims=("time", "depth", "y", "x"), coords={"depth": depth})
    eager = thermocline_depth(da).values
    lazy = thermocline_depth(da.chunk({"time": 2, "depth": 5}))
    assert lazy.chunks[0] == (2, 2, 2, 1)
    np.testing.assert_array_equal(lazy.values, eager)
    expected = np.where(sst >= 20, d20, np.nan)
    np.testing.assert_allclose(eager, expected, atol=1e-3, equal_nan=True)


def test_bad_depth_axis():
    da = xr.DataArray(np.zeros((2, 3, 1, 1)), dims=("time", "depth", "y", "x"), coords={"depth": [10.0, 5.0, 20.0]})
    with pytest.raises(InputDataError, match="increase downward"):
        thermocline_depth(da, label="x.nc")
    with pytest.raises(InputDataError, match="depth"):
        thermocline_depth(da.rename(depth="lev"), label="x.nc")
