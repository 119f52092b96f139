"""Gaspari–Cohn covariance localization for the augmented latent state x = [z; y].

The analysis needs one (n, n_obs) Schur taper on the state–observation covariance, n = n_latent + n_obs:

* rows of the latent variables z_i: ρ = GC(d_ik / c_latent) with the statistical distance d_ik = 1 − |corr(z_i, y_k)|
  estimated on the training record (latent space has no geometry; a latent variable that does not co-vary with an
  observable in the training data should not be moved by it through sampling noise);
* rows of the observables y_l: ρ = GC(|lon_l − lon_k| / c_obs), the zonal distance between observable longitudes
  (SST and thermocline depth at the same longitude are at distance 0).

Both blocks are always built together: tapering only the observation–observation block and leaving the latent rows
untapered makes the increments of z and y inconsistent (docs/method.md, Filter: "Localization off by default").
The obs–obs block is a Gaspari–Cohn function of a 1-D Euclidean distance (the target grid is a contiguous
0–360 °E range, so no wrap-around), hence positive semi-definite, and ρ_oo ∘ C_yy + R stays positive definite.

Half-widths follow the Gaspari & Cohn (1999) convention: c is the half-width, the taper is zero from 2c on
(DART's ``cutoff``). DAPPER's ``dist2coeff(..., 'GC')`` radius r corresponds to c = 1.82·r (its code rounds
√(10/3) ≈ 1.826, so that the taper is ≈ e^{-1/2} at d = r; tested against DAPPER).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputDataError


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


def correlation_distance(latent: np.ndarray, observables: np.ndarray, *, path=None) -> np.ndarray:
    """d_ik = 1 − |corr(z_i, y_k)| over time from training series z (time, n_latent) and y (time, n_obs).

    A latent variable that is constant over the record has no correlation with anything (distance 1).
    """
    z = np.asarray(latent, dtype=np.float64)
    y = np.asarray(observables, dtype=np.float64)
    if z.ndim != 2 or y.ndim != 2 or z.shape[0] != y.shape[0]:
        raise InputDataError(
            path, f"latent series {z.shape} and observables {y.shape} must be (time, ·) with equal time"
        )
    if z.shape[0] < 3:
        raise InputDataError(path, f"{z.shape[0]} time steps are too few to estimate correlations for localization")
    if not (np.isfinite(z).all() and np.isfinite(y).all()):
        raise InputDataError(path, "latent or observable training series contain NaN/Inf")
    z = z - z.mean(0)
    y = y - y.mean(0)
    zs = np.sqrt((z**2).sum(0))
    ys = np.sqrt((y**2).sum(0))
    if not (ys > 0).all():
        raise InputDataError(
            path, f"observables {np.flatnonzero(ys == 0).tolist()} are constant over the training record"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (z.T @ y) / np.outer(zs, ys)
    corr = np.where(zs[:, None] > 0, corr, 0.0)
    return 1.0 - np.clip(np.abs(corr), 0.0, 1.0)


def augmented_taper(
    latent_distance: np.ndarray, obs_lon, *, latent_halfwidth: float, obs_halfwidth_deg: float
) -> np.ndarray:
    """The (n_latent + n_obs, n_obs) taper: GC on the correlation distance above GC on the zonal distance."""
    latent_distance = np.asarray(latent_distance, dtype=np.float64)
    obs_lon = np.asarray(obs_lon, dtype=np.float64)
    if latent_distance.ndim != 2 or latent_distance.shape[1] != obs_lon.size:
        raise ValueError(f"latent distance {latent_distance.shape} does not match {obs_lon.size} observables")
    latent_rows = gaspari_cohn(latent_distance, latent_halfwidth)
    obs_rows = gaspari_cohn(zonal_distance_deg(obs_lon, obs_lon), obs_halfwidth_deg)
    return np.vstack([latent_rows, obs_rows])


def taper_from_training(
    latent: np.ndarray, observables: np.ndarray, obs_lon, localization, *, path=None
) -> np.ndarray | None:
    """The taper of the configured ``LocalizationSection`` (or mapping), or None when localization is off."""
    get = localization.get if isinstance(localization, dict) else lambda k: getattr(localization, k)
    if not get("enabled"):
        return None
    distance = correlation_distance(latent, observables, path=path)
    return augmented_taper(
        distance,
        obs_lon,
        latent_halfwidth=float(get("latent_halfwidth")),
        obs_halfwidth_deg=float(get("obs_halfwidth_deg")),
    )


def taper_summary(taper: np.ndarray | None, n_obs: int) -> dict:
    """How much of the latent–observable coupling the taper keeps (logged and stored with the run)."""
    if taper is None:
        return {"enabled": False}
    latent = taper[:-n_obs]
    return {
        "enabled": True,
        "latent_rows_mean": float(latent.mean()) if latent.size else None,
        "latent_rows_zero_fraction": float((latent == 0).mean()) if latent.size else None,
        "latent_variables_without_any_observable": int((latent.max(1) == 0).sum()) if latent.size else 0,
        "obs_rows_mean": float(taper[-n_obs:].mean()),
    }
