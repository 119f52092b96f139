"""Coordinates of the files the readers and ``bridging nino-stats`` open: which variables are the latitude, the
longitude and the time, and which (lat, lon) pairs span a field's horizontal dimensions.

The conventional names of the supported layouts come first (CMIP6 ``lat``/``lon``, NEMO ``nav_lat``/``nav_lon`` …,
a file may carry several pairs); anything else is found through cf-xarray's detection: CF attributes first
(``standard_name``, ``units`` such as ``degrees_north``, ``axis``, ``_CoordinateAxisType``, datetime values), then
its guess from the variable names. Data variables count as candidates too (a file need not list its coordinates in a
``coordinates`` attribute).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import xarray as xr

LAT_NAMES = ("lat", "latitude", "nav_lat", "nav_lat_grid_T", "TLAT", "geolat", "yh_lat")
LON_NAMES = ("lon", "longitude", "nav_lon", "nav_lon_grid_T", "TLONG", "geolon", "xh_lon")
TIME_NAMES = ("time", "time_counter", "t")


def _all_as_coords(ds: xr.Dataset, keep: Iterable[Hashable] = ()) -> xr.Dataset:
    """``ds`` with every variable but ``keep`` as a coordinate: cf-xarray looks for coordinates among ``.coords``."""
    import cf_xarray  # noqa: F401  (registers the .cf accessor)

    keep = set(keep)
    return ds.set_coords([v for v in ds.data_vars if v not in keep])


def cf_coordinates(ds: xr.Dataset, key: str, keep: Iterable[Hashable] = ()) -> list[str]:
    """Names of the variables cf-xarray takes for ``key`` (``latitude``, ``longitude``, ``time``): by their CF
    attributes, else by its guess from the names. ``keep``: data variables that are not candidates."""
    coords = _all_as_coords(ds, keep)
    found = coords.cf.coordinates.get(key, [])
    if not found:
        found = coords.cf.guess_coord_axis().cf.coordinates.get(key, [])
    return [str(name) for name in found]


def latlon_pairs(ds: xr.Dataset, keep: Iterable[Hashable] = (), by_name: bool = True) -> list[tuple[str, str]]:
    """Candidate (latitude, longitude) pairs: the conventional name pairs present (``by_name``), then every pair
    cf-xarray detects."""
    pairs = [(la, lo) for la, lo in zip(LAT_NAMES, LON_NAMES) if by_name and la in ds.variables and lo in ds.variables]
    lats, lons = cf_coordinates(ds, "latitude", keep), cf_coordinates(ds, "longitude", keep)
    pairs += [(la, lo) for la in lats for lo in lons if (la, lo) not in pairs]
    return pairs


def layout(lat: xr.Variable, lon: xr.Variable, dims: Iterable[Hashable]) -> str | None:
    """``curvilinear`` (2-D lat and lon on the same two of ``dims``), ``regular`` (1-D lat and lon, each on its own
    one of ``dims``) or None (the pair does not span a field with ``dims``)."""
    dims = set(dims)
    if lat.ndim == 2 and lon.ndim == 2 and lat.dims == lon.dims and set(lat.dims) <= dims:
        return "curvilinear"
    if lat.ndim == 1 and lon.ndim == 1 and lat.dims != lon.dims and {lat.dims[0], lon.dims[0]} <= dims:
        return "regular"
    return None


def horizontal_pairs(
    ds: xr.Dataset, var: xr.DataArray, by_name: bool = True
) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """The candidate pairs (:func:`latlon_pairs`), and those that span ``var``'s dimensions with their layout, in the
    candidates' order."""
    pairs = latlon_pairs(ds, keep=[var.name], by_name=by_name)
    spanning = [(la, lo, layout(ds[la].variable, ds[lo].variable, var.dims)) for la, lo in pairs]
    return pairs, [(la, lo, kind) for la, lo, kind in spanning if kind is not None]


def time_dim(var: xr.DataArray, ds: xr.Dataset) -> str | None:
    """The dimension of ``var`` that is time: a conventional name, else a coordinate cf-xarray takes for time
    (``axis: T``, ``standard_name: time``, datetime values, or a name such as ``time_counter``)."""
    for name in var.dims:
        if name in TIME_NAMES:
            return str(name)
    candidates = [name for name in var.dims if name in ds.variables]
    if not candidates:
        return None
    times = set(cf_coordinates(ds[candidates], "time"))
    return next((str(name) for name in candidates if str(name) in times), None)
