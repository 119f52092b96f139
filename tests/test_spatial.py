"""Spatial diagnostics: std and regression maps, EOFs, composites, the residual std map, pattern statistics."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bridging.diagnostics.events import classify_winters, winter_windows
from bridging.diagnostics.indices import store_indices
from bridging.diagnostics.spatial import (
    FieldAnomalies,
    djf_composites,
    leading_eofs,
    observable_pcs,
    observable_values,
    pattern_statistics,
    regression_map,
    residual_std_map,
    spatial_diagnostics,
    std_map,
)
from bridging.diagnostics.synthetic import ar1, synthetic_layout_store, synthetic_store
from bridging.grid import TargetGrid
from bridging.observables import ObservationLayout
from bridging.stores import build_store
from bridging.timeaxis import monthly_time, year_month

GRID = TargetGrid(-10.0, 10.0, 140.0, 260.0, 2.0)


def store_from_modes(modes: np.ndarray, sst_patterns: np.ndarray, depth_patterns: np.ndarray, noise=None) -> xr.Dataset:
    """A store whose anomalies are Σ_j modes_j(t) · pattern_j (+ optional noise), plus a seasonal cycle."""
    n_time = modes.shape[1]
    months = np.arange(n_time) % 12
    seasonal = 2.0 * np.sin(2 * np.pi * months / 12)[:, None, None]
    sst = 27.0 + seasonal + np.tensordot(modes.T, sst_patterns, axes=1)
    depth = 120.0 + 10 * seasonal + np.tensordot(modes.T, depth_patterns, axes=1)
    if noise is not None:
        sst = sst + noise
    coords = {"time": monthly_time(1900, 1, n_time), **{k: v.values for k, v in GRID.coords().items()}}
    fields = {
        "sst": xr.DataArray(sst.astype(np.float32), dims=("time", "lat", "lon"), coords=coords),
        "thermocline_depth": xr.DataArray(depth.astype(np.float32), dims=("time", "lat", "lon"), coords=coords),
    }
    return build_store(fields, source_id="TEST", source_kind="operational")


def smooth_patterns(n: int, rng) -> np.ndarray:
    la, lo = np.meshgrid(GRID.lat, GRID.lon, indexing="ij")
    out = []
    for _ in range(n):
        c_lat, c_lon, w = rng.uniform(-8, 8), rng.uniform(150, 250), rng.uniform(10, 40)
        out.append(rng.uniform(0.5, 1.5) * np.exp(-(((la - c_lat) / 6) ** 2) - ((lo - c_lon) / w) ** 2))
    return np.array(out)


def equatorial_layout() -> ObservationLayout:
    lons = list(GRID.lon[::3])
    return ObservationLayout.points(
        GRID, ["sst"] * len(lons) + ["thermocline_depth"] * len(lons), [0.0] * 2 * len(lons), lons * 2
    )


def anomalies_of(ds: xr.Dataset, name: str) -> FieldAnomalies:
    from bridging.diagnostics.indices import normalise_grid

    return FieldAnomalies(normalise_grid(ds, name), ds["ocean_mask"].values.astype(bool))


def test_residual_std_of_a_field_linear_in_the_observables_is_zero():
    """Three modes drive every cell and every observable: the fields are linear functions of the observables, so
    regressing out the observables' three leading PCs leaves nothing."""
    rng = np.random.default_rng(0)
    modes = ar1(600, 0.8, rng, (3,)) * np.array([[2.0], [1.0], [0.5]])
    ds = store_from_modes(modes, smooth_patterns(3, rng), 20 * smooth_patterns(3, rng))
    anomalies = {n: anomalies_of(ds, n) for n in ("sst", "thermocline_depth")}
    pcs, explained = observable_pcs(observable_values(anomalies, equatorial_layout()), 3)
    assert explained.sum() == pytest.approx(1.0, abs=1e-6)
    for name, anom in anomalies.items():
        resid = residual_std_map(anom, pcs)
        full = std_map(anom)
        # What is left is the float32 rounding of the stored full fields (~1e-6 of their magnitude).
        assert np.nanmax(resid) < 1e-4 * np.nanmax(full), name


def test_residual_std_keeps_variability_the_observables_do_not_see():
    """Independent off-equatorial noise of known std survives the regression; the ENSO-like modes do not."""
    rng = np.random.default_rng(1)
    modes = ar1(1200, 0.8, rng, (2,))
    la = GRID.lat[:, None] * np.ones((1, GRID.lon.size))
    noise_std = np.where(np.abs(la) >= 8, 0.4, 0.0)
    noise = noise_std[None] * rng.standard_normal((1200, *GRID.shape))
    ds = store_from_modes(modes, smooth_patterns(2, rng), 20 * smooth_patterns(2, rng), noise)
    anomalies = {n: anomalies_of(ds, n) for n in ("sst", "thermocline_depth")}
    pcs, _ = observable_pcs(observable_values(anomalies, equatorial_layout()), 4)
    resid = residual_std_map(anomalies["sst"], pcs)
    off = np.abs(la) >= 8
    # 4 regressors fitted to 1200 samples remove a fraction 4/1200 of the noise variance.
    np.testing.assert_allclose(resid[off], 0.4, rtol=0.08)
    assert np.nanmax(resid[~off]) < 0.05


def test_observable_values_use_the_observation_operator():
    ds = synthetic_store(n_years=5, resolution=2.0, seed=2)
    lat, lon = ds["lat"].values, ds["lon"].values
    layout = ObservationLayout.from_dataset(synthetic_layout_store(lat, lon, stride=5))
    anomalies = {n: anomalies_of(ds, n) for n in ("sst", "thermocline_depth")}
    y = observable_values(anomalies, layout)
    grid = TargetGrid(lat[0], lat[-1], lon[0], lon[-1], 2.0)
    full = {n: a.to_map(a.data) for n, a in anomalies.items()}
    np.testing.assert_allclose(y, layout.extract(full, grid), rtol=1e-5, atol=1e-5)


def test_std_and_regression_maps_of_a_known_field():
    rng = np.random.default_rng(3)
    index = ar1(480, 0.8, rng)
    pattern = smooth_patterns(1, rng)
    ds = store_from_modes(index[None], pattern, 10 * pattern)
    anom = anomalies_of(ds, "sst")
    months = np.arange(480) % 12
    centred = index - np.array([index[months == m].mean() for m in range(12)])[months]
    # Tolerances at the float32 rounding of the stored full fields (values ~30).
    np.testing.assert_allclose(std_map(anom), pattern[0] * centred.std(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(regression_map(anom, centred[None]), pattern[0], rtol=1e-4, atol=1e-5)


def test_eofs_match_a_full_svd_and_follow_the_sign_convention():
    rng = np.random.default_rng(4)
    la, lo = np.meshgrid(GRID.lat, GRID.lon, indexing="ij")
    eastern = np.exp(-((la / 5) ** 2) - ((lo - 230) / 20) ** 2)
    central = np.exp(-((la / 5) ** 2) - ((lo - 175) / 15) ** 2)
    modes = ar1(720, 0.8, rng, (2,)) * np.array([[1.5], [0.7]])
    noise = 0.05 * rng.standard_normal((720, *GRID.shape))
    ds = store_from_modes(modes, np.array([eastern, -central]), np.array([eastern, central]), noise)
    anom = anomalies_of(ds, "sst")
    patterns, fractions, pcs = leading_eofs(anom, 3, seed=0)
    # Reference: the full SVD of the √cos(lat)-weighted anomaly matrix.
    w = np.sqrt(anom.coslat)
    u, s, vt = np.linalg.svd(anom.data.astype(np.float64) * w, full_matrices=False)
    np.testing.assert_allclose(fractions, s[:3] ** 2 / np.sum(s**2), rtol=1e-5)
    for k in range(3):
        assert abs(np.corrcoef(pcs[k], u[:, k])[0, 1]) > 0.9999
    # Sign convention: EOF 1 warm in Niño 3 (east), EOF 2 with Niño 3 warmer than Niño 4.
    east_mask = (np.abs(la) <= 5) & (lo >= 210)
    west_mask = (np.abs(la) <= 5) & (lo >= 160) & (lo <= 210)
    assert np.nanmean(patterns[0][east_mask]) > 0
    assert np.nanmean(patterns[1][east_mask]) - np.nanmean(patterns[1][west_mask]) > 0
    # EOF 1 is the dominant eastern mode: its pattern correlates with it almost perfectly.
    assert pattern_statistics(eastern, patterns[0], GRID.lat)["pattern_correlation"] > 0.98


def test_composites_average_the_djf_anomalies_of_each_event_type():
    ds = synthetic_store(n_years=40, resolution=2.0, seed=5)
    idx = store_indices(ds)
    years, months = year_month(idx["time"])
    cls = classify_winters(idx["nino3"].values, idx["nino4"].values, years, months)
    _, starts = winter_windows(years, months)
    anom = anomalies_of(ds, "sst")
    comp, counts = djf_composites(anom, cls, starts)
    ep = np.flatnonzero(cls.event_class[0] == 1)
    assert counts[0] == ep.size > 0
    # By hand, for one cell: the mean over EP winters of that cell's Dec–Feb anomalies.
    cell = anom.cells[100]
    i, j = np.unravel_index(cell, (anom.lat.size, anom.lon.size))
    series = anom.data[:, 100].astype(np.float64)
    by_hand = np.mean([series[starts[w] + 8 : starts[w] + 11].mean() for w in ep])
    assert comp[0, i, j] == pytest.approx(by_hand, rel=1e-6)


def test_pattern_statistics_by_hand():
    lat = np.array([0.0, 60.0])  # weights 1 and 0.5
    a = np.array([[1.0, 3.0], [2.0, np.nan]])
    assert pattern_statistics(a, a, lat) == {
        "pattern_correlation": 1.0,
        "rmse": 0.0,
        "amplitude_ratio": 1.0,
        "n_cells": 3,
    }
    s = pattern_statistics(a, 2 * a, lat)
    assert s["pattern_correlation"] == pytest.approx(1.0)
    assert s["amplitude_ratio"] == pytest.approx(2.0)
    # RMSE of b − a = a, weights (1, 1, 0.5)/2.5 over the three finite cells: √((1 + 9 + 0.5·4)/2.5).
    assert s["rmse"] == pytest.approx(np.sqrt(12.0 / 2.5))
    assert pattern_statistics(a, -a, lat)["pattern_correlation"] == pytest.approx(-1.0)
    region = np.array([[True, False], [True, True]])
    assert pattern_statistics(a, a + 1, lat, region)["n_cells"] == 2


def test_spatial_diagnostics_of_a_store_with_members():
    ds = synthetic_store(n_years=30, n_members=2, resolution=2.0, seed=6, source_kind="bridging")
    idx = store_indices(ds)
    years, months = year_month(idx["time"])
    cls = classify_winters(idx["nino3"].values, idx["nino4"].values, years, months)
    _, starts = winter_windows(years, months)
    layout = ObservationLayout.from_dataset(synthetic_layout_store(ds["lat"].values, ds["lon"].values))
    maps = spatial_diagnostics(ds, idx, cls, starts, layout, eof_modes=2, residual_modes=4)
    for name in ("sst", "thermocline_depth"):
        for suffix in ("std", "regression_nino3", "regression_nino4", "eof", "composite", "residual_std"):
            assert f"{name}_{suffix}" in maps
        # Land stays NaN in every map.
        assert np.isnan(maps[f"{name}_std"].values[maps["ocean_mask"].values == 0]).all()
    assert int(maps["composite_count"].sum()) == int((cls.event_class > 0).sum())
    # The residual (what ENSO does not explain) is smaller than the total variability everywhere.
    assert np.nanmax(maps["sst_residual_std"].values - maps["sst_std"].values) <= 1e-6
