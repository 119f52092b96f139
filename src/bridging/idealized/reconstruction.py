"""CF23's 2-D reconstruction: SST and thermocline-depth anomaly fields on any grid from the equatorial node values.

One definition, used wherever CF23 output becomes a field: the demo data's ENSO anomalies, the idealized model's
Niño indices (box means of these fields on the target grid, the same operator as every gridded source), the
pseudo-observations (the observation operator applied to these fields) and the known truth of the propagation test.

CF23 resolves only the equator; its fields off the equator follow the model's own meridional structure
(docs/idealized_models.md): SST(x, Y) = SST(x, 0)·φ0(Y)/φ0(0) and H(x, Y) = 20.8 m·[(K+R)φ0(Y) + Rφ2(Y)/√2], with
Y = y / 331 km (the ocean's equatorial Rossby radius) and K, R the Kelvin and Rossby amplitudes recovered exactly from
the equatorial H and U. In longitude the 56 node values are interpolated linearly; beyond the node range
(126–280.7°E) the anomalies taper off over about 8°. A westward shift and an amplitude factor (the demo's biases)
move and scale the whole pattern. Every step is linear, so the map is stored as (56, n_points) weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .cf23 import CURRENT_SCALE, DEPTH_SCALE, NODE_LON, PHI0_EQ, PHI2_EQ, meridional_functions

# e-folding distance (degrees of longitude) over which anomalies fade beyond the westernmost / easternmost node
TAPER_DEG = 8.0


def wave_amplitudes(thermocline_depth_anomaly, zonal_current) -> tuple[np.ndarray, np.ndarray]:
    """Nondimensional Kelvin (K) and Rossby (R) amplitudes from CF23's equatorial H (m) and U (m/s)."""
    a, b = PHI0_EQ, PHI2_EQ / math.sqrt(2.0)
    h = np.asarray(thermocline_depth_anomaly, float) / DEPTH_SCALE
    u = np.asarray(zonal_current, float) / CURRENT_SCALE
    rossby = (h - u) / (2.0 * a)
    kelvin = (h - rossby * (a + b)) / a
    return kelvin, rossby


@dataclass
class CF23Reconstruction:
    """Linear maps from CF23's (…, 56) equatorial node values to anomaly fields at a grid's points.

    ``sst``: (56, n) weights of the SST anomaly; ``depth_kelvin`` / ``depth_rossby``: (56, n) weights of
    20.8 m·(K+R) and 20.8 m·R/√2 (the φ0 and φ2 components of H). ``shape`` is the grid's shape.
    """

    sst: np.ndarray
    depth_kelvin: np.ndarray
    depth_rossby: np.ndarray
    shape: tuple[int, ...]

    @classmethod
    def build(cls, lat, lon, *, westward_shift_deg: float = 0.0, amplitude: float = 1.0) -> CF23Reconstruction:
        """The map onto points ``lat``, ``lon`` (°N, °E; any matching shapes: a curvilinear grid, a regular grid as
        2-D arrays, or a list of points)."""
        lat = np.asarray(lat, float)
        lon = np.asarray(lon, float)
        if lat.shape != lon.shape:
            raise ValueError(
                f"lat {lat.shape} and lon {lon.shape} must have one shape (use np.meshgrid for a regular grid)"
            )
        flat_lat = lat.ravel()
        lon_eff = np.mod(lon.ravel() + westward_shift_deg, 360.0)
        spacing = NODE_LON[1] - NODE_LON[0]
        position = (lon_eff - NODE_LON[0]) / spacing
        left = np.clip(np.floor(position).astype(int), 0, NODE_LON.size - 2)
        frac = np.clip(position - left, 0.0, 1.0)
        outside = np.maximum(NODE_LON[0] - lon_eff, 0.0) + np.maximum(lon_eff - NODE_LON[-1], 0.0)
        taper = np.exp(-((outside / TAPER_DEG) ** 2)) * amplitude
        interp = np.zeros((NODE_LON.size, flat_lat.size))
        cols = np.arange(flat_lat.size)
        interp[left, cols] = (1.0 - frac) * taper
        interp[left + 1, cols] += frac * taper
        phi0, phi2 = meridional_functions(flat_lat)
        return cls(
            sst=interp * (phi0 / PHI0_EQ), depth_kelvin=interp * phi0, depth_rossby=interp * phi2, shape=lat.shape
        )

    def apply(self, sst_anomaly, thermocline_depth_anomaly, zonal_current) -> tuple[np.ndarray, np.ndarray]:
        """(…, *shape) SST (°C) and thermocline-depth (m) anomalies from CF23's (…, 56) equatorial outputs."""
        sst_nodes = np.asarray(sst_anomaly, float)
        kelvin, rossby = wave_amplitudes(thermocline_depth_anomaly, zonal_current)
        lead = sst_nodes.shape[:-1]
        sst = sst_nodes @ self.sst
        depth = DEPTH_SCALE * ((kelvin + rossby) @ self.depth_kelvin + (rossby / math.sqrt(2.0)) @ self.depth_rossby)
        return sst.reshape(*lead, *self.shape), depth.reshape(*lead, *self.shape)

    def apply_run(self, run, time=slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """The fields of an idealized-run Dataset (``sst_anomaly``, ``thermocline_depth_anomaly``, ``zonal_current``
        on (…, time, node)) over the positions ``time``."""
        return self.apply(*(np.asarray(run[name].isel(time=time).values, float) for name in NODE_FIELDS))


# The run variables the reconstruction reads (CF23 run stores and the pseudo-observation store carry them).
NODE_FIELDS = ("sst_anomaly", "thermocline_depth_anomaly", "zonal_current")


def has_node_fields(ds) -> bool:
    """Whether a run store holds CF23's equatorial node fields (CFY22 runs hold box variables only)."""
    return all(name in ds and ds[name].shape[-1] == NODE_LON.size for name in NODE_FIELDS)
