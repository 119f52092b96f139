"""The physical content of the demo data: mean state, ENSO anomalies from idealized-model runs, off-equatorial
detail, noise, and ``thetao`` profiles consistent with the intended 20 °C-isotherm depth.

All functions work on any (curvilinear) grid given as 2-D ``lat``/``lon`` arrays (°N, °E 0–360).

Mean state (monthly climatology)
    SST: about 29.5 °C in the western warm pool, 24.5 °C in the eastern cold tongue (a narrow, equatorially
    trapped cooling east of the date line), cooler poleward (about 23–25 °C at 30°); an annual cycle strongest in
    the cold tongue (±1.8 °C, warmest in March–April) plus the hemispheric cycle off the equator. Floored at
    21 °C so the 20 °C isotherm exists in every ocean column of the region.
    20 °C-isotherm depth: 170 m in the west rising to 40 m in the east along the equator (Niño 4 box ≈ 155 m,
    Niño 3 box ≈ 75 m), deeper off the equator, with the shallow ridge of the North Equatorial Countercurrent
    near 9°N, and a ±8 m annual cycle in the east.

ENSO anomalies
    From an idealized CF23 run through CF23's own 2-D reconstruction
    (:class:`bridging.idealized.reconstruction.CF23Reconstruction`, the same map the diagnostics apply to the
    idealized model itself): SST spread meridionally as φ0(Y), the thermocline as 20.8 m·[(K+R)φ0(Y) + Rφ2(Y)/√2]
    (equatorial Kelvin lobe and off-equatorial Rossby lobes). A westward shift moves the whole pattern west.

``thetao`` profiles
    θ(z) = T_sub(z) + (SST − T_sub(z))·½[1 − tanh((z − D20)/w + a)]: a tanh thermocline of width
    w = clip(0.3·D20, 8, 50) m between the surface value and the sub-thermocline water
    T_sub(z) = 5 °C + 11 °C·exp(−z/300 m) (≈ 13 °C at 100 m, 10.6 °C at 200 m, 7.5 °C at 450 m, as below the
    tropical Pacific thermocline). The shift a is solved per column so that *linear interpolation between the
    model levels* (what the thermocline stage does) crosses 20 °C exactly at the intended D20: the recovered depth
    equals the truth to float32 rounding, while the profile keeps a smooth, strictly decreasing, realistic shape.
"""

from __future__ import annotations

import numpy as np

ISOTHERM = 20.0
# Sub-thermocline water T_sub(z) = ABYSS + EXCESS·exp(−z/SCALE): it cools gently with depth below the thermocline.
SUBSURFACE_ABYSS = 5.0  # °C
SUBSURFACE_EXCESS = 11.0  # °C
SUBSURFACE_SCALE = 300.0  # m
LEVEL_TOP = 5.0
LEVEL_BOTTOM = 450.0
LEVEL_POWER = 1.7  # level spacing grows with depth: finest in the mixed layer and thermocline
SST_FLOOR = 21.0

# Niño boxes on the source grids (lat_min, lat_max, lon_min, lon_max), for the recorded statistics.
NINO_BOXES = {
    "nino3": (-5.0, 5.0, 210.0, 270.0),
    "nino34": (-5.0, 5.0, 190.0, 240.0),
    "nino4": (-5.0, 5.0, 160.0, 210.0),
}


def level_depths(n_levels: int) -> np.ndarray:
    """Level centres (m): LEVEL_TOP…LEVEL_BOTTOM with spacing growing as a power law (≈ 12, 28, 53, 85, 125 m …)."""
    k = np.arange(n_levels) / (n_levels - 1)
    return LEVEL_TOP + (LEVEL_BOTTOM - LEVEL_TOP) * k**LEVEL_POWER


def _step(x, centre, width):
    """Smooth step from 0 (x ≪ centre) to 1 (x ≫ centre)."""
    return 0.5 * (1.0 + np.tanh((x - centre) / width))


def sst_climatology(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """(12, ny, nx) monthly SST climatology (°C), January first."""
    lat = np.asarray(lat, float)
    lon = np.mod(np.asarray(lon, float), 360.0)
    east = _step(lon, 215.0, 25.0)
    base = 28.8 + 0.7 * np.exp(-(((lon - 150.0) / 35.0) ** 2)) - 6.0 * (lat / 30.0) ** 2
    cold_tongue = 4.5 * east * np.exp(-((lat - 1.0) ** 2) / (2 * 4.0**2))
    month = np.arange(12)[:, None, None] + 0.5
    annual_east = (0.3 + 1.5 * east * np.exp(-(lat**2) / (2 * 6.0**2))) * np.cos(2 * np.pi * (month - 3.5) / 12.0)
    hemispheric = -1.5 * (lat / 30.0) * np.cos(2 * np.pi * (month - 2.5) / 12.0)
    sst = base - cold_tongue + annual_east + hemispheric
    # Smooth floor: the 20 °C isotherm must exist in every column of the region.
    return SST_FLOOR + np.logaddexp(0.0, 4.0 * (sst - SST_FLOOR)) / 4.0


def d20_climatology(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """(12, ny, nx) monthly climatology of the 20 °C-isotherm depth (m), January first."""
    lat = np.asarray(lat, float)
    lon = np.mod(np.asarray(lon, float), 360.0)
    equator = 40.0 + 135.0 * (1.0 - _step(lon, 215.0, 30.0))
    off_equator = 80.0 * (1.0 - np.exp(-((lat / 15.0) ** 2))) - 30.0 * np.exp(-(((lat - 9.0) / 3.0) ** 2))
    month = np.arange(12)[:, None, None] + 0.5
    annual = 8.0 * _step(lon, 215.0, 30.0) * np.exp(-(lat**2) / (2 * 8.0**2)) * np.cos(2 * np.pi * (month - 4.0) / 12.0)
    return (equator + off_equator)[None] + annual


def subsurface_temperature(z) -> np.ndarray:
    """T_sub(z) (°C): the water below the thermocline, cooling gently with depth (always below 20 °C)."""
    return SUBSURFACE_ABYSS + SUBSURFACE_EXCESS * np.exp(-np.asarray(z, float) / SUBSURFACE_SCALE)


def isotherm_profiles(sst: np.ndarray, d20: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """θ (…, level, y, x) from SST and D20 (…, y, x): tanh thermoclines whose level-wise linear interpolation
    crosses 20 °C exactly at ``d20`` (see the module docstring). NaN where SST or D20 is NaN (land).

    ``d20`` must lie between the first and the last level, and SST above 20 °C.
    """
    sst = np.asarray(sst, float)
    d20 = np.asarray(d20, float)
    depth = np.asarray(depth, float)
    valid = np.isfinite(sst) & np.isfinite(d20)
    d20_safe = np.where(valid, d20, 0.5 * (depth[0] + depth[-1]))
    sst_safe = np.where(valid, sst, ISOTHERM + 5.0)
    width = np.where(valid, np.clip(0.3 * d20_safe, 8.0, 50.0), 20.0)
    k = np.clip(np.searchsorted(depth, d20_safe, side="right") - 1, 0, depth.size - 2)
    z_k, z_k1 = depth[k], depth[k + 1]
    r = (d20_safe - z_k) / (z_k1 - z_k)
    sub_k, sub_k1, sub_d20 = subsurface_temperature(z_k), subsurface_temperature(z_k1), subsurface_temperature(d20_safe)
    # Start from the smooth profile's own crossing at d20; Newton then moves it to where the levels' linear
    # interpolation crosses there. The residual is monotone in a, so the damped iteration converges.
    q = np.clip((ISOTHERM - sub_d20) / (sst_safe - sub_d20), 1e-6, 1 - 1e-6)
    a = np.arctanh(1.0 - 2.0 * q)
    for _ in range(50):
        u_k = (z_k - d20_safe) / width + a
        u_k1 = (z_k1 - d20_safe) / width + a
        theta_k = sub_k + (sst_safe - sub_k) * 0.5 * (1.0 - np.tanh(u_k))
        theta_k1 = sub_k1 + (sst_safe - sub_k1) * 0.5 * (1.0 - np.tanh(u_k1))
        residual = (1.0 - r) * theta_k + r * theta_k1 - ISOTHERM
        slope = -0.5 * (
            (1.0 - r) * (sst_safe - sub_k) / np.cosh(u_k) ** 2 + r * (sst_safe - sub_k1) / np.cosh(u_k1) ** 2
        )
        a = a - np.clip(residual / slope, -1.0, 1.0)
        if np.max(np.abs(residual)) < 1e-9:
            break
    else:  # pragma: no cover - reaching here means an input outside the documented range
        raise ValueError(
            f"isotherm_profiles: no consistent profile (largest residual {np.max(np.abs(residual)):.2e} °C)"
        )
    shape = (1,) * (sst.ndim - 2) + (depth.size, 1, 1)
    z = depth.reshape(shape)
    sub = subsurface_temperature(depth).reshape(shape)
    expand = (Ellipsis, None, slice(None), slice(None))
    u = (z - d20_safe[expand]) / width[expand] + a[expand]
    theta = sub + (sst_safe[expand] - sub) * 0.5 * (1.0 - np.tanh(u))
    return np.where(valid[expand], theta, np.nan)


def detail_patterns(lat, lon, n_modes: int, rng: np.random.Generator) -> np.ndarray:
    """(n_modes, ny, nx) unit-amplitude off-equatorial blobs (|centre latitude| 12–22°, σ_lat 4°, σ_lon 20–35°),
    each with a random sign; they barely touch the equator, so ENSO observables do not see them."""
    lat = np.asarray(lat, float)
    lon = np.mod(np.asarray(lon, float), 360.0)
    patterns = np.empty((n_modes, *lat.shape))
    for j in range(n_modes):
        centre_lat = rng.uniform(12.0, 22.0) * rng.choice([-1.0, 1.0])
        centre_lon = rng.uniform(150.0, 260.0)
        width_lon = rng.uniform(20.0, 35.0)
        patterns[j] = rng.choice([-1.0, 1.0]) * np.exp(
            -((lat - centre_lat) ** 2) / (2 * 4.0**2) - ((lon - centre_lon) ** 2) / (2 * width_lon**2)
        )
    return patterns


def red_noise(n_months: int, n_modes: int, persistence: float, rng: np.random.Generator) -> np.ndarray:
    """(n_months, n_modes) unit-variance AR(1) series with lag-1 correlation ``persistence`` (stationary start)."""
    out = np.empty((n_months, n_modes))
    innovation = np.sqrt(1.0 - persistence**2)
    x = rng.standard_normal(n_modes)
    for t in range(n_months):
        out[t] = x
        x = persistence * x + innovation * rng.standard_normal(n_modes)
    return out


def box_weights(lat, lon, ocean, box) -> np.ndarray:
    """(ny·nx,) cos-latitude weights of the ocean cells whose centres lie in ``box`` (lat0, lat1, lon0, lon1); sum 1."""
    lat = np.asarray(lat, float)
    lon = np.mod(np.asarray(lon, float), 360.0)
    lat0, lat1, lon0, lon1 = box
    inside = (lat >= lat0) & (lat <= lat1) & (lon >= lon0) & (lon <= lon1) & np.asarray(ocean, bool)
    w = np.where(inside, np.cos(np.deg2rad(lat)), 0.0).ravel()
    if w.sum() == 0:
        raise ValueError(f"box {box} holds no ocean cell of the grid")
    return w / w.sum()
