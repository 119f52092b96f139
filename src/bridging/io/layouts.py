"""Writers of the real CMIP6 Omon (CESM2, GFDL-CM4) and ORAS5 file layouts, and curvilinear grids shaped like theirs.

These produce files the project's readers must accept as if they came from ESGF or the Copernicus CDS (the README,
"Using real CMIP6 / ORAS5 files"): the same dimension and variable names, units (CESM2 ``lev`` in centimetres with
``lev_bnds`` in metres), longitude conventions (0–360, GFDL's −300…60, NEMO's −180…180), calendars and time
units, fill values (1e20), DRS folder trees and file names, and CMOR global attributes. They serve the test
fixtures (:mod:`bridging.testing`) and the demo-data generator, which passes its own fields.

Fields are given in °C and metres, NaN on land, as arrays of shape ``(month, [level,] y, x)`` or as a callable
``fn(months: slice) -> ndarray`` that produces a slab of months on demand (long ``thetao`` records never need to
sit whole in memory). The writers convert to the units requested for the file and write 1e20 where the field is
NaN or the grid is land.
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import cftime
import netCDF4
import numpy as np

from ..atomic import atomic_output

FILL_VALUE = np.float32(1e20)
KELVIN = 273.15

# ----------------------------------------------------------------------------------------------------------------
# Grids
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CurvilinearGrid:
    """A horizontal ocean grid: 2-D cell-centre latitudes/longitudes (°N, °E in 0–360) and a land mask.

    ``lat_bounds``/``lon_bounds`` (ny, nx, 4) are the cell corners counter-clockwise from the south-west corner, as
    CF ``vertices`` bounds. ``is_regular`` grids (1-D latitudes and longitudes) can also be written in the 1-D
    ``gr`` layout.
    """

    lat: np.ndarray
    lon: np.ndarray
    ocean: np.ndarray
    name: str = "curvilinear"
    lat_bounds: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    lon_bounds: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self):
        lat = np.asarray(self.lat, dtype=np.float64)
        lon = np.mod(np.asarray(self.lon, dtype=np.float64), 360.0)
        ocean = np.asarray(self.ocean, dtype=bool)
        if lat.ndim != 2 or lat.shape != lon.shape or lat.shape != ocean.shape:
            raise ValueError(f"grid arrays must share one 2-D shape, got lat {lat.shape}, lon {lon.shape}, ocean {ocean.shape}")
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)
        object.__setattr__(self, "ocean", ocean)
        if self.lat_bounds is None or self.lon_bounds is None:
            lat_b, lon_b = cell_corners(lat, lon)
            object.__setattr__(self, "lat_bounds", lat_b)
            object.__setattr__(self, "lon_bounds", lon_b)

    @property
    def shape(self) -> tuple[int, int]:
        return self.lat.shape  # type: ignore[return-value]

    @property
    def is_regular(self) -> bool:
        """True when latitude depends on the row only and longitude on the column only."""
        return bool(np.allclose(self.lat, self.lat[:, :1], atol=1e-9) and np.allclose(self.lon, self.lon[:1, :], atol=1e-9))


def _xyz(lat, lon):
    la, lo = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _latlon(xyz):
    xyz = xyz / np.linalg.norm(xyz, axis=-1, keepdims=True)
    lat = np.rad2deg(np.arcsin(np.clip(xyz[..., 2], -1.0, 1.0)))
    lon = np.mod(np.rad2deg(np.arctan2(xyz[..., 1], xyz[..., 0])), 360.0)
    return lat, lon


def cell_corners(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell corners (ny, nx, 4), counter-clockwise from south-west, as the means of the four surrounding centres.

    Computed on unit-sphere vectors so a longitude jump (0/360, −180/180) inside the grid does no harm; centres
    are extrapolated linearly by one row/column at the edges.
    """
    p = _xyz(lat, lon)
    # Pad by linear extrapolation so every corner has four surrounding centres.
    p = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]], axis=0)
    p = np.concatenate([2 * p[:, :1] - p[:, 1:2], p, 2 * p[:, -1:] - p[:, -2:-1]], axis=1)
    # corner (j+½, i+½) of the padded array = mean of the 4 centres around it
    c = 0.25 * (p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:])
    sw, se, ne, nw = c[:-1, :-1], c[:-1, 1:], c[1:, 1:], c[1:, :-1]
    lat_c, lon_c = _latlon(np.stack([sw, se, ne, nw], axis=2))
    return lat_c, lon_c


def pacific_land_mask(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """True over land: a coarse outline of the Maritime Continent, Australia, Asia and the Americas (°E 0–360).

    Shaped so the Niño boxes are all ocean and the coasts sit roughly where they are (Ecuador near 80.5°W on the
    equator, New Guinea, Borneo, the Philippines). It is a plausible mask for synthetic data, not a real one.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.mod(np.asarray(lon, dtype=np.float64), 360.0)

    def box(la0, la1, lo0, lo1):
        return (lat >= la0) & (lat <= la1) & (lon >= lo0) & (lon <= lo1)

    land = (
        box(-39, -11, 114, 153)  # Australia
        | box(-10, -1.5, 131, 150)  # New Guinea
        | box(-4, 7, 109, 119)  # Borneo
        | box(-6, 5, 95, 106) & (lat > -0.9 * (lon - 100) - 1)  # Sumatra (diagonal coast)
        | box(-8.5, -6, 105, 115)  # Java
        | box(-5.5, 1.5, 119, 125)  # Sulawesi
        | box(5, 18.5, 117, 126.5)  # Philippines
        | box(8, 90, 0, 109)  # Indochina and Asia
        | box(22, 90, 0, 121)  # China
        | box(30, 46, 129, 142)  # Japan
        | (lat <= -70)  # Antarctica
    )
    # The Americas: land east of a Pacific coastline (°E) that depends on latitude, west of the Atlantic coast.
    coast_lat = np.array([-56.0, -40.0, -30.0, -18.0, -15.0, -5.0, 0.0, 8.0, 15.0, 20.0, 30.0, 50.0, 60.0, 72.0])
    coast_lon = np.array([292.0, 286.5, 288.5, 289.5, 284.0, 278.8, 279.5, 282.5, 267.0, 254.5, 244.0, 235.0, 213.0, 203.0])
    pacific_coast = np.interp(lat, coast_lat, coast_lon)
    atlantic_coast = np.where(lat < 10.0, 325.0, np.where(lat < 25.0, 278.0, 300.0))
    americas = (lat >= -56.0) & (lat <= 75.0) & (lon >= pacific_coast) & (lon <= atlantic_coast)
    return land | americas


def _refined_latitudes(resolution: float, lat_min: float, lat_max: float, refinement: float) -> np.ndarray:
    """Latitudes whose spacing is ``refinement × resolution`` at the equator, relaxing to ``resolution`` by ~25°."""

    def spacing(phi):
        return resolution * (1.0 - (1.0 - refinement) * np.exp(-((phi / 12.0) ** 2)))

    north = [0.5 * spacing(0.0)]
    while north[-1] <= lat_max:
        north.append(north[-1] + spacing(north[-1]))
    south = [-0.5 * spacing(0.0)]
    while south[-1] >= lat_min:
        south.append(south[-1] - spacing(south[-1]))
    lats = np.array(sorted(south + north))
    return lats[(lats >= lat_min) & (lats <= lat_max)]


def gx1_like_grid(
    *,
    resolution: float = 1.0,
    lat_range: tuple[float, float] = (-30.0, 30.0),
    lon_range: tuple[float, float] = (100.0, 300.0),
    equatorial_refinement: float = 0.27,
    distortion: float = 1.0,
    land: bool = True,
) -> CurvilinearGrid:
    """A regional grid shaped like POP's gx1 (CESM2) in the tropics: meridional spacing refined to about a quarter
    of the zonal spacing at the equator, and grid lines bent as by gx1's displaced north pole (meridians lean
    increasingly to the north, parallels undulate). ``distortion`` scales the bending (0 = a rectilinear grid).
    """
    lats = _refined_latitudes(resolution, lat_range[0], lat_range[1], equatorial_refinement)
    lons = np.arange(lon_range[0] + resolution / 2, lon_range[1], resolution)
    lat, lon = np.meshgrid(lats, lons, indexing="ij")
    frac_north = (lat - lat_range[0]) / (lat_range[1] - lat_range[0])
    frac_east = (lon - lon_range[0]) / (lon_range[1] - lon_range[0])
    # Bending of at most ~0.6 cells: the index→position map stays monotonic, the cells stay convex.
    lon2 = lon + distortion * 0.6 * resolution * frac_north**2 * np.sin(np.pi * frac_east)
    dlat = np.gradient(lats)[:, None]
    lat2 = lat + distortion * 0.3 * dlat * np.sin(2 * np.pi * frac_east * 2.5) * np.cos(np.pi * (frac_north - 0.5))
    ocean = ~pacific_land_mask(lat2, lon2) if land else np.ones(lat2.shape, bool)
    return CurvilinearGrid(lat2, lon2, ocean, name=f"gx1-like {resolution}°")


def gx1_like_global_grid(*, nlon: int = 320, nlat: int = 384, pole=(72.0, 320.0), land: bool = True) -> CurvilinearGrid:
    """A global displaced-pole grid of gx1's size (384 × 320 by default): south of ~20°N a Mercator-free
    lat/lon grid refined at the equator; to the north the grid is rotated progressively so that its pole sits
    on land at ``pole`` (lat, lon), as POP's Greenland pole does. Used by the benchmarks.
    """
    # Nominal latitudes from 79°S to 90°N with equatorial refinement, stretched to exactly nlat rows.
    base = _refined_latitudes(1.0, -79.0, 89.6, 0.27)
    lats = np.interp(np.linspace(0, base.size - 1, nlat), np.arange(base.size), base)
    lons = (np.arange(nlon) + 0.5) * 360.0 / nlon
    lat, lon = np.meshgrid(lats, lons, indexing="ij")
    lat2, lon2 = _displace_pole(lat, lon, lats[-1], pole)
    ocean = ~pacific_land_mask(lat2, lon2) if land else np.ones(lat2.shape, bool)
    if land:
        ocean &= lat2 < 80.0
    return CurvilinearGrid(lat2, lon2, ocean, name=f"gx1-like global {nlat}x{nlon}")


def _displace_pole(lat: np.ndarray, lon: np.ndarray, top: float, pole) -> tuple[np.ndarray, np.ndarray]:
    """Rotate the rows north of 20°N about the axis perpendicular to the geographic and the displaced pole, by an
    angle rising smoothly from 0 at 20°N to the full pole offset at latitude ``top``."""
    p = _xyz(lat, lon)
    target = _xyz(np.array(pole[0]), np.array(pole[1]))
    axis = np.cross(np.array([0.0, 0.0, 1.0]), target)
    axis /= np.linalg.norm(axis)
    full_angle = np.deg2rad(90.0 - pole[0])
    s = np.clip((lat - 20.0) / (top - 20.0), 0.0, 1.0)
    angle = full_angle * (3 * s**2 - 2 * s**3)
    # Rodrigues' rotation formula, per point.
    k = axis[None, None, :]
    cos_a, sin_a = np.cos(angle)[..., None], np.sin(angle)[..., None]
    p_rot = p * cos_a + np.cross(k, p) * sin_a + k * np.sum(k * p, axis=-1, keepdims=True) * (1 - cos_a)
    return _latlon(p_rot)


def orca025_like_global_grid(*, nlon: int = 1442, nlat: int = 1021, pole=(70.0, 260.0), land: bool = True) -> CurvilinearGrid:
    """A global grid of ORCA025's size (1021 × 1442, as ORAS5's files): isotropic Mercator rows (Δlat = 0.25° ·
    cos lat) from about 77°S, as many as ``nlat`` holds (to about 79°N); 1440 columns of 0.25° starting near 73°E plus
    NEMO's two wrap columns (column 0 repeats column 1440, column 1441 repeats column 1); north of 20°N the rows
    bend towards a displaced pole on land (ORCA's tripolar north; the fold itself is not reproduced). Used by the
    benchmarks."""
    step = 360.0 / (nlon - 2)
    south = [-step * np.cos(0.0)]
    while south[-1] > -77.0:
        south.append(south[-1] - step * np.cos(np.deg2rad(south[-1])))
    lats = [0.0]
    while len(lats) < nlat - len(south):
        lats.append(lats[-1] + step * np.cos(np.deg2rad(lats[-1])))
    lats = np.array(south[::-1] + lats)
    lons = 73.0 + step * (np.arange(nlon) - 1)
    lat, lon = np.meshgrid(lats, lons, indexing="ij")
    lat2, lon2 = _displace_pole(lat, lon, lats[-1], pole)
    lat2[:, 0], lon2[:, 0] = lat2[:, nlon - 2], lon2[:, nlon - 2]
    lat2[:, -1], lon2[:, -1] = lat2[:, 1], lon2[:, 1]
    ocean = ~pacific_land_mask(lat2, lon2) if land else np.ones(lat2.shape, bool)
    return CurvilinearGrid(lat2, lon2, ocean, name=f"ORCA025-like global {nlat}x{nlon}")


def orca_like_grid(
    *,
    resolution: float = 1.0,
    lat_range: tuple[float, float] = (-30.0, 30.0),
    lon_range: tuple[float, float] = (100.0, 300.0),
    distortion: float = 1.0,
    land: bool = True,
) -> CurvilinearGrid:
    """A regional grid shaped like NEMO's ORCA tripolar grids in the tropics: isotropic Mercator spacing
    (Δlat = Δlon · cos lat) and a gentle bending of the grid lines. Written in the ORAS5 layout its longitudes
    are −180…180, so they jump from +180 to −180 inside the array, as in ORCA025 files (the north fold lies
    outside a tropical subset).
    """
    lat_list = [0.0]
    while lat_list[-1] < lat_range[1]:
        lat_list.append(lat_list[-1] + resolution * np.cos(np.deg2rad(lat_list[-1])))
    south = [0.0]
    while south[-1] > lat_range[0]:
        south.append(south[-1] - resolution * np.cos(np.deg2rad(south[-1])))
    lats = np.array(sorted(set(lat_list + south)))
    lats = lats[(lats >= lat_range[0]) & (lats <= lat_range[1])]
    lons = np.arange(lon_range[0] + resolution / 2, lon_range[1], resolution)
    lat, lon = np.meshgrid(lats, lons, indexing="ij")
    frac_east = (lon - lon_range[0]) / (lon_range[1] - lon_range[0])
    lat2 = lat + distortion * 0.25 * resolution * np.sin(np.deg2rad(lat) * 3) * np.sin(np.pi * frac_east)
    lon2 = lon + distortion * 0.2 * resolution * np.sin(np.deg2rad(lat) * 6)
    ocean = ~pacific_land_mask(lat2, lon2) if land else np.ones(lat2.shape, bool)
    return CurvilinearGrid(lat2, lon2, ocean, name=f"ORCA-like {resolution}°")


def regular_grid(
    *, resolution: float = 1.0, lat_range=(-30.0, 30.0), lon_range=(100.0, 300.0), land: bool = True
) -> CurvilinearGrid:
    """A regular lat/lon grid (cell centres at half-resolution offsets), e.g. for GFDL's 1° ``gr`` layout."""
    lats = np.arange(lat_range[0] + resolution / 2, lat_range[1], resolution)
    lons = np.arange(lon_range[0] + resolution / 2, lon_range[1], resolution)
    lat, lon = np.meshgrid(lats, lons, indexing="ij")
    ocean = ~pacific_land_mask(lat, lon) if land else np.ones(lat.shape, bool)
    return CurvilinearGrid(lat, lon, ocean, name=f"regular {resolution}°")


# ----------------------------------------------------------------------------------------------------------------
# Time
# ----------------------------------------------------------------------------------------------------------------


def as_year_months(months) -> np.ndarray:
    """(n, 2) int array of (year, month) from pairs, or from a (years, months) pair of equal-length arrays."""
    arr = np.asarray(months, dtype=np.int64)
    if arr.ndim == 2 and arr.shape[1] == 2:
        out = arr
    elif arr.ndim == 2 and arr.shape[0] == 2:
        out = arr.T
    else:
        raise ValueError(f"months must be (year, month) pairs, got an array of shape {arr.shape}")
    if ((out[:, 1] < 1) | (out[:, 1] > 12)).any():
        raise ValueError("months must lie in 1…12")
    return np.ascontiguousarray(out)


def consecutive_months(first_year: int, n_months: int, first_month: int = 1) -> np.ndarray:
    """(n, 2) (year, month) pairs of n consecutive months."""
    counter = first_year * 12 + first_month - 1 + np.arange(n_months)
    return np.stack([counter // 12, counter % 12 + 1], axis=1)


def month_bounds(year_months: np.ndarray, calendar: str):
    """cftime month starts and ends (first of the next month) for (year, month) pairs."""
    starts = [cftime.datetime(int(y), int(m), 1, calendar=calendar) for y, m in year_months]
    ends = [cftime.datetime(int(y + (m == 12)), int(m % 12 + 1), 1, calendar=calendar) for y, m in year_months]
    return starts, ends


def _time_values(year_months, units, calendar, stamp_offset_days: float = 0.0):
    starts, ends = month_bounds(year_months, calendar)
    b0 = np.asarray(cftime.date2num(starts, units, calendar), dtype=np.float64)
    b1 = np.asarray(cftime.date2num(ends, units, calendar), dtype=np.float64)
    per_day = _units_per_day(units)
    mid = 0.5 * (b0 + b1) + stamp_offset_days * per_day
    return mid, np.stack([b0, b1], axis=1)


def _units_per_day(units: str) -> float:
    word = units.split()[0].lower()
    return {"days": 1.0, "day": 1.0, "hours": 24.0, "hour": 24.0, "minutes": 1440.0, "seconds": 86400.0, "second": 86400.0}[word]


# ----------------------------------------------------------------------------------------------------------------
# Shared writing helpers
# ----------------------------------------------------------------------------------------------------------------


def _field_slab(source, months: slice, expected_shape: tuple[int, ...], name: str) -> np.ndarray:
    data = source(months) if callable(source) else source[months]
    data = np.asarray(data, dtype=np.float64)
    if data.shape != expected_shape:
        raise ValueError(f"{name}: expected a slab of shape {expected_shape}, got {data.shape}")
    return data


def _to_file_values(data: np.ndarray, ocean: np.ndarray, offset: float) -> np.ndarray:
    """Add the unit offset, write the fill value on land and where the field is NaN, as float32."""
    out = (data + offset).astype(np.float32)
    land = ~np.broadcast_to(ocean, out.shape) | ~np.isfinite(out)
    out[land] = FILL_VALUE
    return out


def _temperature_offset(units: str) -> float:
    if units in ("K", "kelvin"):
        return KELVIN
    if units in ("degC", "C", "deg_C", "degrees_C", "Celsius"):
        return 0.0
    raise ValueError(f"temperature units for writing must be degC/C/K, got {units!r}")


def _tracking_id(*parts: str) -> str:
    # Deterministic: regenerating the same data gives the same ids (uuid5 of the file's identity).
    return "hdl:21.14100/" + str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_chunks(year_months: np.ndarray, years_per_file: int | None, align_year: int | None = None) -> list[slice]:
    """Split a record into files of whole blocks of years (aligned to ``align_year``, as 185001-185412 …)."""
    if years_per_file is None:
        return [slice(0, len(year_months))]
    align = int(year_months[0, 0]) if align_year is None else int(align_year)
    block = (year_months[:, 0] - align) // years_per_file
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
    ends = np.r_[starts[1:], len(year_months)]
    return [slice(int(a), int(b)) for a, b in zip(starts, ends)]


def _time_range(year_months: np.ndarray) -> str:
    (y0, m0), (y1, m1) = year_months[0], year_months[-1]
    return f"{y0:04d}{m0:02d}-{y1:04d}{m1:02d}"


def _create_data_variable(nc, name, dims, *, chunks, complevel, significant_digits, attrs):
    kwargs = dict(zlib=complevel > 0, complevel=max(complevel, 1), shuffle=True, chunksizes=chunks, fill_value=FILL_VALUE)
    if complevel == 0:
        kwargs = dict(fill_value=FILL_VALUE)
    if significant_digits is not None:
        kwargs["significant_digits"] = int(significant_digits)
    var = nc.createVariable(name, "f4", dims, **kwargs)
    var.setncatts(attrs)
    return var


def _write_slabs(var, source, index: slice, inner_shape, ocean, offset, name, slab_months: int):
    n = index.stop - index.start
    ocean_b = ocean if len(inner_shape) == 2 else ocean[None, :, :]
    for a in range(0, n, slab_months):
        b = min(n, a + slab_months)
        data = _field_slab(source, slice(index.start + a, index.start + b), (b - a, *inner_shape), name)
        var[a:b] = _to_file_values(data, ocean_b, offset)


# ----------------------------------------------------------------------------------------------------------------
# CMIP6
# ----------------------------------------------------------------------------------------------------------------

CMIP6_TEMPERATURE_ATTRS = {
    "tos": {
        "standard_name": "sea_surface_temperature",
        "long_name": "Sea Surface Temperature",
        "comment": "Temperature of upper boundary of the liquid ocean, including temperatures below sea-ice and floating ice shelves.",
        "cell_methods": "area: mean where sea time: mean",
        "cell_measures": "area: areacello",
    },
    "thetao": {
        "standard_name": "sea_water_potential_temperature",
        "long_name": "Sea Water Potential Temperature",
        "comment": "Diagnostic should be contributed even for models using conservative temperature as prognostic field.",
        "cell_methods": "area: mean where sea time: mean",
        "cell_measures": "area: areacello volume: volcello",
    },
}


def drs_directory(root, *, activity_id, institution_id, source_id, experiment_id, member_id, table_id, variable_id, grid_label, version) -> Path:
    """The CMIP6 DRS folder of one dataset (as ESGF and Synda lay it out)."""
    return (
        Path(root) / "CMIP6" / activity_id / institution_id / source_id / experiment_id / member_id / table_id / variable_id / grid_label / version
    )


def cmip6_file_name(variable_id, table_id, source_id, experiment_id, member_id, grid_label, year_months) -> str:
    return f"{variable_id}_{table_id}_{source_id}_{experiment_id}_{member_id}_{grid_label}_{_time_range(year_months)}.nc"


def _cmip6_global_attrs(kind: str, *, variable_id, source_id, experiment_id, member_id, grid_label, institution_id, grid_desc, table_id="Omon"):
    r, i, p, f = (int(s) for s in re.match(r"r(\d+)i(\d+)p(\d+)f(\d+)", member_id).groups())
    common = {
        "Conventions": "CF-1.7 CMIP-6.2",
        "activity_id": "CMIP",
        "data_specs_version": "01.00.29",
        "experiment_id": experiment_id,
        "experiment": "all-forcing simulation of the recent past" if experiment_id == "historical" else experiment_id,
        "external_variables": "areacello volcello" if variable_id == "thetao" else "areacello",
        "forcing_index": np.int32(f),
        "frequency": "mon",
        "further_info_url": f"https://furtherinfo.es-doc.org/CMIP6.{institution_id}.{source_id}.{experiment_id}.none.{member_id}",
        "grid": grid_desc,
        "grid_label": grid_label,
        "initialization_index": np.int32(i),
        "institution_id": institution_id,
        "license": "CMIP6 model data produced by the institution is licensed under a Creative Commons Attribution ShareAlike 4.0 International License (https://creativecommons.org/licenses).",
        "mip_era": "CMIP6",
        "nominal_resolution": "100 km",
        "parent_activity_id": "CMIP",
        "parent_experiment_id": "piControl",
        "parent_mip_era": "CMIP6",
        "parent_source_id": source_id,
        "parent_variant_label": member_id,
        "physics_index": np.int32(p),
        "product": "model-output",
        "realization_index": np.int32(r),
        "realm": "ocean",
        "source_id": source_id,
        "source_type": "AOGCM BGC" if kind == "cesm2" else "AOGCM",
        "sub_experiment": "none",
        "sub_experiment_id": "none",
        "table_id": table_id,
        "variable_id": variable_id,
        "variant_label": member_id,
    }
    if kind == "cesm2":
        common.update(
            {
                "branch_method": "standard",
                "branch_time_in_child": 674885.0,
                "branch_time_in_parent": 219000.0,
                "case_id": "15",
                "cesm_casename": "b.e21.BHIST.f09_g17.CMIP6-historical.001",
                "contact": "cesm_cmip6@ucar.edu",
                "institution": "National Center for Atmospheric Research, Climate and Global Dynamics Laboratory, 1850 Table Mesa Drive, Boulder, CO 80305, USA",
                "mipTable": table_id,
                "parent_time_units": "days since 0001-01-01 00:00:00",
                "source": f"{source_id} (2017): ocean: POP2 (320x384 longitude/latitude; 60 levels; top grid cell 0-10 m)",
                "variant_info": "CMIP6 20th century experiments (1850-2014) with CAM6, interactive land (CLM5), coupled ocean (POP2) with biogeochemistry (MARBL), interactive sea ice (CICE5.1), and non-evolving land ice (CISM2.1)",
            }
        )
    else:
        common.update(
            {
                "branch_time_in_child": 0.0,
                "branch_time_in_parent": 36500.0,
                "contact": "gfdl.climate.model.info@noaa.gov",
                "history": "File was processed by fremetar (GFDL analog of CMOR). TripleID: [exper_id_x,realiz_id_x,run_id_x]",
                "institution": "National Oceanic and Atmospheric Administration, Geophysical Fluid Dynamics Laboratory, Princeton, NJ 08540, USA",
                "parent_time_units": "days since 0001-1-1",
                "source": f"{source_id} (2018): ocean: GFDL-OM4p25 (GFDL-MOM6, tripolar - nominal 0.25 deg; 1440 x 1080 longitude/latitude; 75 levels; top grid cell 0-2 m)",
                "title": f"NOAA GFDL {source_id} model output prepared for CMIP6 {experiment_id}",
                "variant_info": "N/A",
            }
        )
    return common


@dataclass(frozen=True)
class _Cmip6Dataset:
    kind: str
    root: Path
    source_id: str
    experiment_id: str
    member_id: str
    grid_label: str
    version: str
    institution_id: str
    table_id: str
    activity_id: str = "CMIP"


def _check_fields(grid, year_months, fields: Mapping[str, object], depth):
    n = len(year_months)
    if "thetao" in fields and fields["thetao"] is not None:
        if depth is None:
            raise ValueError("thetao needs depth (level centres in metres, positive down)")
    for name, src in fields.items():
        if src is None or callable(src):
            continue
        shape = np.shape(src)
        if shape[0] != n:
            raise ValueError(f"{name}: {shape[0]} months of data for {n} months")


def _write_cmip6(
    ds: _Cmip6Dataset,
    grid: CurvilinearGrid,
    year_months,
    fields: Mapping[str, object],
    depth,
    *,
    calendar: str,
    time_units: str,
    stamp_offset_days: float,
    years_per_file: Mapping[str, int | None],
    align_year: int | None,
    units: Mapping[str, str],
    extra_attrs: Mapping | None,
    complevel: int,
    significant_digits: int | None,
    calendar_attrs: Sequence[str],
    slab_months: int,
) -> dict[str, list[Path]]:
    year_months = as_year_months(year_months)
    _check_fields(grid, year_months, fields, depth)
    depth_m = None if depth is None else np.asarray(depth, dtype=np.float64)
    written: dict[str, list[Path]] = {}
    for variable_id, source in fields.items():
        if source is None:
            continue
        directory = drs_directory(
            ds.root,
            activity_id=ds.activity_id,
            institution_id=ds.institution_id,
            source_id=ds.source_id,
            experiment_id=ds.experiment_id,
            member_id=ds.member_id,
            table_id=ds.table_id,
            variable_id=variable_id,
            grid_label=ds.grid_label,
            version=ds.version,
        )
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for index in _file_chunks(year_months, years_per_file.get(variable_id), align_year):
            ym = year_months[index]
            name = cmip6_file_name(variable_id, ds.table_id, ds.source_id, ds.experiment_id, ds.member_id, ds.grid_label, ym)
            path = directory / name
            with atomic_output(path) as tmp:
                _write_cmip6_file(
                    tmp, ds, grid, ym, variable_id, source, index, depth_m,
                    calendar=calendar, time_units=time_units, stamp_offset_days=stamp_offset_days,
                    units=units.get(variable_id, "degC"), extra_attrs=extra_attrs, complevel=complevel,
                    significant_digits=significant_digits, calendar_attrs=calendar_attrs, slab_months=slab_months,
                )  # fmt: skip
            paths.append(path)
        written[variable_id] = paths
    return written


def _write_cmip6_file(
    path, ds: _Cmip6Dataset, grid, ym, variable_id, source, index, depth_m, *, calendar, time_units, stamp_offset_days,
    units, extra_attrs, complevel, significant_digits, calendar_attrs, slab_months,
):  # fmt: skip
    ny, nx = grid.shape
    cesm = ds.kind == "cesm2"
    ydim, xdim = ("nlat", "nlon") if cesm else ("y", "x")
    bnds, vertex = ("d2", "vertices") if cesm else ("bnds", "vertex")
    regular_1d = ds.grid_label.startswith("gr") and not cesm
    if regular_1d:
        if not grid.is_regular:
            raise ValueError("the 1-D gr layout needs a regular grid")
        ydim, xdim = "lat", "lon"
    times, time_bnds = _time_values(ym, time_units, calendar, stamp_offset_days)
    grid_desc = (
        "native gx1v7 displaced pole grid (384x320 latxlon)"
        if cesm
        else ("data regridded to a 1x1 degree grid" if regular_1d else "ocean data on native tripolar grid (Arakawa C)")
    )
    with netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC") as nc:
        attrs = _cmip6_global_attrs(
            ds.kind, variable_id=variable_id, source_id=ds.source_id, experiment_id=ds.experiment_id, member_id=ds.member_id,
            grid_label=ds.grid_label, institution_id=ds.institution_id, grid_desc=grid_desc, table_id=ds.table_id,
        )  # fmt: skip
        attrs["creation_date"] = _now_iso()
        attrs["tracking_id"] = _tracking_id(ds.source_id, ds.experiment_id, ds.member_id, variable_id, _time_range(ym))
        if extra_attrs:
            attrs.update(extra_attrs)
        nc.setncatts(attrs)
        nc.createDimension("time", None)
        nc.createDimension(bnds, 2)
        nc.createDimension(ydim, ny)
        nc.createDimension(xdim, nx)
        if not regular_1d:
            nc.createDimension(vertex, 4)

        t = nc.createVariable("time", "f8", ("time",))
        t_attrs = {"axis": "T", "bounds": "time_bnds", "standard_name": "time", "long_name": "time", "units": time_units}
        for key in calendar_attrs:
            t_attrs[key] = calendar
        t.setncatts(t_attrs)
        t[:] = times
        tb = nc.createVariable("time_bnds", "f8", ("time", bnds))
        tb[:] = time_bnds

        if regular_1d:
            la = nc.createVariable("lat", "f8", ("lat",))
            la.setncatts({"axis": "Y", "bounds": "lat_bnds", "standard_name": "latitude", "long_name": "latitude", "units": "degrees_north"})
            la[:] = grid.lat[:, 0]
            lo = nc.createVariable("lon", "f8", ("lon",))
            lo.setncatts({"axis": "X", "bounds": "lon_bnds", "standard_name": "longitude", "long_name": "longitude", "units": "degrees_east"})
            lo[:] = grid.lon[0, :]
            lab = nc.createVariable("lat_bnds", "f8", ("lat", bnds))
            lab[:] = np.stack([grid.lat_bounds[:, 0, 0], grid.lat_bounds[:, 0, 3]], axis=1)
            lob = nc.createVariable("lon_bnds", "f8", ("lon", bnds))
            lob[:] = np.stack([grid.lon_bounds[0, :, 0], grid.lon_bounds[0, :, 1]], axis=1)
        else:
            if cesm:
                iy = nc.createVariable("nlat", "i4", ("nlat",))
                iy.setncatts({"long_name": "cell index along second dimension", "units": "1"})
                iy[:] = np.arange(1, ny + 1)
                ix = nc.createVariable("nlon", "i4", ("nlon",))
                ix.setncatts({"long_name": "cell index along first dimension", "units": "1"})
                ix[:] = np.arange(1, nx + 1)
                lon_values, lon_bnds = grid.lon, grid.lon_bounds
            else:
                # MOM6 tripolar convention: longitudes from −300 to 60; x/y are 1-D nominal "projection" coordinates.
                lon_values = np.mod(grid.lon + 300.0, 360.0) - 300.0
                lon_bnds = np.mod(grid.lon_bounds + 300.0, 360.0) - 300.0
                x = nc.createVariable("x", "f8", ("x",))
                x.setncatts({"axis": "X", "long_name": "x coordinate of projection", "standard_name": "projection_x_coordinate", "units": "degrees"})
                x[:] = np.mod(np.mean(grid.lon, axis=0) + 300.0, 360.0) - 300.0
                y = nc.createVariable("y", "f8", ("y",))
                y.setncatts({"axis": "Y", "long_name": "y coordinate of projection", "standard_name": "projection_y_coordinate", "units": "degrees"})
                y[:] = np.mean(grid.lat, axis=1)
            la = nc.createVariable("lat", "f8", (ydim, xdim))
            la.setncatts({"bounds": "lat_bnds", "standard_name": "latitude", "long_name": "latitude", "units": "degrees_north"})
            la[:] = grid.lat
            lo = nc.createVariable("lon", "f8", (ydim, xdim))
            lo.setncatts({"bounds": "lon_bnds", "standard_name": "longitude", "long_name": "longitude", "units": "degrees_east"})
            lo[:] = lon_values
            lab = nc.createVariable("lat_bnds", "f8", (ydim, xdim, vertex))
            lab[:] = grid.lat_bounds
            lob = nc.createVariable("lon_bnds", "f8", (ydim, xdim, vertex))
            lob[:] = lon_bnds

        var_attrs = dict(CMIP6_TEMPERATURE_ATTRS[variable_id])
        var_attrs.update({"units": units, "missing_value": FILL_VALUE})
        if cesm:
            # CESM2 repeats table information as variable attributes (ESMValCore's CESM2 fixes read mipTable there).
            var_attrs.update({"mipTable": ds.table_id, "out_name": variable_id, "frequency": "mon", "id": variable_id,
                              "realm": "ocean", "time_label": "time-mean", "time_title": "Temporal mean", "type": "real",
                              "variable_id": variable_id, "title": var_attrs["long_name"]})  # fmt: skip
        else:
            var_attrs.update({"interp_method": "conserve_order1", "original_name": variable_id})
        offset = _temperature_offset(units)
        if variable_id == "thetao":
            nz = depth_m.size
            nc.createDimension("lev", nz)
            edges = np.r_[0.0, 0.5 * (depth_m[1:] + depth_m[:-1]), depth_m[-1] + 0.5 * (depth_m[-1] - depth_m[-2] if nz > 1 else depth_m[-1])]
            lev = nc.createVariable("lev", "f8", ("lev",))
            lev_attrs = {"axis": "Z", "bounds": "lev_bnds", "positive": "down", "standard_name": "depth", "long_name": "ocean depth coordinate"}
            if cesm:
                # The CESM2 gotcha: level centres in centimetres while their bounds are in metres.
                lev_attrs.update({"units": "centimeters", "standard_name": "olevel"})
                lev[:] = depth_m * 100.0
            else:
                lev_attrs["units"] = "m"
                lev[:] = depth_m
            lev.setncatts(lev_attrs)
            lb = nc.createVariable("lev_bnds", "f8", ("lev", bnds))
            if not cesm:
                lb.setncatts({"units": "m"})
            lb[:] = np.stack([edges[:-1], edges[1:]], axis=1)
            var = _create_data_variable(
                nc, variable_id, ("time", "lev", ydim, xdim), chunks=(1, nz, ny, nx), complevel=complevel,
                significant_digits=significant_digits, attrs=var_attrs,
            )  # fmt: skip
            _write_slabs(var, source, index, (nz, ny, nx), grid.ocean, offset, variable_id, slab_months)
        else:
            var = _create_data_variable(
                nc, variable_id, ("time", ydim, xdim), chunks=(1, ny, nx), complevel=complevel,
                significant_digits=significant_digits, attrs=var_attrs,
            )  # fmt: skip
            _write_slabs(var, source, index, (ny, nx), grid.ocean, offset, variable_id, slab_months)


def write_cesm2_omon(
    root: str | Path,
    *,
    grid: CurvilinearGrid,
    months,
    tos=None,
    thetao=None,
    depth: Sequence[float] | None = None,
    source_id: str = "CESM2",
    experiment_id: str = "historical",
    member_id: str = "r1i1p1f1",
    grid_label: str = "gn",
    version: str = "v20190308",
    calendar: str = "noleap",
    tos_units: str = "degC",
    thetao_units: str = "degC",
    years_per_file: int | None = None,
    extra_attrs: Mapping | None = None,
    complevel: int = 1,
    significant_digits: int | None = None,
    slab_months: int = 12,
) -> dict[str, list[Path]]:
    """Write ``tos`` and/or ``thetao`` in the CESM2 (POP2 gx1v7) Omon layout under ``root``'s DRS tree.

    ``months``: (year, month) pairs; ``tos`` (month, y, x) and ``thetao`` (month, level, y, x) in °C, NaN on land
    (or callables returning month slabs); ``depth``: level centres in metres. Layout: dims ``nlat``/``nlon``
    with integer index coordinates, 2-D ``lat``/``lon`` (0–360) with ``lat_bnds``/``lon_bnds`` on ``vertices``,
    ``time_bnds`` on ``d2``, time in days since 0001-01-01 (``noleap``; ``365_day``, ``360_day`` … for tests),
    ``lev`` in centimetres with ``lev_bnds`` in metres, fill 1e20, one file per variable for the whole record
    (``years_per_file`` splits it). Returns {variable: [paths]}.
    """
    ds = _Cmip6Dataset("cesm2", Path(root), source_id, experiment_id, member_id, grid_label, version, "NCAR", "Omon")
    return _write_cmip6(
        ds, grid, months, {"tos": tos, "thetao": thetao}, depth,
        calendar=calendar, time_units="days since 0001-01-01 00:00:00", stamp_offset_days=-1.0,
        years_per_file={"tos": years_per_file, "thetao": years_per_file}, align_year=None,
        units={"tos": tos_units, "thetao": thetao_units}, extra_attrs=extra_attrs, complevel=complevel,
        significant_digits=significant_digits, calendar_attrs=("calendar",), slab_months=slab_months,
    )  # fmt: skip


def write_gfdl_cm4_omon(
    root: str | Path,
    *,
    grid: CurvilinearGrid,
    months,
    tos=None,
    thetao=None,
    depth: Sequence[float] | None = None,
    source_id: str = "GFDL-CM4",
    experiment_id: str = "historical",
    member_id: str = "r1i1p1f1",
    grid_label: str = "gn",
    version: str = "v20180701",
    calendar: str = "noleap",
    calendar_attrs: Sequence[str] = ("calendar", "calendar_type"),
    tos_units: str = "degC",
    thetao_units: str = "degC",
    tos_years_per_file: int | None = 20,
    thetao_years_per_file: int | None = 5,
    align_year: int = 1850,
    extra_attrs: Mapping | None = None,
    complevel: int = 1,
    significant_digits: int | None = None,
    slab_months: int = 12,
) -> dict[str, list[Path]]:
    """Write ``tos`` and/or ``thetao`` in the GFDL-CM4 (MOM6 tripolar) Omon layout under ``root``'s DRS tree.

    Native ``gn``: dims ``y``/``x`` with 1-D nominal "projection" coordinates ``x``/``y`` in degrees, 2-D
    ``lat``/``lon`` with longitudes in −300…60, bounds on ``vertex``, ``time_bnds`` on ``bnds``; ``gr``/``gr1``
    (``grid`` must be regular): 1-D ``lat``/``lon``. Time in days since 1850-01-01, ``noleap`` written both as
    ``calendar`` and GFDL's ``calendar_type``; records split into files of ``*_years_per_file`` years aligned to
    ``align_year`` (thetao 5-year files as on ESGF). Returns {variable: [paths]}.
    """
    ds = _Cmip6Dataset("gfdl-cm4", Path(root), source_id, experiment_id, member_id, grid_label, version, "NOAA-GFDL", "Omon")
    return _write_cmip6(
        ds, grid, months, {"tos": tos, "thetao": thetao}, depth,
        calendar=calendar, time_units="days since 1850-01-01 00:00:00", stamp_offset_days=0.0,
        years_per_file={"tos": tos_years_per_file, "thetao": thetao_years_per_file}, align_year=align_year,
        units={"tos": tos_units, "thetao": thetao_units}, extra_attrs=extra_attrs, complevel=complevel,
        significant_digits=significant_digits, calendar_attrs=tuple(calendar_attrs), slab_months=slab_months,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# ORAS5
# ----------------------------------------------------------------------------------------------------------------

ORAS5_VARIABLES = {
    "sosstsst": {"long_name": "Sea Surface temperature", "standard_name": "sea_surface_temperature"},
    "so20chgt": {"long_name": "Depth of 20C isotherm", "standard_name": "depth_of_isosurface_of_sea_water_potential_temperature"},
}


def oras5_file_name(variable: str, year: int, month: int, *, consolidated_until: int = 2014) -> str:
    """``{var}_control_monthly_highres_2D_{YYYYMM}_{CONS|OPER}_v0.1.nc``: CONS up to 2014, OPER from 2015."""
    stream = "CONS" if year <= consolidated_until else "OPER"
    return f"{variable}_control_monthly_highres_2D_{year:04d}{month:02d}_{stream}_v0.1.nc"


def write_oras5_monthly(
    root: str | Path,
    *,
    grid: CurvilinearGrid,
    months,
    sosstsst=None,
    so20chgt=None,
    sst_units: str = "C",
    subdir: str = "ORAS5",
    time_units: str = "seconds since 1900-01-01 00:00:00",
    calendar: str = "gregorian",
    consolidated_until: int = 2014,
    extra_attrs: Mapping | None = None,
    complevel: int = 1,
    coordinate_complevel: int = 0,
) -> dict[str, list[Path]]:
    """Write ORAS5 monthly 2-D files, one per variable per month, under ``root/subdir/<variable>/``
    (``coordinate_complevel`` > 0 also compresses ``nav_lat``/``nav_lon``).

    Layout as delivered by the CDS (``reanalysis-oras5``): dims ``time_counter`` (unlimited, 1), ``y``, ``x``
    with no coordinate variables for ``x``/``y``; 2-D float32 ``nav_lat``/``nav_lon`` (longitudes −180…180);
    ``time_counter`` in seconds since 1900 (gregorian; unverified in the real files, which is why readers take
    the month from the file name); ``sosstsst`` in "C" (``sst_units``), ``so20chgt`` in m; fill 1e20.
    Returns {variable: [paths]}.
    """
    year_months = as_year_months(months)
    _check_fields(grid, year_months, {"sosstsst": sosstsst, "so20chgt": so20chgt}, None)
    ny, nx = grid.shape
    nav_lon = (np.mod(grid.lon + 180.0, 360.0) - 180.0).astype(np.float32)
    times, _ = _time_values(year_months, time_units, calendar)
    written: dict[str, list[Path]] = {}
    for variable, source, units in (("sosstsst", sosstsst, sst_units), ("so20chgt", so20chgt, "m")):
        if source is None:
            continue
        offset = _temperature_offset(units) if variable == "sosstsst" else 0.0
        directory = Path(root) / subdir / variable
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for k, (year, month) in enumerate(year_months):
            path = directory / oras5_file_name(variable, int(year), int(month), consolidated_until=consolidated_until)
            data = _field_slab(source, slice(k, k + 1), (1, ny, nx), variable)
            with atomic_output(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
                attrs = {"Conventions": "CF-1.6", "title": f"ORAS5 {variable} monthly mean", "institution": "ECMWF",
                         "source": "NEMO 3.4.1 ORCA025.L75 (ORAS5)", "TimeStamp": _now_iso()}  # fmt: skip
                if extra_attrs:
                    attrs.update(extra_attrs)
                nc.setncatts(attrs)
                nc.createDimension("x", nx)
                nc.createDimension("y", ny)
                nc.createDimension("time_counter", None)
                packed = dict(zlib=True, complevel=coordinate_complevel) if coordinate_complevel > 0 else {}
                la = nc.createVariable("nav_lat", "f4", ("y", "x"), **packed)
                la.setncatts({"units": "degrees_north", "long_name": "Latitude", "standard_name": "latitude", "nav_model": "Default grid"})
                la[:] = grid.lat.astype(np.float32)
                lo = nc.createVariable("nav_lon", "f4", ("y", "x"), **packed)
                lo.setncatts({"units": "degrees_east", "long_name": "Longitude", "standard_name": "longitude", "nav_model": "Default grid"})
                lo[:] = nav_lon
                tc = nc.createVariable("time_counter", "f8", ("time_counter",))
                tc.setncatts({"units": time_units, "calendar": calendar, "standard_name": "time", "long_name": "Time axis", "axis": "T"})
                tc[:] = times[k : k + 1]
                var = nc.createVariable(
                    variable, "f4", ("time_counter", "y", "x"), zlib=complevel > 0, complevel=max(complevel, 1), fill_value=FILL_VALUE
                )
                var.setncatts({**ORAS5_VARIABLES[variable], "units": units, "missing_value": FILL_VALUE,
                               "coordinates": "time_counter nav_lat nav_lon", "online_operation": "average"})  # fmt: skip
                var[:] = _to_file_values(data, grid.ocean, offset)
            paths.append(path)
        written[variable] = paths
    return written
