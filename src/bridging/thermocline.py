"""Thermocline depth: the depth of an isotherm (20 °C by default, "D20") from potential temperature profiles.

Per column, the first level k from the surface with θ_k ≥ T > θ_{k+1}; the depth is interpolated linearly between
the two level centres, z = z_k + (T − θ_k)(z_{k+1} − z_k)/(θ_{k+1} − θ_k). NaN where the surface is colder than
T (or land), and where no level below is colder than T (the isotherm lies below the column's last valid level).
Levels below the sea floor are NaN and never count as a crossing.

The computation is vectorised over whole slabs and, for dask-backed ``thetao``, runs chunk by chunk (whole columns
in each chunk, split in time), so a 165-year record is never in memory at once. Each chunk's depths are checked as
they are computed (:mod:`bridging.io.plausibility`: 0…1000 m, no isolated spikes): levels in centimetres labelled
metres give isotherm depths of kilometres, an error naming the files, the month and the location.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .errors import ConfigError, InputDataError

DEFAULT_ISOTHERM = 20.0


def isotherm_depth(
    theta: np.ndarray, depth: np.ndarray, isotherm: float = DEFAULT_ISOTHERM, *, axis: int = -1
) -> np.ndarray:
    """Depth of the first crossing of ``isotherm`` below the surface, by linear interpolation between levels.

    ``theta``: temperatures (°C) with the level dimension on ``axis`` (surface first); ``depth``: level centres
    (m, increasing). Returns float32 depths with ``axis`` removed; NaN where undefined (see module docstring).
    """
    theta = np.moveaxis(np.asarray(theta), axis, -1)
    depth = np.asarray(depth, dtype=np.float64)
    if theta.shape[-1] != depth.size:
        raise ValueError(f"theta has {theta.shape[-1]} levels but depth has {depth.size}")
    if depth.size < 2:
        raise ValueError("the isotherm depth needs at least two levels")
    # colder[..., k] is True when level k+1 is below the isotherm (NaN compares False: land never crosses).
    colder = theta[..., 1:] < isotherm
    k = np.argmax(colder, axis=-1)
    crossing = np.take_along_axis(colder, k[..., None], axis=-1)[..., 0] & (theta[..., 0] >= isotherm)
    theta_k = np.take_along_axis(theta, k[..., None], axis=-1)[..., 0].astype(np.float64)
    theta_k1 = np.take_along_axis(theta, (k + 1)[..., None], axis=-1)[..., 0].astype(np.float64)
    z_k, z_k1 = depth[k], depth[k + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = z_k + (isotherm - theta_k) * (z_k1 - z_k) / (theta_k1 - theta_k)
    return np.where(crossing, z, np.nan).astype(np.float32)


def thermocline_depth(thetao: xr.DataArray, isotherm: float = DEFAULT_ISOTHERM, *, label=None) -> xr.DataArray:
    """Isotherm depth of a ``thetao`` DataArray with a ``depth`` dimension and coordinate (m, positive down).

    Lazy for dask-backed input: one task per chunk, the depth dimension kept whole. Returns float32 metres with
    ``depth`` removed and the other coordinates (time, lat, lon) kept.
    """
    if not np.isfinite(isotherm) or not -5.0 <= float(isotherm) <= 45.0:
        raise ConfigError(f"isotherm {isotherm!r}: must be a finite temperature within -5…45 °C")
    if "depth" not in thetao.dims or "depth" not in thetao.coords:
        raise InputDataError(label, f"thetao needs a 'depth' dimension and coordinate, got dims {thetao.dims}")
    depth = np.asarray(thetao["depth"].values, dtype=np.float64)
    if depth.size < 2 or not np.all(np.diff(depth) > 0):
        raise InputDataError(label, f"thetao depth levels must increase downward, got {depth.tolist()}")
    if thetao.chunks is not None:
        thetao = thetao.chunk({"depth": -1})
    out = xr.apply_ufunc(
        isotherm_depth,
        thetao,
        kwargs={"depth": depth, "isotherm": float(isotherm), "axis": -1},
        input_core_dims=[["depth"]],
        output_core_dims=[[]],
        dask="parallelized",
        output_dtypes=[np.float32],
    )
    if out.chunks is not None and {"time", "y", "x"} <= set(out.dims):
        from .io.plausibility import ArrayLocator, month_labels, screen_array

        lat = out["lat"].values if "lat" in out.coords else None
        data = screen_array(
            out.transpose("time", ..., "y", "x").data, canonical="thermocline_depth", label=label,
            variable=f"depth of the {isotherm:g} degC isotherm", months=month_labels(out["time"]),
            locate=ArrayLocator(lat, out["lon"].values) if lat is not None else None,
        )  # fmt: skip
        out = out.transpose("time", ..., "y", "x").copy(data=data)
    out.attrs = {
        "standard_name": "depth_of_isosurface_of_sea_water_potential_temperature",
        "long_name": f"Depth of the {isotherm:g} degC isotherm",
        "units": "m",
        "positive": "down",
        "isotherm_degC": float(isotherm),
    }
    return out.rename("thermocline_depth")
