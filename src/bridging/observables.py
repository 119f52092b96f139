"""The observables y: the quantities the idealized model provides and the filter observes (H = [0 I]).

An observable is a (variable, box) pair on the target grid: for CF23 each box holds exactly one equatorial cell
(the grid cell nearest to a CF23 node), for box-mean observables (e.g. CFY22's Niño 3 / Niño 4 indices) the mean
over the ocean cells of the box, weighted by cos(latitude). The same ``ObservationLayout`` extracts y from gridded
fields (autoencoder, encoding, decoding checks) and is stored with the pseudo-observations, so positions agree
everywhere by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .grid import TargetGrid

OBS_COORDS = ("obs_variable", "obs_lat", "obs_lon", "obs_lat_min", "obs_lat_max", "obs_lon_min", "obs_lon_max")


@dataclass(frozen=True)
class ObservationLayout:
    variable: tuple[str, ...]
    lat_min: tuple[float, ...]
    lat_max: tuple[float, ...]
    lon_min: tuple[float, ...]
    lon_max: tuple[float, ...]

    def __post_init__(self):
        n = len(self.variable)
        if not all(len(x) == n for x in (self.lat_min, self.lat_max, self.lon_min, self.lon_max)):
            raise ValueError("ObservationLayout: all fields must have one entry per observable")

    @property
    def size(self) -> int:
        return len(self.variable)

    @property
    def lat(self) -> np.ndarray:
        return (np.asarray(self.lat_min) + np.asarray(self.lat_max)) / 2

    @property
    def lon(self) -> np.ndarray:
        return (np.asarray(self.lon_min) + np.asarray(self.lon_max)) / 2

    @classmethod
    def points(cls, grid: TargetGrid, variables, lats, lons) -> "ObservationLayout":
        """One observable per (variable, lat, lon): the target cell nearest to the point."""
        v, la, lo = [], [], []
        for var, lat, lon in zip(variables, lats, lons):
            i, j = grid.nearest_index(lat, lon)
            v.append(str(var))
            la.append(float(grid.lat[i]))
            lo.append(float(grid.lon[j]))
        return cls(tuple(v), tuple(la), tuple(la), tuple(lo), tuple(lo))

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "ObservationLayout":
        """Read the layout stored on the ``obs`` dimension of a pseudo-observation (or latent) store."""
        return cls(
            tuple(str(x) for x in ds["obs_variable"].values),
            tuple(float(x) for x in ds["obs_lat_min"].values),
            tuple(float(x) for x in ds["obs_lat_max"].values),
            tuple(float(x) for x in ds["obs_lon_min"].values),
            tuple(float(x) for x in ds["obs_lon_max"].values),
        )

    def coords(self) -> dict[str, xr.DataArray]:
        return {
            # object dtype: zarr v3 stores it as a variable-length string (fixed-width unicode has no v3 spec yet)
            "obs_variable": xr.DataArray(np.array(self.variable, dtype=object), dims="obs"),
            "obs_lat": xr.DataArray(self.lat, dims="obs", attrs={"units": "degrees_north"}),
            "obs_lon": xr.DataArray(self.lon, dims="obs", attrs={"units": "degrees_east"}),
            "obs_lat_min": xr.DataArray(np.asarray(self.lat_min), dims="obs"),
            "obs_lat_max": xr.DataArray(np.asarray(self.lat_max), dims="obs"),
            "obs_lon_min": xr.DataArray(np.asarray(self.lon_min), dims="obs"),
            "obs_lon_max": xr.DataArray(np.asarray(self.lon_max), dims="obs"),
        }

    def weights(self, grid: TargetGrid, ocean_mask: np.ndarray | None = None) -> np.ndarray:
        """(n_obs, n_lat·n_lon) averaging weights; rows sum to 1 over ocean cells of the box."""
        lat, lon = grid.lat, grid.lon
        tol = 1e-6
        w = np.zeros((self.size, lat.size * lon.size))
        coslat = np.cos(np.deg2rad(lat))[:, None] * np.ones((1, lon.size))
        ocean = np.ones(grid.shape, bool) if ocean_mask is None else np.asarray(ocean_mask, bool)
        for k in range(self.size):
            inside = (
                (lat[:, None] >= self.lat_min[k] - tol)
                & (lat[:, None] <= self.lat_max[k] + tol)
                & (lon[None, :] >= self.lon_min[k] - tol)
                & (lon[None, :] <= self.lon_max[k] + tol)
                & ocean
            )
            if not inside.any():
                raise ValueError(
                    f"observable {k} ({self.variable[k]} at {self.lat[k]:.2f}°N, {self.lon[k]:.2f}°E) covers no ocean cell of the grid"
                )
            row = np.where(inside, coslat, 0.0).ravel()
            w[k] = row / row.sum()
        return w

    def extract(self, fields: dict[str, np.ndarray], grid: TargetGrid) -> np.ndarray:
        """y from gridded fields: ``fields[var]`` has shape (..., n_lat, n_lon); returns (..., n_obs).

        NaN (land) cells never contribute: weights are built on the cells that are finite in every field slice.
        """
        out = None
        for var in sorted(set(self.variable)):
            arr = np.asarray(fields[var])
            lead = arr.shape[:-2]
            flat = arr.reshape(*lead, -1)
            ocean = np.isfinite(flat).reshape(-1, flat.shape[-1]).all(0).reshape(grid.shape)
            idx = [k for k, v in enumerate(self.variable) if v == var]
            sub = ObservationLayout(
                tuple(self.variable[k] for k in idx),
                tuple(self.lat_min[k] for k in idx),
                tuple(self.lat_max[k] for k in idx),
                tuple(self.lon_min[k] for k in idx),
                tuple(self.lon_max[k] for k in idx),
            )
            w = sub.weights(grid, ocean)
            vals = np.nan_to_num(flat) @ w.T
            if out is None:
                out = np.empty((*lead, self.size), dtype=np.result_type(arr.dtype, np.float32))
            out[..., idx] = vals
        return out
