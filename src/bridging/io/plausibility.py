"""Reading user files safely: plausibility checked block by block as the data stream through (no second pass over
a file), and read errors inside the dask computation named by file.

For every block of a field read from a user's file (whole horizontal slabs, any months):

* **fill values without attributes** are missing: ``|v| >= 1e19`` (CMIP6's 1e20, 1e36, netCDF's default
  9.96921e36) and the sentinels −999, −999.9, −9999 and −99.99 (compared in float32, as files store them) become NaN.
  Attributes ``_FillValue``/``missing_value`` are applied by xarray before;
* **physical range**: after unit conversion, SST and ``thetao`` must lie in −5…45 °C and the thermocline depth in
  0…1000 m; a value outside is an error;
* **isolated spikes**: a value farther than :data:`SPIKE` from every one of its valid horizontal neighbours (at
  least three of the eight) is an error. Fronts pass (a cell on a front has a neighbour on its own side); a single
  corrupt cell does not.

Errors are :class:`~bridging.errors.InputDataError` naming the file, the variable, the month and the location
(latitude/longitude and grid indices). They are raised inside the dask task that reads the block, so they reach the
user through any scheduler (the error is picklable). :func:`read_lazily` builds the dask array of a file's variable
so that a failed read (a corrupt compressed chunk, found only when that chunk is read) is such an error too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputDataError

#: plausible ranges after conversion to °C / metres
PLAUSIBLE = {"sst": (-5.0, 45.0), "thetao": (-5.0, 45.0), "thermocline_depth": (0.0, 1000.0)}
#: a value farther than this from all of its valid neighbours is an isolated spike (°C / m)
SPIKE = {"sst": 15.0, "thetao": 15.0, "thermocline_depth": 500.0}
UNITS = {"sst": "°C", "thetao": "°C", "thermocline_depth": "m"}
#: |values| at or above this are fill values even without a _FillValue attribute (CMIP6 uses 1e20)
FILL_THRESHOLD = 1e19
#: fill values that files write without declaring them (compared after rounding to float32)
FILL_SENTINELS = np.array([-999.0, -999.9, -9999.0, -99.99], dtype=np.float32)
#: a spike needs at least this many valid neighbours (coastal points with fewer are left alone)
MIN_NEIGHBOURS = 3

Locator = Callable[[int, int], "tuple[float, float] | None"]


class NamedReads:
    """A file's variable as an array for ``dask.array.from_array`` whose read errors name the file.

    HDF5 reports a corrupt compressed chunk only when that chunk is read, deep inside a dask computation, as a bare
    ``RuntimeError: NetCDF: HDF error``; here it becomes an InputDataError naming the file and the records."""

    def __init__(self, variable, path: Path, name: str):
        self.variable, self.path, self.name = variable, path, name
        self.shape, self.dtype, self.ndim = variable.shape, variable.dtype, variable.ndim

    def __getitem__(self, key):
        try:
            return np.asarray(self.variable[key].values)
        except Exception as err:  # netCDF4/HDF5 raise RuntimeError, OSError, ValueError … for damaged data
            first = key[0] if isinstance(key, tuple) and key and isinstance(key[0], slice) else None
            records = (
                f" (records {first.start}…{first.stop - 1})" if first is not None and first.stop is not None else ""
            )
            raise InputDataError(
                self.path, f"reading {self.name}{records} failed ({type(err).__name__}: {err}); the file is damaged"
            ) from None


def read_lazily(variable, path, name: str, chunks: tuple[int, ...]):
    """A dask array of a lazily indexed file variable (an ``xarray.Variable`` not yet loaded), whose read errors
    name the file (:class:`NamedReads`)."""
    import dask.array as dsa
    from dask.base import tokenize

    stat = Path(path).stat()
    token = tokenize(str(path), stat.st_size, stat.st_mtime_ns, name, variable.dims, variable.shape, chunks)
    return dsa.from_array(
        NamedReads(variable, path, name),
        chunks=chunks,
        name=f"read-{name}-{token}",
        meta=np.empty((0,) * variable.ndim, variable.dtype),
    )


class ArrayLocator:
    """(lat, lon) of grid point (j, i) from 2-D coordinate arrays or 1-D latitude and longitude axes."""

    def __init__(self, lat, lon):
        self.lat, self.lon = np.asarray(lat), np.asarray(lon)

    def __dask_tokenize__(self):
        from dask.base import tokenize

        return ("bridging-array-locator", tokenize(self.lat, self.lon))

    def __call__(self, j: int, i: int) -> tuple[float, float]:
        if self.lat.ndim == 1:
            return float(self.lat[j]), float(self.lon[i])
        return float(self.lat[j, i]), float(self.lon[j, i])


def mask_fill_values(values: np.ndarray) -> np.ndarray:
    """Float copy of ``values`` with undeclared fill values (see module docstring) set to NaN."""
    out = np.array(values, dtype=np.result_type(values.dtype, np.float32), copy=True)
    with np.errstate(invalid="ignore"):
        fill = (np.abs(out) >= FILL_THRESHOLD) | np.isin(out.astype(np.float32), FILL_SENTINELS)
    out[fill] = np.nan
    return out


def isolated_spikes(values: np.ndarray, threshold: float) -> np.ndarray:
    """Indices (as from ``np.nonzero``) of values farther than ``threshold`` from every valid one of their eight
    horizontal neighbours (the last two axes), given at least :data:`MIN_NEIGHBOURS` of them."""
    v = np.asarray(values, dtype=np.float32)
    # Cheap screen first: a spike differs by more than the threshold from its neighbours along both axes.
    with np.errstate(invalid="ignore"):
        dx = np.abs(np.diff(v, axis=-1)) > threshold
        dy = np.abs(np.diff(v, axis=-2)) > threshold
    candidate = np.zeros(v.shape, bool)
    candidate[..., :, :-1] |= dx
    candidate[..., :, 1:] |= dx
    candidate[..., :-1, :] |= dy
    candidate[..., 1:, :] |= dy
    if not candidate.any():
        return tuple(np.zeros(0, np.intp) for _ in range(v.ndim))
    idx = np.nonzero(candidate)
    lead, j, i = idx[:-2], idx[-2], idx[-1]
    ny, nx = v.shape[-2:]
    centre = v[idx]
    min_diff = np.full(centre.shape, np.inf, np.float32)
    n_valid = np.zeros(centre.shape, np.int32)
    for dj in (-1, 0, 1):
        for di in (-1, 0, 1):
            if dj == di == 0:
                continue
            jj, ii = j + dj, i + di
            inside = (jj >= 0) & (jj < ny) & (ii >= 0) & (ii < nx)
            neighbour = np.full(centre.shape, np.nan, np.float32)
            neighbour[inside] = v[(*(a[inside] for a in lead), jj[inside], ii[inside])]
            ok = np.isfinite(neighbour)
            n_valid += ok
            with np.errstate(invalid="ignore"):
                min_diff = np.where(ok, np.minimum(min_diff, np.abs(neighbour - centre)), min_diff)
    spike = np.isfinite(centre) & (n_valid >= MIN_NEIGHBOURS) & (min_diff > threshold)
    return tuple(a[spike] for a in idx)


def _where(label, variable: str, index: tuple, months: Sequence[str] | None, time_offset: int, locate: Locator | None,
           extra_dims: Sequence[str]) -> str:  # fmt: skip
    t, *middle, j, i = (int(k) for k in index)
    month = (
        months[time_offset + t] if months is not None and time_offset + t < len(months) else f"record {time_offset + t}"
    )
    position = None
    if locate is not None:
        try:
            position = locate(j, i)
        except Exception:  # the position is a courtesy; the error itself must still be raised
            position = None
    at = f"lat {position[0]:.2f}, lon {position[1]:.2f} " if position is not None else ""
    levels = "".join(f", {d}={k}" for d, k in zip(extra_dims, middle))
    return f"{month} at {at}(y={j}, x={i}{levels})"


def check_block(
    values: np.ndarray,
    *,
    canonical: str,
    label,
    variable: str,
    months: Sequence[str] | None = None,
    time_offset: int = 0,
    locate: Locator | None = None,
    extra_dims: Sequence[str] = (),
) -> None:
    """Raise InputDataError at the first value of a converted block (time, [level,] y, x) outside the plausible
    range, or at the first isolated spike."""
    lo, hi = PLAUSIBLE[canonical]
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(values) & ((values < lo) | (values > hi))
    if bad.any():
        index = np.unravel_index(int(np.flatnonzero(bad)[0]), values.shape)
        where = _where(label, variable, index, months, time_offset, locate, extra_dims)
        raise InputDataError(
            label,
            f"{variable}: value {float(values[index]):.6g} {UNITS[canonical]} in {where} is outside the plausible range "
            f"{lo:g}…{hi:g} {UNITS[canonical]} (an undeclared fill value, a corrupt value or mislabelled units?)",
        )
    spikes = isolated_spikes(values, SPIKE[canonical])
    if spikes[0].size:
        index = tuple(int(a[0]) for a in spikes)
        where = _where(label, variable, index, months, time_offset, locate, extra_dims)
        raise InputDataError(
            label,
            f"{variable}: isolated spike {float(values[index]):.6g} {UNITS[canonical]} in {where}: more than "
            f"{SPIKE[canonical]:g} {UNITS[canonical]} from every neighbouring value (a corrupt value?)",
        )


def screen_block(
    values: np.ndarray,
    *,
    canonical: str,
    scale: float = 1.0,
    offset: float = 0.0,
    label=None,
    variable: str | None = None,
    months: Sequence[str] | None = None,
    locate: Locator | None = None,
    extra_dims: Sequence[str] = (),
    out_dtype=np.float32,
    block_info=None,
) -> np.ndarray:
    """One block as read from a file → ``out_dtype`` (float32) in °C / m, fill values NaN, checked (for
    ``dask.array.map_blocks``: ``block_info`` gives the block's first record, so errors name the right month)."""
    out = mask_fill_values(values)
    if scale != 1.0:
        out *= scale
    if offset != 0.0:
        out += offset
    out = out.astype(out_dtype, copy=False)
    time_offset = int(block_info[0]["array-location"][0][0]) if block_info else 0
    check_block(
        out, canonical=canonical, label=label, variable=variable or canonical, months=months, time_offset=time_offset,
        locate=locate, extra_dims=extra_dims,
    )  # fmt: skip
    return out


def screen_array(data, dtype=np.float32, **kwargs):
    """``dask.array.map_blocks(screen_block)``: the lazily screened array (see :func:`screen_block`)."""
    import dask.array as dsa

    dtype = np.dtype(dtype)
    return dsa.map_blocks(
        screen_block, data, dtype=dtype, meta=np.empty((0,) * data.ndim, dtype), out_dtype=dtype, **kwargs
    )


def month_labels(time) -> list[str] | None:
    """'YYYY-MM' of each record of a time axis (any calendar); None when it holds no dates (errors then give the
    record number)."""
    from ..timeaxis import year_month

    try:
        years, months = year_month(time)
    except (AttributeError, TypeError, ValueError):
        return None
    return [f"{int(y):04d}-{int(m):02d}" for y, m in zip(years, months)]


#: files kept open (with their HDF5 chunk caches) while a computation reads many files one after the other
OPEN_FILES = 8


def bounded_file_cache():
    """Context for computations over many files: xarray keeps at most :data:`OPEN_FILES` files open (128 by
    default, each holding its last decompressed chunks; docs/method.md has what that costs at ORCA025 size)."""
    import xarray as xr

    return xr.set_options(file_cache_maxsize=OPEN_FILES)


def screen_field(field, path, *, canonical: str = "sst", chunk_mb: float = 128.0):
    """A field of a user's file (``xarray.DataArray`` with dims ``(time, lat, lon)``, 1-D or 2-D ``lat``/``lon``
    coordinates, not yet loaded) converted to °C by its ``units`` attribute (any UDUNITS temperature; a field without
    units is taken as °C, and the range check catches kelvins; units that are not a temperature are refused) and
    screened lazily as :func:`bridging.io.readers.open_variable` screens what it reads: undeclared fill values →
    NaN; values outside the plausible range, isolated spikes and damaged chunks → errors naming ``path``, the month
    and the location."""
    import xarray as xr

    from .units import TEMPERATURE, field_conversion

    units = field.attrs.get("units")
    scale, offset = (1.0, 0.0)
    if canonical in TEMPERATURE and units is not None and str(units).strip():
        scale, offset = field_conversion(units, canonical, path=path, variable=str(field.name))
    per_month = 4.0 * float(np.prod([n for d, n in field.sizes.items() if d != "time"]))
    months_per_chunk = max(1, int(chunk_mb * 2**20 // max(per_month, 1.0)))
    data = read_lazily(field.variable, Path(path), str(field.name), (months_per_chunk, *field.shape[1:]))
    data = screen_array(
        data, canonical=canonical, scale=scale, offset=offset, label=path, variable=str(field.name),
        months=month_labels(field["time"]), locate=ArrayLocator(field["lat"].values, field["lon"].values),
        dtype=np.result_type(field.dtype, np.float32),
    )  # fmt: skip
    out = xr.DataArray(data, dims=field.dims, coords=field.coords, name=field.name, attrs=dict(field.attrs))
    out.attrs["units"] = "degC" if canonical in TEMPERATURE else out.attrs.get("units")
    return out
