"""Readers of CMIP6 Omon (CESM2, GFDL-CM4, any CF-like model output) and ORAS5 files into one normalised form.

:func:`open_variable` opens one source's files of one variable (one file, or many split in time) and returns a
lazy (dask) ``xarray.Dataset`` holding

* the variable under its canonical name: ``sst`` (from ``tos``/``sosstsst``), ``thetao`` (from
  ``thetao``/``votemper``) or ``thermocline_depth`` (from ``so20chgt``), in °C or metres, NaN where the file has
  fill values (1e20, ``_FillValue``/``missing_value``, NaN);
* dims ``(time, [depth,] y, x)``; 2-D ``lat``/``lon`` coordinates on ``(y, x)`` with longitudes in 0–360 (1-D
  regular grids are broadcast), NaN where a file's coordinates are fill values;
* ``depth`` (thetao) in metres, positive down, increasing (CESM2's centimetre ``lev`` is converted);
* ``time`` as the project's month stamps (:mod:`bridging.timeaxis`): the (year, month) of each record, decoded
  from the CF time (midpoint of ``time_bnds`` when present; any cftime calendar, also GFDL's ``calendar_type``)
  or, for ORAS5, taken from the file name.

Units go through pint with the UDUNITS spellings (:mod:`bridging.io.units`); the latitude, longitude and time
are found by their conventional names, else by cf-xarray's detection (:mod:`bridging.io.coords`).

Every problem that makes a file unusable raises :class:`~bridging.errors.InputDataError` naming the file(s):
unreadable or truncated files, a missing variable, units that are not a temperature / length, an unknown grid layout, duplicate or overlapping
months, time running backwards, missing months, grids that differ between files, implausible values. Values are
checked in every month as the data are read (:mod:`bridging.io.plausibility`: undeclared fill values → NaN, values
outside the physical range and isolated spikes → error naming the month and the location), and a read that fails
inside the dask computation (a corrupt compressed chunk) names the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cftime
import numpy as np
import xarray as xr

from ..errors import InputDataError
from ..regrid import grid_fingerprint
from ..timeaxis import month_counter, time_from_year_month, year_month_from_counter
from .coords import horizontal_pairs, time_dim
from .plausibility import FILL_THRESHOLD, PLAUSIBLE, mask_fill_values, read_lazily, screen_array
from .units import TEMPERATURE, conversion, field_conversion

log = logging.getLogger(__name__)

#: source variable name → canonical name
CANONICAL_NAMES = {
    "tos": "sst",
    "sosstsst": "sst",
    "thetao": "thetao",
    "votemper": "thetao",
    "so20chgt": "thermocline_depth",
}
#: the deepest plausible level centre (m): deeper vertical coordinates are mislabelled (centimetres labelled m)
MAX_LEVEL_DEPTH = 11000.0

ORAS5_NAME = re.compile(
    r"^(?P<variable>[A-Za-z0-9]+)_control_monthly_highres_(?P<dims>2D|3D)_(?P<yyyymm>\d{6})_(?P<stream>CONS|OPER)_v(?P<version>[\d.]+)\.nc$"
)


@dataclass(frozen=True)
class _Part:
    """One file, normalised, with its months."""

    path: Path
    dataset: xr.Dataset
    counters: np.ndarray  # month counters (timeaxis.month_counter) of its records
    grid_hash: str


def _ym(counter: int) -> str:
    y, m = year_month_from_counter(counter)
    return f"{int(y):04d}-{int(m):02d}"


def _month_span(counters: np.ndarray) -> str:
    return f"{_ym(counters.min())}…{_ym(counters.max())}" if counters.size else "no months"


def _find_variable(ds: xr.Dataset, path: Path, variable: str | None) -> str:
    names = [variable] if variable else [v for v in CANONICAL_NAMES if v in ds.variables]
    if variable:
        if variable not in ds.variables:
            present = ", ".join(sorted(str(v) for v in ds.data_vars)) or "none"
            raise InputDataError(path, f"has no variable {variable!r} (data variables present: {present})")
        if variable not in CANONICAL_NAMES:
            raise InputDataError(
                path, f"variable {variable!r} is not one the readers know ({', '.join(CANONICAL_NAMES)})"
            )
        return variable
    if len(names) != 1:
        present = ", ".join(sorted(str(v) for v in ds.data_vars)) or "none"
        want = ", ".join(CANONICAL_NAMES)
        raise InputDataError(
            path, f"expected exactly one of the variables {want}, found {names or 'none'} (data variables: {present})"
        )
    return names[0]


def _horizontal(ds: xr.Dataset, var: xr.DataArray, path: Path, grids: dict | None = None):
    """2-D lat/lon arrays, the variable's (y, x) dim names, the layout (curvilinear | regular) and the grid's
    fingerprint (:func:`bridging.regrid.grid_fingerprint`).

    Among the candidate pairs that span the variable's horizontal dimensions, 2-D ones win, then the conventional
    names in order (a file may carry nominal 1-D axes beside the true 2-D cell positions). ``grids`` caches the
    result by the coordinates' raw bytes: the files of one record share one grid, which is then read but not
    converted and fingerprinted again (and they share one pair of arrays)."""
    pairs, valid = horizontal_pairs(ds, var)
    if not pairs:
        raise InputDataError(
            path,
            "unknown grid layout: no latitude/longitude coordinates (looked for lat/lon, latitude/longitude, nav_lat/nav_lon "
            "and, through cf-xarray, CF attributes (standard_name, units degrees_north/east) and latitude/longitude-like "
            f"names; variables present: {', '.join(sorted(map(str, ds.variables)))})",
        )
    vdims = var.dims
    # 2-D positions beat 1-D ones: a file with both (nominal 1-D axes beside true 2-D positions) means the 2-D.
    valid.sort(key=lambda v: v[2] != "curvilinear")
    found = valid[0] if valid else None
    if found is None:
        shown = "; ".join(f"{la}{tuple(ds[la].dims)} / {lo}{tuple(ds[lo].dims)}" for la, lo in pairs)
        raise InputDataError(
            path,
            f"unknown grid layout: {shown} do not span the horizontal dimensions of {var.name}{tuple(vdims)} (need 2-D "
            "lat/lon on the variable's two horizontal dims, or 1-D lat and lon on one each)",
        )
    lat_name, lon_name, layout = found
    lat_v, lon_v = ds[lat_name], ds[lon_name]
    lat_raw, lon_raw = np.asarray(lat_v.values), np.asarray(lon_v.values)
    dims = tuple(lat_v.dims) if layout == "curvilinear" else (lat_v.dims[0], lon_v.dims[0])
    ydim, xdim = dims
    key = None
    if grids is not None:
        h = hashlib.blake2b(digest_size=16)
        for part in (lat_name, lon_name, layout, str(lat_raw.dtype), str(lat_raw.shape), str(lon_raw.shape)):
            h.update(part.encode() + b"\0")
        h.update(np.ascontiguousarray(lat_raw).view(np.uint8))
        h.update(np.ascontiguousarray(lon_raw).view(np.uint8))
        key = ("raw", h.hexdigest())
        if key in grids:
            lat, lon, cached_layout, grid_hash = grids[key]
            return lat, lon, (str(ydim), str(xdim)), cached_layout, grid_hash
    if layout == "curvilinear":
        lat = np.asarray(lat_raw, dtype=np.float64)
        lon = np.asarray(lon_raw, dtype=np.float64)
    else:
        lat, lon = np.meshgrid(np.asarray(lat_raw, np.float64), np.asarray(lon_raw, np.float64), indexing="ij")
    bad = ~np.isfinite(lat) | ~np.isfinite(lon) | (np.abs(lat) >= FILL_THRESHOLD) | (np.abs(lon) >= FILL_THRESHOLD)
    lat[bad] = np.nan
    lon[bad] = np.nan
    if bad.all():
        raise InputDataError(path, f"coordinates {lat_name}/{lon_name} hold no valid values")
    if np.nanmax(np.abs(lat)) > 90.0 + 1e-6:
        raise InputDataError(
            path,
            f"{lat_name} has values beyond ±90° ({np.nanmin(lat):.3g}…{np.nanmax(lat):.3g}): not latitudes in degrees",
        )
    lon = np.mod(lon, 360.0)
    grid_hash = grid_fingerprint(lat, lon)
    if key is not None:
        # Files of one grid share one pair of coordinate arrays (not two float64 arrays of the grid per file).
        lat, lon, _, _ = grids.setdefault(("fingerprint", grid_hash), (lat, lon, layout, grid_hash))
        grids[key] = (lat, lon, layout, grid_hash)
    return lat, lon, (str(ydim), str(xdim)), layout, grid_hash


def _decode_months(ds: xr.Dataset, time_dim: str, path: Path) -> np.ndarray:
    """Month counters of a file's records from its CF time coordinate (bounds midpoints when present)."""
    if time_dim not in ds.variables:
        raise InputDataError(path, f"dimension {time_dim!r} has no coordinate variable, so its months are unknown")
    tvar = ds[time_dim]
    units = tvar.attrs.get("units")
    if not units or "since" not in str(units):
        raise InputDataError(
            path, f"time coordinate {time_dim!r} has no CF units ('<unit> since <date>'), got {units!r}"
        )
    calendar = str(tvar.attrs.get("calendar") or tvar.attrs.get("calendar_type") or "standard").strip().lower()
    values = np.asarray(tvar.values, dtype=np.float64)
    bounds_name = tvar.attrs.get("bounds")
    if bounds_name and bounds_name in ds.variables:
        bounds = np.asarray(ds[bounds_name].values, dtype=np.float64)
        if bounds.shape == (values.size, 2) and np.isfinite(bounds).all():
            # Month edges are unambiguous where stamps are not (some models stamp the end of the month).
            values = bounds.mean(axis=1)
    if not np.isfinite(values).all():
        raise InputDataError(path, f"time coordinate {time_dim!r} has missing values")
    try:
        dates = cftime.num2date(values, str(units), calendar=calendar, only_use_cftime_datetimes=True)
    except (ValueError, TypeError) as err:
        raise InputDataError(path, f"cannot decode time (units {units!r}, calendar {calendar!r}): {err}") from None
    dates = np.atleast_1d(dates)
    return month_counter([d.year for d in dates], [d.month for d in dates])


def _check_months_in_file(counters: np.ndarray, path: Path) -> None:
    if counters.size == 0:
        raise InputDataError(path, "has no time records")
    step = np.diff(counters)
    if (step < 0).any():
        k = int(np.flatnonzero(step < 0)[0])
        raise InputDataError(
            path, f"time is not increasing: record {k + 1} is {_ym(counters[k + 1])} after {_ym(counters[k])}"
        )
    if (step == 0).any():
        k = int(np.flatnonzero(step == 0)[0])
        raise InputDataError(path, f"duplicate month {_ym(counters[k])} (records {k} and {k + 1})")
    if (step > 1).any():
        k = int(np.flatnonzero(step > 1)[0])
        raise InputDataError(path, f"missing months inside the file: {_ym(counters[k] + 1)}…{_ym(counters[k + 1] - 1)}")


def _depth_axis(ds: xr.Dataset, var: xr.DataArray, zdim: str, path: Path) -> tuple[np.ndarray, bool]:
    """Level centres in metres (positive down) and whether the level order must be reversed to increase."""
    if zdim not in ds.variables:
        raise InputDataError(path, f"vertical dimension {zdim!r} of {var.name} has no coordinate variable")
    z = ds[zdim]
    units = z.attrs.get("units")
    scale, _ = conversion(units, "m", path=path, variable=f"vertical coordinate {zdim!r}")
    depth = np.asarray(z.values, dtype=np.float64) * scale
    if not np.isfinite(depth).all():
        raise InputDataError(path, f"vertical coordinate {zdim!r} has missing values")
    if str(z.attrs.get("positive", "")).lower() == "up" or (depth <= 0).all() and (depth < 0).any():
        depth = -depth
    if depth.size > 1 and not (np.all(np.diff(depth) > 0) or np.all(np.diff(depth) < 0)):
        raise InputDataError(path, f"vertical coordinate {zdim!r} is not monotonic: {depth.tolist()}")
    if np.abs(depth).max() > MAX_LEVEL_DEPTH:
        raise InputDataError(
            path,
            f"vertical coordinate {zdim!r} reaches {np.abs(depth).max():.6g} m with units {units!r}, deeper than any ocean "
            f"(max {MAX_LEVEL_DEPTH:g} m); are the levels in cm?",
        )
    reverse = depth.size > 1 and depth[1] < depth[0]
    return (depth[::-1] if reverse else depth), bool(reverse)


def _chunk_months(var: xr.DataArray, chunk_mb: float) -> int:
    per_month = 4.0 * float(np.prod([n for d, n in var.sizes.items() if d != "time"]))
    return max(1, int(chunk_mb * 2**20 // max(per_month, 1.0)))


class _FileLocator:
    """(lat, lon) of a grid point of a file, read only when an error needs it (nothing large travels with tasks)."""

    def __init__(self, path: Path, variable: str):
        self.path, self.variable = path, variable

    def __dask_tokenize__(self):
        return ("bridging-file-locator", str(self.path), self.variable)

    def __call__(self, j: int, i: int) -> tuple[float, float]:
        with xr.open_dataset(self.path, engine="netcdf4", decode_times=False, decode_timedelta=False) as raw:
            lat, lon, _, _, _ = _horizontal(raw, raw[self.variable], self.path)
        return float(lat[j, i]), float(lon[j, i])


def _open_file(path: Path, variable: str | None, chunk_mb: float, grids: dict | None = None) -> _Part:
    if not path.is_file():
        raise InputDataError(path, "file does not exist")
    try:
        # Lazily indexed backend arrays (no dask yet): the probes below read single slabs straight from the file.
        raw = xr.open_dataset(
            path, engine="netcdf4", decode_times=False, decode_timedelta=False, mask_and_scale=True, cache=False
        )
    except Exception as err:  # netCDF4/HDF5 raise OSError, RuntimeError, ValueError … for damaged files
        raise InputDataError(
            path,
            f"cannot be read as netCDF ({type(err).__name__}: {err}); the file is corrupt, truncated or not netCDF",
        ) from None
    name = _find_variable(raw, path, variable)
    canonical = CANONICAL_NAMES[name]
    var = raw[name]
    lat, lon, (ydim, xdim), layout, grid_hash = _horizontal(raw, var, path, grids)

    oras5 = ORAS5_NAME.match(path.name)
    tdim = time_dim(var, raw)
    if oras5:
        # ORAS5's time_counter units/calendar are not documented; the month in the file name is authoritative.
        yyyymm = int(oras5["yyyymm"])
        counters = month_counter([yyyymm // 100], [yyyymm % 100])
        if tdim is None:
            var = var.expand_dims("time")
            tdim = "time"
        elif var.sizes[tdim] != 1:
            raise InputDataError(path, f"an ORAS5 monthly file must hold one month, found {var.sizes[tdim]} records")
    else:
        if tdim is None:
            raise InputDataError(path, f"{name}{tuple(var.dims)} has no time dimension")
        counters = _decode_months(raw, tdim, path)
    _check_months_in_file(counters, path)

    other = [d for d in var.dims if d not in (tdim, ydim, xdim)]
    if canonical == "thetao":
        if len(other) != 1:
            raise InputDataError(
                path, f"{name}{tuple(var.dims)}: expected one vertical dimension besides time and {ydim}/{xdim}"
            )
        zdim = str(other[0])
        depth, reverse = _depth_axis(raw, var, zdim, path)
        var = var.transpose(tdim, zdim, ydim, xdim)
        if reverse:
            var = var.isel({zdim: slice(None, None, -1)})
        var = var.rename({tdim: "time", zdim: "depth", ydim: "y", xdim: "x"})
    else:
        if other:
            raise InputDataError(path, f"{name}{tuple(var.dims)}: unexpected dimensions {other} for a 2-D field")
        var = var.transpose(tdim, ydim, xdim).rename({tdim: "time", ydim: "y", xdim: "x"})
        depth = None

    source_units = var.attrs.get("units")
    scale, offset = field_conversion(source_units, canonical, path=path, variable=name)
    _probe(var, canonical, scale, offset, path)
    # Keep only the data; the file's own coordinates (nlat/nlon indices, x/y projection, lev in cm) are replaced.
    # Each block is screened as it is read: undeclared fill values → NaN (before any scaling: after cm → m, 1e20
    # would no longer look like one), units converted, range and spikes checked (bridging.io.plausibility).
    months_per_chunk = _chunk_months(var, chunk_mb)
    data = read_lazily(var.variable, path, name, (months_per_chunk, *var.shape[1:]))
    years, months = year_month_from_counter(counters)
    data = screen_array(
        data, canonical=canonical, scale=scale, offset=offset, label=path, variable=name,
        months=[f"{int(y):04d}-{int(m):02d}" for y, m in zip(years, months)], locate=_FileLocator(path, name),
        extra_dims=("depth",) if canonical == "thetao" else (),
    )  # fmt: skip
    var = xr.DataArray(data, dims=var.dims, name=name, attrs=dict(var.attrs))

    coords = {
        "time": time_from_year_month(years, months),
        "lat": (("y", "x"), lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": (("y", "x"), lon, {"units": "degrees_east", "standard_name": "longitude"}),
    }
    if depth is not None:
        coords["depth"] = ("depth", depth, {"units": "m", "positive": "down", "standard_name": "depth"})
    out = xr.Dataset({canonical: var.assign_attrs(units="degC" if canonical in TEMPERATURE else "m")}, coords=coords)
    out.attrs.update({"source_variable": name, "source_units": str(source_units), "grid_layout": layout})
    # Close the file now: an open netCDF file keeps the chunks read (here the coordinates and the probed month) in
    # its HDF5 cache, three whole-grid chunks for an ORAS5 file, and xarray keeps up to 128 files open. The reads
    # of the computation reopen it (see bridging.io.plausibility.bounded_file_cache).
    raw.close()
    return _Part(path, out, counters, grid_hash)


def _probe(var: xr.DataArray, canonical: str, scale: float, offset: float, path: Path) -> None:
    """Read one or two slabs now, straight from the file: the last record (a truncated file fails here, not deep
    inside a later computation) and the first record's top level (its values must be plausible for the declared
    units; the same slab when a file holds one month of a 2-D field)."""
    try:
        last = var.isel(time=-1)
        if "depth" in var.dims:
            last = last.isel(depth=-1)
        last = np.asarray(last.values)
        if "depth" in var.dims or var.sizes["time"] > 1:
            first = var.isel(time=0)
            if "depth" in var.dims:
                first = first.isel(depth=0)
            first = np.asarray(first.values)
        else:
            first = last
    except Exception as err:
        raise InputDataError(
            path, f"reading {var.name} failed ({type(err).__name__}: {err}); the file is corrupt or truncated"
        ) from None
    first = mask_fill_values(first).astype(np.float64)
    finite = first[np.isfinite(first)] * scale + offset
    if finite.size == 0:
        raise InputDataError(path, f"{var.name}: the first month holds no valid values (all fill values)")
    lo, hi = PLAUSIBLE[canonical]
    median = float(np.median(finite))
    if not lo <= median <= hi:
        raise InputDataError(
            path,
            f"{var.name}: values are implausible for units {var.attrs.get('units')!r} after conversion (median {median:.4g}, "
            f"expected {lo:g}…{hi:g} {'°C' if canonical in TEMPERATURE else 'm'}); mislabelled units?",
        )


def _check_sequence(parts: list[_Part]) -> None:
    for prev, nxt in zip(parts[:-1], parts[1:]):
        last, first = int(prev.counters[-1]), int(nxt.counters[0])
        if first <= last:
            overlap_hi = min(last, int(nxt.counters[-1]))
            kind = "duplicate month" if first == overlap_hi else "overlapping months"
            raise InputDataError(
                [prev.path, nxt.path],
                f"{kind} {_ym(first)}…{_ym(overlap_hi)}: {prev.path.name} covers {_month_span(prev.counters)}, "
                f"{nxt.path.name} covers {_month_span(nxt.counters)}",
            )
        if first > last + 1:
            raise InputDataError(
                [prev.path, nxt.path],
                f"missing months {_ym(last + 1)}…{_ym(first - 1)} between {prev.path.name} and {nxt.path.name}",
            )


def open_variable(
    paths: str | Path | Sequence[str | Path],
    variable: str | None = None,
    *,
    years: Sequence[int] | None = None,
    chunk_mb: float = 128.0,
) -> xr.Dataset:
    """Open one variable of one source from one or many files as a lazy, normalised Dataset (see module doc).

    ``variable``: the name in the files (``tos``, ``thetao``, ``sosstsst``, ``so20chgt``, ``votemper``); None =
    the only known one present. ``years`` (first, last, inclusive) keeps those years and requires every month of
    them; files entirely outside are not read further. ``chunk_mb``: target size of one dask chunk (whole
    horizontal slabs and whole columns, split in time only).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputDataError(None, f"no files given for variable {variable!r}")
    if len(set(p.resolve() for p in paths)) != len(paths):
        dup = sorted({str(p) for p in paths if sum(q.resolve() == p.resolve() for q in paths) > 1})
        raise InputDataError(dup, "the same file is listed more than once")
    grids: dict = {}
    parts = [_open_file(p, variable, chunk_mb, grids) for p in paths]
    names = {part.dataset.attrs["source_variable"] for part in parts}
    if len(names) > 1:
        raise InputDataError(paths, f"files hold different variables: {sorted(names)}")
    if years is not None:
        lo, hi = month_counter(int(years[0]), 1), month_counter(int(years[1]), 12)
        parts = [p for p in parts if p.counters[-1] >= lo and p.counters[0] <= hi]
        if not parts:
            raise InputDataError(paths, f"no file holds any month of the years {years[0]}–{years[1]}")
    parts.sort(key=lambda p: int(p.counters[0]))
    _check_sequence(parts)
    reference = parts[0]
    for part in parts[1:]:
        if part.grid_hash != reference.grid_hash:
            raise InputDataError([reference.path, part.path], "the horizontal grids (lat/lon) of these files differ")
        if "depth" in reference.dataset.coords and not np.allclose(
            part.dataset["depth"].values, reference.dataset["depth"].values
        ):
            raise InputDataError([reference.path, part.path], "the vertical levels of these files differ")
    datasets = [p.dataset for p in parts]
    ds = (
        datasets[0]
        if len(datasets) == 1
        else xr.concat(datasets, dim="time", data_vars="all", coords="minimal", compat="override", join="override")
    )
    counters = np.concatenate([p.counters for p in parts])
    if years is not None:
        keep = (counters >= lo) & (counters <= hi)
        if counters[0] > lo or counters[-1] < hi:
            raise InputDataError(
                [p.path for p in parts],
                f"the record covers {_month_span(counters)}, which does not include every month of {years[0]}–{years[1]}",
            )
        ds = ds.isel(time=np.flatnonzero(keep))
    canonical = next(iter(ds.data_vars))
    # Merge fragmented chunks (one-month ORAS5 files give one tiny task per month). Chunks that are merely cut by
    # the years selection stay as they are: re-chunking those would read every source chunk twice.
    months_per_chunk = _chunk_months(ds[canonical], chunk_mb)
    if len(ds[canonical].chunks[0]) > 2 * int(np.ceil(ds.sizes["time"] / months_per_chunk)):
        ds[canonical] = ds[canonical].chunk({"time": months_per_chunk})
    ds.attrs = {
        **reference.dataset.attrs,
        "input_files": json.dumps([str(p.path) for p in parts]),
        "grid_fingerprint": reference.grid_hash,
    }
    return ds


def input_files(ds: xr.Dataset) -> list[str]:
    """The files a Dataset from :func:`open_variable` was read from."""
    return json.loads(ds.attrs.get("input_files", "[]"))
