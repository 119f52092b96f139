"""Small fixture factories: CESM2, GFDL-CM4 and ORAS5 files in their real layouts with known analytic contents.

Built on :mod:`bridging.io.layouts`, so tests exercise exactly the layouts real data have. Each factory returns a
:class:`MockSource` with the files written and the truth they encode: the SST and 20 °C-isotherm depth (°C, m) on
the source grid, per month. ``thetao`` profiles are linear in depth around the isotherm, so linear interpolation
between levels recovers the true depth exactly (up to float32 rounding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .io.layouts import (
    CurvilinearGrid,
    as_year_months,
    consecutive_months,
    gx1_like_grid,
    orca_like_grid,
    regular_grid,
    write_cesm2_omon,
    write_gfdl_cm4_omon,
    write_oras5_monthly,
)

#: level centres (m) of the mock thetao: 10 m apart down to 205 m, then coarser, as ocean models are
MOCK_DEPTHS = np.array([5.0, 15, 25, 35, 45, 55, 65, 75, 85, 95, 105, 115, 125, 135, 145, 155, 165, 175, 185, 195, 205, 250, 350, 500])
#: thermal gradient (°C/m) of the mock profiles around the isotherm, and the deep temperature
PROFILE_GRADIENT = 0.05
DEEP_TEMPERATURE = 6.0


def smooth_sst(lat, lon, counter) -> np.ndarray:
    """A smooth SST-like field (°C): warm pool in the west, cooler to the east and poleward, a seasonal wave."""
    lat, lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
    counter = np.asarray(counter, np.float64)[..., None, None]
    return (
        26.0
        + 3.0 * np.cos(np.deg2rad(lat) * 3.0) * np.cos(np.deg2rad(lon - 160.0))
        + 0.8 * np.sin(2 * np.pi * counter / 12.0 + np.deg2rad(lon))
    )


def smooth_d20(lat, lon, counter) -> np.ndarray:
    """A smooth 20 °C-isotherm depth (m): deep in the west, shallow in the east, deeper off the equator."""
    lat, lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
    counter = np.asarray(counter, np.float64)[..., None, None]
    return 110.0 + 50.0 * np.cos(np.deg2rad(lon - 150.0)) + 30.0 * (lat / 30.0) ** 2 + 10.0 * np.sin(2 * np.pi * counter / 12.0)


def linear_profiles(sst: np.ndarray, d20: np.ndarray, depth: np.ndarray, isotherm: float = 20.0) -> np.ndarray:
    """θ(z) = clip(T + g (D20 − z), deep, SST): (..., level, y, x); linear across the isotherm's bracketing levels."""
    z = np.asarray(depth, np.float64)[:, None, None]
    theta = isotherm + PROFILE_GRADIENT * (d20[..., None, :, :] - z)
    return np.clip(theta, DEEP_TEMPERATURE, sst[..., None, :, :])


@dataclass
class MockSource:
    """Files of one mock source and the truth they hold (fields on the source grid, °C and m, NaN on land)."""

    root: Path
    files: dict[str, list[Path]]
    grid: CurvilinearGrid
    months: np.ndarray  # (n, 2) year, month
    sst: np.ndarray  # (n, ny, nx)
    thermocline_depth: np.ndarray  # (n, ny, nx)
    depth: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def all_files(self) -> list[Path]:
        return [p for paths in self.files.values() for p in paths]


def _truth(grid: CurvilinearGrid, months: np.ndarray):
    counter = months[:, 0] * 12 + months[:, 1] - 1
    land = ~grid.ocean
    sst = smooth_sst(grid.lat, grid.lon, counter)
    d20 = smooth_d20(grid.lat, grid.lon, counter)
    sst[:, land] = np.nan
    d20[:, land] = np.nan
    return sst, d20


def _thetao_source(sst: np.ndarray, d20: np.ndarray, depth: np.ndarray) -> Callable[[slice], np.ndarray]:
    def slab(months: slice) -> np.ndarray:
        return linear_profiles(sst[months], d20[months], depth)

    return slab


def mock_cesm2(
    tmpdir,
    *,
    first_year: int = 2000,
    n_years: int = 2,
    months=None,
    grid: CurvilinearGrid | None = None,
    resolution: float = 4.0,
    calendar: str = "noleap",
    tos_units: str = "degC",
    thetao_units: str = "degC",
    with_thetao: bool = True,
    source_id: str = "CESM2",
    years_per_file: int | None = None,
    depth: np.ndarray = MOCK_DEPTHS,
) -> MockSource:
    """CESM2 Omon tos (+ thetao, lev in cm) on a gx1-like grid under ``tmpdir`` (a DRS tree)."""
    grid = grid or gx1_like_grid(resolution=resolution)
    months = consecutive_months(first_year, 12 * n_years) if months is None else as_year_months(months)
    sst, d20 = _truth(grid, months)
    files = write_cesm2_omon(
        tmpdir, grid=grid, months=months, tos=sst, thetao=_thetao_source(sst, d20, depth) if with_thetao else None,
        depth=depth, source_id=source_id, calendar=calendar, tos_units=tos_units, thetao_units=thetao_units,
        years_per_file=years_per_file,
    )  # fmt: skip
    return MockSource(Path(tmpdir), files, grid, months, sst, d20, np.asarray(depth))


def mock_gfdl_cm4(
    tmpdir,
    *,
    first_year: int = 2008,
    n_years: int = 4,
    months=None,
    grid: CurvilinearGrid | None = None,
    resolution: float = 4.0,
    grid_label: str = "gn",
    calendar: str = "noleap",
    calendar_attrs=("calendar", "calendar_type"),
    tos_units: str = "degC",
    thetao_units: str = "degC",
    with_thetao: bool = True,
    tos_years_per_file: int | None = 20,
    thetao_years_per_file: int | None = 5,
    source_id: str = "GFDL-CM4",
    depth: np.ndarray = MOCK_DEPTHS,
) -> MockSource:
    """GFDL-CM4 Omon tos (+ thetao in 5-year files aligned to 1850) on an ORCA/tripolar-like grid (``gn``) or a
    regular grid (``gr``, 1-D lat/lon) under ``tmpdir``."""
    if grid is None:
        grid = regular_grid(resolution=resolution) if grid_label.startswith("gr") else orca_like_grid(resolution=resolution)
    months = consecutive_months(first_year, 12 * n_years) if months is None else as_year_months(months)
    sst, d20 = _truth(grid, months)
    files = write_gfdl_cm4_omon(
        tmpdir, grid=grid, months=months, tos=sst, thetao=_thetao_source(sst, d20, depth) if with_thetao else None,
        depth=depth, source_id=source_id, grid_label=grid_label, calendar=calendar, calendar_attrs=calendar_attrs,
        tos_units=tos_units, thetao_units=thetao_units, tos_years_per_file=tos_years_per_file,
        thetao_years_per_file=thetao_years_per_file,
    )  # fmt: skip
    return MockSource(Path(tmpdir), files, grid, months, sst, d20, np.asarray(depth))


def mock_oras5(
    tmpdir,
    *,
    first_year: int = 2013,
    n_years: int = 3,
    months=None,
    grid: CurvilinearGrid | None = None,
    resolution: float = 4.0,
    sst_units: str = "C",
) -> MockSource:
    """ORAS5 monthly sosstsst + so20chgt files (CONS up to 2014, OPER from 2015) on an ORCA-like grid."""
    grid = grid or orca_like_grid(resolution=resolution)
    months = consecutive_months(first_year, 12 * n_years) if months is None else as_year_months(months)
    sst, d20 = _truth(grid, months)
    files = write_oras5_monthly(tmpdir, grid=grid, months=months, sosstsst=sst, so20chgt=d20, sst_units=sst_units)
    return MockSource(Path(tmpdir), files, grid, months, sst, d20)
