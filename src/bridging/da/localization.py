"""Gaspari–Cohn localization of the observation–observation covariance for the augmented latent state x = [z; y].

The analysis (:mod:`bridging.da.analysis`) localizes in observation space, C̃_yy = ρ ∘ C_yy, and projects the
localized observable increments onto the ensemble span, so that z and y move by the same member weights and stay
balanced (y is a function of the decoded z). Only the m × m taper ρ between observables is needed:
ρ = GC(|lon_k − lon_l| / c), the zonal distance between observable longitudes (SST and thermocline depth at the same
longitude are at distance 0). The half-width must be wide enough to keep the basin-scale covariance between the
western thermocline and the eastern SST that ENSO is made of (docs/method.md, Filter).

ρ is a Gaspari–Cohn function of a 1-D Euclidean distance (the target grid is a contiguous 0–360 °E range, so no
wrap-around), hence positive semi-definite, and ρ ∘ C_yy + R stays positive definite.

Half-widths follow the Gaspari & Cohn (1999) convention: c is the half-width, the taper is zero from 2c on
(DART's ``cutoff``). DAPPER's ``dist2coeff(..., 'GC')`` radius r corresponds to c = 1.82·r (its code rounds
√(10/3) ≈ 1.826, so that the taper is ≈ e^{-1/2} at d = r; tested against DAPPER).
"""

from __future__ import annotations

import numpy as np


def gaspari_cohn(distance, half_width: float) -> np.ndarray:
    """Gaspari & Cohn (1999) eq. 4.10, the fifth-order piecewise rational taper: 1 at 0, 0 from 2·half_width on."""
    if not half_width > 0:
        raise ValueError(f"half_width must be positive, got {half_width}")
    r = np.abs(np.asarray(distance, dtype=np.float64)) / half_width
    rho = np.zeros_like(r)
    inner = r <= 1.0
    outer = (r > 1.0) & (r < 2.0)
    ri = r[inner]
    rho[inner] = -0.25 * ri**5 + 0.5 * ri**4 + 0.625 * ri**3 - (5.0 / 3.0) * ri**2 + 1.0
    ro = r[outer]
    rho[outer] = ro**5 / 12.0 - 0.5 * ro**4 + 0.625 * ro**3 + (5.0 / 3.0) * ro**2 - 5.0 * ro + 4.0 - 2.0 / (3.0 * ro)
    # The polynomial's round-off near r = 2 can dip a hair below zero.
    return np.clip(rho, 0.0, 1.0)


def zonal_distance_deg(lon_a, lon_b) -> np.ndarray:
    """|lon_a − lon_b| in degrees (both 0–360 °E on a domain that does not cross 0 °E), as an (a, b) matrix."""
    a = np.asarray(lon_a, dtype=np.float64) % 360.0
    b = np.asarray(lon_b, dtype=np.float64) % 360.0
    return np.abs(a[:, None] - b[None, :])


def obs_taper(obs_lon, half_width_deg: float) -> np.ndarray:
    """The (n_obs, n_obs) taper ρ = GC(zonal distance / half_width_deg) between observables."""
    obs_lon = np.asarray(obs_lon, dtype=np.float64)
    if obs_lon.ndim != 1 or obs_lon.size == 0 or not np.isfinite(obs_lon).all():
        raise ValueError(f"observable longitudes must be a non-empty finite 1-D array, got shape {obs_lon.shape}")
    return gaspari_cohn(zonal_distance_deg(obs_lon, obs_lon), half_width_deg)


def taper_from_settings(obs_lon, localization) -> np.ndarray | None:
    """The taper of the configured ``LocalizationSection`` (or mapping), or None when localization is off."""
    get = localization.get if isinstance(localization, dict) else lambda k: getattr(localization, k)
    if not get("enabled"):
        return None
    return obs_taper(obs_lon, float(get("obs_halfwidth_deg")))


def taper_summary(taper: np.ndarray | None, obs_lon=None) -> dict:
    """How much of the observable–observable covariance the taper keeps (logged and stored with the run)."""
    if taper is None:
        return {"enabled": False}
    summary = {"enabled": True, "mean": float(taper.mean()), "zero_fraction": float((taper == 0).mean())}
    if obs_lon is not None:
        lon = np.asarray(obs_lon, dtype=np.float64) % 360.0
        summary["weight_between_westmost_and_eastmost"] = float(taper[np.argmin(lon), np.argmax(lon)])
    return summary
