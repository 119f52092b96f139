"""CF metadata of every output (zarr stores and netCDF files): coordinate attributes, time and climatology bounds,
the global ``Conventions``, and a check that every variable is described.

Writers set the attributes of their own variables (units in UDUNITS spelling, ``standard_name`` where the CF table
has one, ``long_name``, ``cell_methods``); :func:`complete` adds what is common to all outputs just before writing:
the attributes of the shared coordinates (``lat``, ``lon``, ``time``, ``member``, the observable coordinates …),
``time_bnds`` (each monthly mean spans its month), and ``Conventions``. :func:`missing_attributes` lists what a
dataset still lacks; the tests run it, and a CF checker, on every output of a run.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

import cftime
import numpy as np
import xarray as xr

CONVENTIONS = "CF-1.11"

#: attributes of coordinates shared by the outputs, by name
COORDINATE_ATTRS: dict[str, dict[str, str]] = {
    "lat": {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"},
    "lon": {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"},
    "time": {"standard_name": "time", "long_name": "time (middle of the month of a monthly mean)", "axis": "T"},
    "member": {"standard_name": "realization", "long_name": "ensemble member (realization)", "units": "1"},
    "month": {"long_name": "calendar month of the monthly climatology", "units": "1"},
    "obs": {"long_name": "observable (pseudo-observation position and kind)", "units": "1"},
    "obs_variable": {"long_name": "kind of the observable: sst or thermocline_depth"},
    "obs_lat": {
        "standard_name": "latitude",
        "long_name": "latitude of the observable's box centre",
        "units": "degrees_north",
    },
    "obs_lon": {
        "standard_name": "longitude",
        "long_name": "longitude of the observable's box centre",
        "units": "degrees_east",
    },
    "obs_lat_min": {"long_name": "southern edge of the observable's box", "units": "degrees_north"},
    "obs_lat_max": {"long_name": "northern edge of the observable's box", "units": "degrees_north"},
    "obs_lon_min": {"long_name": "western edge of the observable's box", "units": "degrees_east"},
    "obs_lon_max": {"long_name": "eastern edge of the observable's box", "units": "degrees_east"},
    "obs_node": {"long_name": "CF23 node of the observable (1-based)", "units": "1"},
    "obs_node_lon": {
        "standard_name": "longitude",
        "long_name": "longitude of the observable's CF23 node",
        "units": "degrees_east",
    },
    "node": {"long_name": "CF23 equatorial node index", "units": "1"},
    "node_lon": {
        "standard_name": "longitude",
        "long_name": "longitude of the CF23 equatorial node",
        "units": "degrees_east",
    },
    "cf23_node": {"long_name": "CF23 equatorial node index", "units": "1"},
    "cf23_node_lon": {
        "standard_name": "longitude",
        "long_name": "longitude of the CF23 equatorial node",
        "units": "degrees_east",
    },
    "latent": {"long_name": "latent coordinate of the autoencoder", "units": "1"},
    "state": {"long_name": "element of the augmented state x = [z; y] (latent, then observables)", "units": "1"},
    "experiment": {"long_name": "experiment of a batched filter run (inflation × model-noise scale)", "units": "1"},
    "check_member": {"long_name": "member whose decoded fields are checked against the analysis", "units": "1"},
    "moment": {"long_name": "moment of decoded vs analysis observables (sums over members and observables)"},
    "mode": {"long_name": "EOF mode (1 = leading)", "units": "1"},
    "event": {"long_name": "kind of DJF event of the composite"},
    "pdf_x": {"long_name": "index anomaly at which the PDF is evaluated", "units": "degC"},
    "winter": {"long_name": "year of the winter's December", "units": "1"},
}

#: the time axis every store shares (bridging.timeaxis): mid-month cftime noleap stamps
TIME_BOUNDS = "time_bnds"
CLIMATOLOGY_TIME = "climatology_time"
CLIMATOLOGY_BOUNDS = "climatology_bounds"


def _month_start(year: int, month: int, calendar: str = "noleap"):
    """The first instant of a month (``month`` may be 13: January of the next year)."""
    return cftime.datetime(int(year) + (int(month) - 1) // 12, (int(month) - 1) % 12 + 1, 1, calendar=calendar)


def time_bounds(time: xr.DataArray) -> xr.DataArray:
    """(time, nv) bounds of monthly means (cftime stamps): the first instant of the month and of the next month,
    in the calendar of ``time``."""
    from .timeaxis import year_month

    calendar = time.values.flat[0].calendar
    years, months = year_month(time)
    bounds = np.array(
        [[_month_start(y, m, calendar), _month_start(y, m + 1, calendar)] for y, m in zip(years, months)],
        dtype=object,
    ).reshape(-1, 2)
    return xr.DataArray(bounds, dims=("time", "nv"))


def climatology_coords(period: Sequence[int]) -> dict[str, xr.DataArray]:
    """The CF climatological time of a monthly climatology over ``period`` (years, inclusive): a mid-month stamp
    of the first year per calendar month, with bounds from the month's start in the first year to its end in the
    last (CF §7.4)."""
    first, last = int(period[0]), int(period[1])
    stamps = np.array([cftime.DatetimeNoLeap(first, m, 15) for m in range(1, 13)], dtype=object)
    bounds = np.array([[_month_start(first, m), _month_start(last, m + 1)] for m in range(1, 13)], dtype=object)
    return {
        CLIMATOLOGY_TIME: xr.DataArray(
            stamps,
            dims="month",
            attrs={
                "standard_name": "time",
                "long_name": f"climatological time: each calendar month over the years {first}-{last}",
                "climatology": CLIMATOLOGY_BOUNDS,
            },
        ),
        CLIMATOLOGY_BOUNDS: xr.DataArray(
            bounds,
            dims=("month", "nv"),
            attrs={"long_name": f"climatology bounds: each calendar month, {first}-{last}"},
        ),
    }


def time_encodings(ds: xr.Dataset) -> dict:
    """The encoding of every time-valued variable of ``ds`` (the store time units and calendar), and no fill value
    for coordinates and bounds (CF: they must not have one)."""
    from .timeaxis import time_encoding

    names = ("time", TIME_BOUNDS, CLIMATOLOGY_TIME, CLIMATOLOGY_BOUNDS)
    encoding = {name: time_encoding() for name in names if name in ds.variables}
    for name in no_fill_variables(ds):
        encoding[name] = {**encoding.get(name, {}), "_FillValue": None}
    return encoding


def no_fill_variables(ds: xr.Dataset) -> list[str]:
    """The coordinate and bounds variables of ``ds``: written without a ``_FillValue``."""
    names = set(ds.coords) | {TIME_BOUNDS, CLIMATOLOGY_BOUNDS}
    return sorted(str(n) for n in names if n in ds.variables)


def complete(ds: xr.Dataset, *, bounds: bool = True) -> xr.Dataset:
    """``ds`` with the shared coordinates' attributes, ``time_bnds`` (when ``bounds`` and a time axis exist) and
    ``Conventions``; attributes a writer already set are kept."""
    ds = ds.copy()
    for name, attrs in COORDINATE_ATTRS.items():
        if name in ds.variables:
            merged = {**attrs, **{k: v for k, v in ds[name].attrs.items() if k not in attrs}}
            if name in ds.coords:
                ds.coords[name].attrs = merged
            else:
                ds[name].attrs = merged
    if bounds and "time" in ds.dims and "time" in ds.coords and TIME_BOUNDS not in ds.variables:
        values = ds["time"].values
        if values.size and isinstance(values.flat[0], cftime.datetime):
            ds[TIME_BOUNDS] = time_bounds(ds["time"])
    if TIME_BOUNDS in ds.variables:
        ds["time"].attrs["bounds"] = TIME_BOUNDS
    ds.attrs["Conventions"] = CONVENTIONS
    if "history" not in ds.attrs:
        from . import __version__

        created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        ds.attrs["history"] = f"{created} written by enso-bridge {__version__}"
    return ds


#: variables that need no units: flags, strings, bounds, and the time variables (their units are an encoding)
_NO_UNITS = {"time", TIME_BOUNDS, CLIMATOLOGY_TIME, CLIMATOLOGY_BOUNDS}


def missing_attributes(ds: xr.Dataset) -> list[str]:
    """What ``ds`` lacks of the project's CF profile: ``Conventions``; a ``long_name`` (or ``standard_name``) on
    every variable but bounds; ``units`` on every numeric variable but flags, times and variables on ``obs`` whose
    comment is the observables' units vector (units by the ``obs_variable`` flag); ``standard_name``, ``units`` and ``axis`` of lat/lon."""
    problems = []
    if not str(ds.attrs.get("Conventions", "")).startswith("CF-"):
        problems.append("global attribute Conventions")
    bounds = {ds[v].attrs.get("bounds") for v in ds.variables} | {ds[v].attrs.get("climatology") for v in ds.variables}
    for name, var in ds.variables.items():
        if name in bounds:
            continue
        if not (var.attrs.get("long_name") or var.attrs.get("standard_name")):
            problems.append(f"{name}: long_name")
        numeric = var.dtype.kind in "biuf"
        is_flag = "flag_values" in var.attrs or "flag_meanings" in var.attrs
        # observables of both kinds side by side: units by the obs_variable flag, stated in the comment
        comment = str(var.attrs.get("comment", ""))
        units_vector = "obs_variable" in ds.variables and "obs_variable flag" in comment
        if numeric and not is_flag and name not in _NO_UNITS and "units" not in var.attrs and not units_vector:
            problems.append(f"{name}: units")
    for name in ("lat", "lon"):
        if name in ds.variables:
            for key, value in COORDINATE_ATTRS[name].items():
                if key != "long_name" and ds[name].attrs.get(key) != value:
                    problems.append(f"{name}: {key}")
    return problems
