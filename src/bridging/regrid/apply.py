"""Applying regrid weights: one sparse product per chunk of months over the flattened horizontal dimensions, dropping
NaN source values and renormalising over the remaining weight; a NumPy and a lazy xarray (dask) entry point."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import sparse

from ..errors import InputDataError
from ..timeaxis import month_counter, year_month, year_month_from_counter
from .weights import RegridWeights

#: a target keeps a value when at least this fraction of its weight falls on valid source values
MIN_VALID_WEIGHT = 0.5


class SourceMaskChangedError(InputDataError):
    """Ocean points of the source became NaN after the first month (the land mask is assumed static).

    Picklable (raised inside dask tasks, also on distributed workers)."""

    def __reduce__(self):
        return (type(self), (self.path, self.problem))


@dataclass(frozen=True, eq=False)
class _Applier:
    """The weights restricted to the source points they use (a gather shrinks the product for regional targets)."""

    used: np.ndarray  # flat source indices with any weight
    matrix: sparse.csr_matrix  # (n_target, n_used)
    target_shape: tuple[int, int]

    @classmethod
    def from_weights(cls, weights: RegridWeights) -> _Applier:
        csc = weights.matrix.tocsc()
        used = np.flatnonzero(np.diff(csc.indptr) > 0)
        return cls(used, weights.matrix[:, used].tocsr(), weights.target.shape)

    def __call__(self, values: np.ndarray, counters=None, *, check_mask=False, max_missing_fraction=0.01, label=None):
        lead = values.shape[:-2]
        n_src = values.shape[-2] * values.shape[-1]
        flat = values.reshape(-1, n_src)
        gathered = flat[:, self.used].astype(np.float64)
        invalid = np.isnan(gathered)
        if check_mask and invalid.any() and self.used.size:
            fraction = invalid.mean(axis=1)
            bad = np.flatnonzero(fraction > max_missing_fraction)
            if bad.size:
                k = int(bad[0])
                when = "a record"
                if counters is not None:
                    c = int(np.broadcast_to(np.asarray(counters), lead).reshape(-1)[k])
                    if c >= 0:
                        y, m = year_month_from_counter(c)
                        when = f"month {int(y):04d}-{int(m):02d}"
                raise SourceMaskChangedError(
                    label,
                    f"in {when} {fraction[k]:.1%} of the ocean points (finite in the first month) are missing, more than "
                    f"ingest.regrid.max_missing_fraction = {max_missing_fraction:g}; the land mask must be static",
                )
        if invalid.any():
            gathered[invalid] = 0.0
            num = self.matrix @ gathered.T
            den = self.matrix @ (~invalid).T.astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = np.where(den >= MIN_VALID_WEIGHT, num / den, np.nan)
        else:
            out = self.matrix @ gathered.T
        empty = np.diff(self.matrix.indptr) == 0
        out[empty, :] = np.nan
        return out.T.astype(np.float32).reshape(*lead, *self.target_shape)


def regrid_array(values: np.ndarray, weights: RegridWeights, **kwargs) -> np.ndarray:
    """Regrid a NumPy array (..., ny, nx) → (..., nlat, nlon), float32, NaN where the target has no value."""
    values = np.asarray(values)
    if values.shape[-2:] != tuple(weights.source_shape):
        raise ValueError(f"field has horizontal shape {values.shape[-2:]}, weights expect {weights.source_shape}")
    return _Applier.from_weights(weights)(values, **kwargs)


def regrid(
    field: xr.DataArray,
    weights: RegridWeights,
    *,
    check_mask: bool = False,
    max_missing_fraction: float = 0.01,
    label=None,
) -> xr.DataArray:
    """Regrid a DataArray with dims (..., y, x) and 2-D ``lat``/``lon`` coords to the target grid, lazily when dask-backed.

    The source grid must be the one the weights were built for (checked by fingerprint). ``check_mask`` enforces a
    static land mask (for SST); ``label`` (the input files) names the data in errors.
    """
    if field.dims[-2:] != ("y", "x"):
        raise ValueError(f"regrid expects dims (..., y, x), got {field.dims}")
    if "lat" in field.coords and "lon" in field.coords:
        weights.check_source(field["lat"].values, field["lon"].values, label if label is not None else field.name)
    applier = _Applier.from_weights(weights)
    if "time" in field.dims:
        years, months = year_month(field["time"])
        counters = xr.DataArray(month_counter(years, months), dims="time", coords={"time": field["time"]})
    else:
        counters = xr.DataArray(np.int64(-1))
    if field.chunks is not None and "time" in field.dims:
        counters = counters.chunk({"time": field.chunks[field.dims.index("time")]})
    nlat, nlon = weights.target.shape

    def apply(values, cnt):
        return applier(values, cnt, check_mask=check_mask, max_missing_fraction=max_missing_fraction, label=label)

    spatial = field.drop_vars([c for c in ("lat", "lon") if c in field.coords])
    out = xr.apply_ufunc(
        apply,
        spatial,
        counters,
        input_core_dims=[["y", "x"], []],
        output_core_dims=[["lat", "lon"]],
        exclude_dims={"y", "x"},
        dask="parallelized",
        output_dtypes=[np.float32],
        dask_gufunc_kwargs={"output_sizes": {"lat": nlat, "lon": nlon}},
    )
    out = out.assign_coords(weights.target.coords())
    out.attrs = dict(field.attrs)
    out.attrs["regrid_method"] = weights.method
    return out.rename(field.name)
