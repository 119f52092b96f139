"""The target grid: a regular latitude/longitude grid over the tropical Pacific (longitudes 0–360 °E)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .errors import ConfigError


@dataclass(frozen=True)
class TargetGrid:
    lat_min: float = -20.0
    lat_max: float = 20.0
    lon_min: float = 120.0
    lon_max: float = 280.0
    resolution: float = 1.0

    def __post_init__(self):
        if self.lat_max <= self.lat_min:
            raise ConfigError(f"grid: lat_max ({self.lat_max}) must exceed lat_min ({self.lat_min})")
        if self.lon_max <= self.lon_min:
            raise ConfigError(f"grid: lon_max ({self.lon_max}) must exceed lon_min ({self.lon_min}); use 0–360 °E")
        for name, lo, hi in (("lat", self.lat_min, self.lat_max), ("lon", self.lon_min, self.lon_max)):
            n = (hi - lo) / self.resolution
            if abs(n - round(n)) > 1e-6:
                raise ConfigError(f"grid: {name} range {lo}…{hi} is not a multiple of resolution {self.resolution}")

    @classmethod
    def from_config(cls, grid_cfg) -> TargetGrid:
        """From a GridSection or a plain mapping (as a rule's params deliver it)."""
        d = grid_cfg.model_dump() if hasattr(grid_cfg, "model_dump") else dict(grid_cfg)
        return cls(**{k: float(v) for k, v in d.items()})

    @property
    def lat(self) -> np.ndarray:
        n = int(round((self.lat_max - self.lat_min) / self.resolution)) + 1
        return np.round(self.lat_min + self.resolution * np.arange(n), 6)

    @property
    def lon(self) -> np.ndarray:
        n = int(round((self.lon_max - self.lon_min) / self.resolution)) + 1
        return np.round(self.lon_min + self.resolution * np.arange(n), 6)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.lat.size, self.lon.size)

    def coords(self) -> dict[str, xr.DataArray]:
        return {
            "lat": xr.DataArray(self.lat, dims="lat", attrs={"units": "degrees_north", "standard_name": "latitude"}),
            "lon": xr.DataArray(self.lon, dims="lon", attrs={"units": "degrees_east", "standard_name": "longitude"}),
        }

    def nearest_index(self, lat: float, lon: float) -> tuple[int, int]:
        """Indices of the cell nearest to (lat, lon); lon in any convention."""
        lon = float(lon) % 360.0
        i = int(np.argmin(np.abs(self.lat - lat)))
        d = np.abs((self.lon - lon + 180.0) % 360.0 - 180.0)
        return i, int(np.argmin(d))
