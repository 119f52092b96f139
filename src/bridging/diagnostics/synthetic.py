"""Small synthetic ENSO-like stores with known structure, for tests and benchmarks of the diagnostics.

SST anomaly = a_E(t)·P_E + a_C(t)·P_C + off-equatorial noise, where P_E is an eastern (Niño 3-centred) and P_C a
central (Niño 4-centred) equatorial pattern and a_E, a_C are AR(1) series (a_E optionally skewed); the thermocline
depth anomaly is a tilt mode driven by the same series plus its own noise. A seasonal cycle is added so the
anomaly computation matters; a few land cells (NaN) sit in the west and inside the Niño 3 box.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..stores import build_store
from ..timeaxis import monthly_time


def ar1(n: int, phi: float, rng: np.random.Generator, size: tuple[int, ...] = ()) -> np.ndarray:
    """Unit-variance AR(1) series (…, n) with lag-1 autocorrelation ``phi`` (started in its stationary state)."""
    x = np.empty((*size, n))
    x[..., 0] = rng.standard_normal(size)
    scale = np.sqrt(1.0 - phi * phi)
    noise = rng.standard_normal((*size, n))
    for t in range(1, n):
        x[..., t] = phi * x[..., t - 1] + scale * noise[..., t]
    return x


def skewed(x: np.ndarray, skew_coefficient: float) -> np.ndarray:
    """x + c (x² − 1), standardised: a smooth monotone-ish transform giving positive skewness for c > 0."""
    y = x + skew_coefficient * (x * x - 1.0)
    return (y - y.mean()) / y.std()


def synthetic_grid(resolution: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """A coarse version of the target grid: 20°S–20°N, 120–280°E."""
    lat = np.round(np.arange(-20.0, 20.0 + 1e-9, resolution), 6)
    lon = np.round(np.arange(120.0, 280.0 + 1e-9, resolution), 6)
    return lat, lon


def enso_patterns(lat: np.ndarray, lon: np.ndarray, shift_deg: float = 0.0) -> dict[str, np.ndarray]:
    """(n_lat, n_lon) spatial patterns: eastern and central SST modes, a thermocline tilt mode."""
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    merid = np.exp(-((la / 8.0) ** 2))
    eastern = merid * np.exp(-(((lo - 240.0 + shift_deg) / 30.0) ** 2))
    central = merid * np.exp(-(((lo - 185.0 + shift_deg) / 20.0) ** 2))
    tilt = np.exp(-((la / 6.0) ** 2)) * np.tanh((lo - 200.0) / 30.0)
    return {"eastern": eastern, "central": central, "tilt": tilt}


def land_mask(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """True on a few land cells: a block in the far west and one cell inside the Niño 3 box."""
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    land = (lo <= 130.0) & (la >= 8.0)
    land |= (np.abs(la - 2.0) < 1e-6) & (np.abs(lo - 232.0) < 1e-6)
    return land


def synthetic_store(
    *,
    n_years: int = 60,
    n_members: int | None = None,
    first_year: int = 1950,
    resolution: float = 2.0,
    skew_coefficient: float = 0.0,
    amplitude: float = 1.0,
    central_amplitude: float = 0.6,
    shift_deg: float = 0.0,
    noise_std: float = 0.3,
    seed: int = 0,
    source_id: str = "SYNTHETIC",
    source_kind: str = "operational",
) -> xr.Dataset:
    """A store (:func:`bridging.stores.build_store`) of synthetic ENSO-like SST and thermocline-depth fields."""
    rng = np.random.default_rng(seed)
    lat, lon = synthetic_grid(resolution)
    n_time = 12 * n_years
    size = () if n_members is None else (n_members,)
    a_east = amplitude * skewed(ar1(n_time, 0.92, rng, size), skew_coefficient)
    a_central = central_amplitude * ar1(n_time, 0.9, rng, size)
    pat = enso_patterns(lat, lon, shift_deg)
    months = np.arange(n_time) % 12
    seasonal = 1.5 * np.cos(2 * np.pi * (months - 3) / 12.0)
    base_sst = 28.0 - 0.05 * np.abs(lat)[:, None] - 2.0 * (lon[None, :] > 230)
    base_depth = 160.0 - 0.5 * (lon[None, :] - 120.0) + 0 * lat[:, None]
    e = a_east[..., None, None]
    c = a_central[..., None, None]
    noise_shape = (*size, n_time, lat.size, lon.size)
    off_equator = 1.0 - np.exp(-((lat / 6.0) ** 2))[:, None]
    sst = (
        base_sst
        + seasonal[:, None, None]
        + e * pat["eastern"]
        + c * pat["central"]
        + noise_std * off_equator * rng.standard_normal(noise_shape)
    )
    depth = base_depth + 20.0 * (e + 0.5 * c) * pat["tilt"] + 10.0 * noise_std * rng.standard_normal(noise_shape)
    land = land_mask(lat, lon)
    sst[..., land] = np.nan
    depth[..., land] = np.nan
    dims = ("time", "lat", "lon") if n_members is None else ("member", "time", "lat", "lon")
    coords = {"time": monthly_time(first_year, 1, n_time), "lat": lat, "lon": lon}
    if n_members is not None:
        coords["member"] = np.arange(n_members)
    fields = {
        "sst": xr.DataArray(sst.astype(np.float32), dims=dims, coords=coords),
        "thermocline_depth": xr.DataArray(depth.astype(np.float32), dims=dims, coords=coords),
    }
    return build_store(fields, source_id=source_id, source_kind=source_kind)


def synthetic_idealized_run(
    *, n_years: int = 200, n_members: int = 1, skew_coefficient: float = 0.3, seed: int = 0, amplitude: float = 0.8
) -> xr.Dataset:
    """A run store in the idealized-model form: ``nino3``, ``nino34``, ``nino4`` on (member, time), model years
    from year 1 (the raw-anomaly index variables the idealized stage writes)."""
    rng = np.random.default_rng(seed)
    n_time = 12 * n_years
    east = amplitude * skewed(ar1(n_time, 0.92, rng, (n_members,)), skew_coefficient)
    central = 0.6 * ar1(n_time, 0.9, rng, (n_members,))
    months = np.arange(n_time) % 12
    seasonal = 0.2 * np.cos(2 * np.pi * months / 12.0)  # raw model anomalies may keep a small seasonal mean
    coords = {"member": np.arange(n_members), "time": monthly_time(1, 1, n_time)}
    dims = ("member", "time")
    return xr.Dataset(
        {
            "nino3": xr.DataArray(east + 0.3 * central + seasonal, dims=dims, coords=coords, attrs={"units": "degC"}),
            "nino34": xr.DataArray(
                0.6 * east + 0.7 * central + seasonal, dims=dims, coords=coords, attrs={"units": "degC"}
            ),
            "nino4": xr.DataArray(0.3 * east + central + seasonal, dims=dims, coords=coords, attrs={"units": "degC"}),
        },
        attrs={"model": "synthetic-idealized"},
    )


def synthetic_layout_store(lat: np.ndarray, lon: np.ndarray, stride: int = 2) -> xr.Dataset:
    """A zarr-able Dataset with only an observation layout on ``obs``: SST and thermocline depth at every
    ``stride``-th equatorial cell from 126°E to 280°E (west → east, SST first), like the CF23 pseudo-observations."""
    from ..grid import TargetGrid
    from ..observables import ObservationLayout

    grid = TargetGrid(float(lat[0]), float(lat[-1]), float(lon[0]), float(lon[-1]), float(lat[1] - lat[0]))
    node_lon = [x for x in lon if x >= 126.0][::stride]
    variables = ["sst"] * len(node_lon) + ["thermocline_depth"] * len(node_lon)
    layout = ObservationLayout.points(grid, variables, [0.0] * len(variables), node_lon * 2)
    return xr.Dataset(coords=layout.coords())
