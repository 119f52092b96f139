"""The observables y: the quantities the idealized model provides and the filter observes (H = [0 I]).

An observable is a (variable, box) pair on the target grid: for CF23 each box holds exactly one equatorial cell
(the grid cell nearest to a CF23 node), for box-mean observables (e.g. CFY22's Niño 3 / Niño 4 indices) the mean
over the ocean cells of the box, weighted by cos(latitude). ``ObservationLayout`` is the one observation operator of
the project: :meth:`~ObservationLayout.operator` is the matrix that gives y from gridded fields, and
:meth:`~ObservationLayout.extract` applies it to fields with NaN on land. The autoencoder, the encoding, the filter's
decoded observables, the pseudo-observations and the diagnostics' residual maps all use it, and the layout is stored
with the pseudo-observations, so positions and weights agree everywhere by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from .grid import TargetGrid

OBS_COORDS = ("obs_variable", "obs_lat", "obs_lon", "obs_lat_min", "obs_lat_max", "obs_lon_min", "obs_lon_max")
#: the kinds of observable and their units; the order is the flag value of ``obs_variable`` in every store
OBS_UNITS = {"sst": "degC", "thermocline_depth": "m"}
OBS_KINDS = tuple(OBS_UNITS)
#: the ``comment`` of a variable on ``obs`` that holds observables of both kinds side by side (a units vector)
OBS_UNITS_COMMENT = "units per observable by its obs_variable flag: degC for sst, m for thermocline_depth"
OBS_UNITS_SQUARED_COMMENT = "units per observable by its obs_variable flag: degC2 for sst, m2 for thermocline_depth"


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
    def points(cls, grid: TargetGrid, variables, lats, lons) -> ObservationLayout:
        """One observable per (variable, lat, lon): the target cell nearest to the point."""
        v, la, lo = [], [], []
        for var, lat, lon in zip(variables, lats, lons):
            i, j = grid.nearest_index(lat, lon)
            v.append(str(var))
            la.append(float(grid.lat[i]))
            lo.append(float(grid.lon[j]))
        return cls(tuple(v), tuple(la), tuple(la), tuple(lo), tuple(lo))

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> ObservationLayout:
        """Read the layout stored on the ``obs`` dimension of a pseudo-observation (or latent) store."""
        kind = ds["obs_variable"]
        if kind.dtype.kind in "iu":  # CF flags: flag_meanings names the kinds in flag-value order
            meanings = str(kind.attrs["flag_meanings"]).split()
            values = [int(v) for v in np.atleast_1d(kind.attrs["flag_values"])]
            variables = tuple(meanings[values.index(int(code))] for code in kind.values)
        else:  # stores written before the flag encoding: the kinds as strings
            variables = tuple(str(x) for x in kind.values)
        return cls(
            variables,
            tuple(float(x) for x in ds["obs_lat_min"].values),
            tuple(float(x) for x in ds["obs_lat_max"].values),
            tuple(float(x) for x in ds["obs_lon_min"].values),
            tuple(float(x) for x in ds["obs_lon_max"].values),
        )

    def same_nodes(self, other: ObservationLayout) -> bool:
        """The same observables in the same order: variables, and box bounds to rounding."""
        return self.variable == other.variable and all(
            np.allclose(getattr(self, f), getattr(other, f)) for f in ("lat_min", "lat_max", "lon_min", "lon_max")
        )

    def coords(self) -> dict[str, xr.DataArray]:
        return {
            # CF flags, not strings: a string coordinate reads back as numpy's StringDType from zarr v3, which
            # dask cannot auto-chunk (open_dataset(chunks="auto"), intake-esm's default, would refuse the store).
            # int64 because zarr keeps attributes as JSON, which reads flag_values back as int64, and CF wants
            # flag_values of the variable's own type.
            "obs_variable": xr.DataArray(
                np.array([OBS_KINDS.index(v) for v in self.variable], dtype=np.int64),
                dims="obs",
                attrs={
                    "flag_values": np.arange(len(OBS_KINDS), dtype=np.int64),
                    "flag_meanings": " ".join(OBS_KINDS),
                    "comment": "units of the observables: " + ", ".join(f"{k} {u}" for k, u in OBS_UNITS.items()),
                },
            ),
            "obs_lat": xr.DataArray(self.lat, dims="obs", attrs={"units": "degrees_north"}),
            "obs_lon": xr.DataArray(self.lon, dims="obs", attrs={"units": "degrees_east"}),
            "obs_lat_min": xr.DataArray(np.asarray(self.lat_min), dims="obs"),
            "obs_lat_max": xr.DataArray(np.asarray(self.lat_max), dims="obs"),
            "obs_lon_min": xr.DataArray(np.asarray(self.lon_min), dims="obs"),
            "obs_lon_max": xr.DataArray(np.asarray(self.lon_max), dims="obs"),
        }

    def indices(self, variable: str) -> list[int]:
        """Positions of the observables of ``variable``."""
        return [k for k, v in enumerate(self.variable) if v == variable]

    def select(self, indices: Sequence[int]) -> ObservationLayout:
        """The layout of the observables at ``indices`` (in that order)."""
        return ObservationLayout(
            *(
                tuple(getattr(self, f)[k] for k in indices)
                for f in ("variable", "lat_min", "lat_max", "lon_min", "lon_max")
            )
        )

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

    def operator(
        self, grid: TargetGrid, ocean_mask: np.ndarray | Mapping[str, np.ndarray], fields: Sequence[str]
    ) -> np.ndarray:
        """H: (n_obs, len(fields)·n_lat·n_lon) weights that give y from flattened (field, lat, lon) arrays, the fields
        in the order of ``fields``; each observable's row holds its :meth:`weights` in its variable's block.

        ``ocean_mask``: the cells that may contribute, one (n_lat, n_lon) mask for every field or a mask per field.
        """
        unknown = sorted(set(self.variable) - set(fields))
        if unknown:
            raise ValueError(f"observables of variables {unknown} that are not among the fields {tuple(fields)}")
        n_cells = grid.shape[0] * grid.shape[1]
        op = np.zeros((self.size, len(fields) * n_cells))
        for c, field in enumerate(fields):
            idx = self.indices(field)
            if idx:
                ocean = ocean_mask[field] if isinstance(ocean_mask, Mapping) else ocean_mask
                op[idx, c * n_cells : (c + 1) * n_cells] = self.select(idx).weights(grid, ocean)
        return op

    def extract(self, fields: dict[str, np.ndarray], grid: TargetGrid) -> np.ndarray:
        """y from gridded fields: ``fields[var]`` has shape (..., n_lat, n_lon); returns (..., n_obs).

        The :meth:`operator` applied variable by variable; NaN (land) cells never contribute: each variable's weights
        are built on the cells that are finite in every slice of its field.
        """
        variables = sorted(set(self.variable))
        flat = {}
        for var in variables:
            arr = np.asarray(fields[var])
            flat[var] = arr.reshape(*arr.shape[:-2], -1)
        ocean = {var: np.isfinite(f).reshape(-1, f.shape[-1]).all(0).reshape(grid.shape) for var, f in flat.items()}
        op = self.operator(grid, ocean, variables)
        n_cells = grid.shape[0] * grid.shape[1]
        out = None
        for c, var in enumerate(variables):
            idx = self.indices(var)
            vals = np.nan_to_num(flat[var]) @ op[idx, c * n_cells : (c + 1) * n_cells].T
            if out is None:
                out = np.empty((*flat[var].shape[:-1], self.size), dtype=np.result_type(flat[var].dtype, np.float32))
            out[..., idx] = vals
        return out
