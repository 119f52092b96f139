"""Regrid weights: their type, the source-grid fingerprint, and their computation (bilinear with the land-aware
coastal plane, inverse-distance, nearest) on unit-sphere vectors; see :mod:`bridging.regrid` for the methods."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from ..errors import InputDataError
from ..grid import TargetGrid
from ..settings import RegridSection

log = logging.getLogger(__package__)  # "bridging.regrid", as before the split

METHODS = ("bilinear", "idw", "nearest")


def grid_fingerprint(lat: np.ndarray, lon: np.ndarray) -> str:
    """Short hash of a horizontal grid's shape and coordinates (rounded to 1e-5°, longitudes taken mod 360)."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.mod(np.asarray(lon, dtype=np.float64), 360.0)
    h = hashlib.sha256()
    h.update(str(lat.shape).encode())
    h.update(np.round(np.nan_to_num(lat, nan=999.0), 5).tobytes())
    # Round first, then fold 360 → 0, so 359.999999 and 0.0 hash alike.
    h.update(np.mod(np.round(np.nan_to_num(lon, nan=999.0), 5), 360.0).tobytes())
    return h.hexdigest()[:16]


def unit_vectors(lat, lon) -> np.ndarray:
    la, lo = np.deg2rad(np.asarray(lat, np.float64)), np.deg2rad(np.asarray(lon, np.float64))
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _chord(angle_deg):
    return 2.0 * np.sin(np.deg2rad(np.asarray(angle_deg, np.float64)) / 2.0)


def _angle_deg(chord):
    return np.rad2deg(2.0 * np.arcsin(np.clip(np.asarray(chord) / 2.0, 0.0, 1.0)))


@dataclass(frozen=True, eq=False)
class RegridWeights:
    """Sparse weights (n_target × n_source) from one source grid to a target grid."""

    matrix: sparse.csr_matrix
    source_shape: tuple[int, int]
    source_fingerprint: str
    source_ocean: np.ndarray
    target: TargetGrid
    method: str
    max_distance_deg: float
    stats: dict = field(default_factory=dict)

    @property
    def target_valid(self) -> np.ndarray:
        """(lat, lon) bool: target cells that receive a value (ocean at the source's resolution)."""
        return (np.diff(self.matrix.indptr) > 0).reshape(self.target.shape)

    def check_source(self, lat: np.ndarray, lon: np.ndarray, label) -> None:
        """Raise InputDataError (naming ``label``) unless (lat, lon) is the grid these weights were built for."""
        if tuple(np.shape(lat)) != tuple(self.source_shape):
            raise InputDataError(
                label, f"grid shape {np.shape(lat)} differs from the regrid weights' source grid {self.source_shape}"
            )
        fp = grid_fingerprint(lat, lon)
        if fp != self.source_fingerprint:
            raise InputDataError(
                label,
                f"the grid (fingerprint {fp}) is not the one the regrid weights were computed for ({self.source_fingerprint})",
            )


# --------------------------------------------------------------------------------------------------------------
# Weight computation
# --------------------------------------------------------------------------------------------------------------


def _tangent_basis(target_xyz: np.ndarray):
    """East and north unit vectors at each target point (for the gnomonic projection about it)."""
    x, y = target_xyz[..., 0], target_xyz[..., 1]
    east = np.stack([-y, x, np.zeros_like(x)], axis=-1)
    norm = np.linalg.norm(east, axis=-1, keepdims=True)
    # At a pole any east direction will do.
    east = np.where(norm > 1e-12, east / np.maximum(norm, 1e-300), np.array([0.0, 1.0, 0.0]))
    north = np.cross(target_xyz, east)
    return east, north


def _gnomonic(points_xyz: np.ndarray, target_xyz: np.ndarray, east: np.ndarray, north: np.ndarray):
    """Gnomonic (u, v) of points about their targets; points on the far hemisphere get NaN."""
    denom = np.sum(points_xyz * target_xyz, axis=-1)
    ok = denom > 1e-6
    denom = np.where(ok, denom, np.nan)
    u = np.sum(points_xyz * east, axis=-1) / denom
    v = np.sum(points_xyz * north, axis=-1) / denom
    return u, v


def _inverse_bilinear(u: np.ndarray, v: np.ndarray, iterations: int = 12):
    """(s, t) in the quad with corner coordinates u, v (..., 4: SW, SE, NE, NW) that maps to the origin.

    Solves a + b s + c t + d s t = 0 by Newton's method from the quad centre; returns s, t and a convergence flag.
    """
    a = np.stack([u[..., 0], v[..., 0]], axis=-1)
    b = np.stack([u[..., 1] - u[..., 0], v[..., 1] - v[..., 0]], axis=-1)
    c = np.stack([u[..., 3] - u[..., 0], v[..., 3] - v[..., 0]], axis=-1)
    d = np.stack(
        [u[..., 0] - u[..., 1] + u[..., 2] - u[..., 3], v[..., 0] - v[..., 1] + v[..., 2] - v[..., 3]], axis=-1
    )
    s = np.full(u.shape[:-1], 0.5)
    t = np.full(u.shape[:-1], 0.5)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for _ in range(iterations):
            f = a + b * s[..., None] + c * t[..., None] + d * (s * t)[..., None]
            js = b + d * t[..., None]
            jt = c + d * s[..., None]
            det = js[..., 0] * jt[..., 1] - jt[..., 0] * js[..., 1]
            ds = (f[..., 0] * jt[..., 1] - jt[..., 0] * f[..., 1]) / det
            dt = (js[..., 0] * f[..., 1] - f[..., 0] * js[..., 1]) / det
            s = s - ds
            t = t - dt
        f = a + b * s[..., None] + c * t[..., None] + d * (s * t)[..., None]
        scale = np.linalg.norm(b, axis=-1) + np.linalg.norm(c, axis=-1)
        converged = np.isfinite(s) & np.isfinite(t) & (np.linalg.norm(f, axis=-1) <= 1e-9 * np.maximum(scale, 1e-300))
    return s, t, converged


def _is_periodic_x(xyz: np.ndarray, finite: np.ndarray) -> bool:
    """True when the grid's last column neighbours its first (a global grid that wraps in x)."""
    rows = finite[:, 0] & finite[:, -1] & finite[:, 1]
    if rows.sum() < 1 or xyz.shape[1] < 3:
        return False
    gap = np.linalg.norm(xyz[rows, -1] - xyz[rows, 0], axis=-1)
    step = np.linalg.norm(xyz[rows, 1] - xyz[rows, 0], axis=-1)
    return bool(np.median(gap) < 1.5 * np.median(step))


def _idw_rows(tree, ocean_index, targets_xyz, k, power, max_chord):
    """IDW weights of the k nearest ocean points within max_chord: (cols, weights) arrays of shape (n, k)."""
    k = min(k, tree.n)
    dist, idx = tree.query(targets_xyz, k=k, distance_upper_bound=max_chord)
    dist = np.asarray(dist).reshape(len(targets_xyz), k)
    idx = np.asarray(idx).reshape(len(targets_xyz), k)
    found = np.isfinite(dist)
    angle = np.where(found, _angle_deg(np.where(found, dist, 0.0)), np.inf)
    with np.errstate(divide="ignore"):
        w = np.where(found, 1.0 / np.maximum(angle, 1e-9) ** power, 0.0)
    exact = found & (angle < 1e-9)
    has_exact = exact.any(axis=1)
    w[has_exact] = exact[has_exact].astype(float)
    total = w.sum(axis=1, keepdims=True)
    w = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    cols = np.where(found, ocean_index[np.minimum(idx, len(ocean_index) - 1)], 0)
    return cols, w


def _plane_rows(flat_xyz, ocean_flat, ll_j, ll_i, shape, periodic, targets_xyz):
    """Weights of a weighted least-squares plane f ≈ a + b·u + c·v evaluated at the target (u = v = 0 in the
    gnomonic projection about it), through the ocean points of the 4 × 4 block of source points around the
    target's cell (lower-left corner ll_j, ll_i).

    Neighbours are taken in index space and must connect through ocean to the cell's ocean corners, so a plane at
    the Pacific coast of Panama does not reach across the isthmus into the Caribbean (as nearest points by distance
    would). Weights sum to one and reproduce linear fields. Rows with too
    few or collinear ocean points, or with large weights (extrapolation), come back with ok = False."""
    ny, nx = shape
    n = len(targets_xyz)
    dj, di = np.meshgrid(np.arange(-1, 3), np.arange(-1, 3), indexing="ij")
    jj = ll_j[:, None] + dj.ravel()[None, :]
    ii = ll_i[:, None] + di.ravel()[None, :]
    if periodic:
        ii = np.mod(ii, nx)
    inside = (jj >= 0) & (jj < ny) & (ii >= 0) & (ii < nx)
    idx = np.where(inside, jj * nx + ii, 0)
    valid = inside & ocean_flat[idx]
    # Keep only the ocean points connected (through ocean, within the block) to the cell's own ocean corners:
    # a one-cell isthmus inside the block must not let the other basin in.
    wet = valid.reshape(n, 4, 4)
    reach = np.zeros_like(wet)
    reach[:, 1:3, 1:3] = wet[:, 1:3, 1:3]
    for _ in range(6):
        grown = reach.copy()
        grown[:, 1:, :] |= reach[:, :-1, :]
        grown[:, :-1, :] |= reach[:, 1:, :]
        grown[:, :, 1:] |= reach[:, :, :-1]
        grown[:, :, :-1] |= reach[:, :, 1:]
        reach = grown & wet
    valid = reach.reshape(n, 16)
    pts = flat_xyz[idx]  # (n, 16, 3)
    dist = np.linalg.norm(pts - targets_xyz[:, None, :], axis=-1)
    east, north = _tangent_basis(targets_xyz)
    u, v = _gnomonic(pts, targets_xyz[:, None, :], east[:, None, :], north[:, None, :])
    valid &= np.isfinite(u) & np.isfinite(v)
    scale = np.where(valid, dist, 0.0).max(axis=1, keepdims=True)
    scale = np.where(scale > 0, scale, 1.0)
    u, v, dist = u / scale, v / scale, dist / scale
    d1 = np.where(valid, dist, np.inf).min(axis=1, keepdims=True)
    d1 = np.where(np.isfinite(d1), d1, 1.0)
    wls = np.where(valid, 1.0 / (dist**2 + d1**2 + 1e-12), 0.0)
    design = np.stack([np.ones_like(u), np.where(valid, u, 0.0), np.where(valid, v, 0.0)], axis=-1)  # (n, 16, 3)
    normal = np.einsum("nk,nki,nkj->nij", wls, design, design)
    ok = valid.sum(axis=1) >= 3
    cond = np.full(n, np.inf)
    cond[ok] = np.linalg.cond(normal[ok])
    ok &= cond < 1e6
    weights = np.zeros(valid.shape)
    if ok.any():
        e0 = np.zeros((ok.sum(), 3, 1))
        e0[:, 0, 0] = 1.0
        sol = np.linalg.solve(normal[ok], e0)[..., 0]  # (m, 3) = (AᵀWA)⁻¹ e0
        weights[ok] = wls[ok] * np.einsum("nkj,nj->nk", design[ok], sol)
    # Large weights mean extrapolation beyond the points: IDW is the safer choice there.
    ok &= np.abs(weights).max(axis=1) <= 2.0
    return idx, weights, ok


def compute_weights(
    lat: np.ndarray,
    lon: np.ndarray,
    ocean: np.ndarray,
    target: TargetGrid,
    *,
    method: str = "bilinear",
    neighbours: int = 4,
    idw_power: float = 2.0,
    max_distance_deg: float = 2.5,
) -> RegridWeights:
    """Weights from a source grid (2-D ``lat``/``lon`` in degrees, any longitude convention, NaN = no point; ``ocean``
    True where the source has data) to ``target``. See the module docstring for the methods."""
    if method not in METHODS:
        raise ValueError(f"regrid method must be one of {METHODS}, got {method!r}")
    lat = np.asarray(lat, np.float64)
    # One convention (0–360) before any geometry, so equidistant neighbours (regular grids have many) are ranked
    # identically whatever convention the file used; the geometry itself is on unit vectors and wrap-safe.
    lon = np.mod(np.asarray(lon, np.float64), 360.0)
    ocean = np.asarray(ocean, bool)
    if lat.ndim != 2 or lat.shape != lon.shape or lat.shape != ocean.shape:
        raise ValueError(f"lat, lon and ocean must share one 2-D shape, got {lat.shape}, {lon.shape}, {ocean.shape}")
    ny, nx = lat.shape
    finite = np.isfinite(lat) & np.isfinite(lon)
    ocean = ocean & finite
    if not ocean.any():
        raise ValueError("the source has no ocean point (the field is NaN everywhere in its first month)")
    xyz = unit_vectors(np.where(finite, lat, 0.0), np.where(finite, lon, 0.0))
    flat_xyz = xyz.reshape(-1, 3)
    ocean_index = np.flatnonzero(ocean.ravel())
    ocean_xyz = flat_xyz[ocean_index]
    ocean_tree = cKDTree(ocean_xyz)

    tlat, tlon = np.meshgrid(target.lat, target.lon, indexing="ij")
    t_xyz = unit_vectors(tlat.ravel(), tlon.ravel())
    n_target = t_xyz.shape[0]
    max_chord = float(_chord(max_distance_deg))
    stats = {"targets": n_target}

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []

    # The one rule for land, whatever the method: a target with no ocean point within max_distance stays empty.
    nearest_ocean, _ = ocean_tree.query(t_xyz, k=1, distance_upper_bound=max_chord)
    reachable = np.isfinite(nearest_ocean)

    def add(target_ids, c, w):
        keep = (w != 0.0) & reachable[target_ids][:, None]
        rows.append(np.broadcast_to(target_ids[:, None], w.shape)[keep])
        cols.append(c[keep])
        vals.append(w[keep])

    if method == "nearest":
        c, w = _idw_rows(ocean_tree, ocean_index, t_xyz, 1, idw_power, max_chord)
        add(np.arange(n_target), c, w)
    elif method == "idw":
        c, w = _idw_rows(ocean_tree, ocean_index, t_xyz, neighbours, idw_power, max_chord)
        add(np.arange(n_target), c, w)
    else:
        fallback = _bilinear(xyz, finite, ocean, t_xyz, add, stats)
        if fallback.size:
            c, w = _idw_rows(ocean_tree, ocean_index, t_xyz[fallback], neighbours, idw_power, max_chord)
            add(fallback, c, w)
        stats["idw_fallback"] = int(fallback.size)

    r = np.concatenate(rows) if rows else np.zeros(0, int)
    c = np.concatenate(cols) if cols else np.zeros(0, int)
    v = np.concatenate(vals) if vals else np.zeros(0)
    matrix = sparse.csr_matrix((v, (r, c)), shape=(n_target, ny * nx))
    matrix.sum_duplicates()
    weights = RegridWeights(
        matrix=matrix,
        source_shape=(ny, nx),
        source_fingerprint=grid_fingerprint(lat, lon),
        source_ocean=ocean,
        target=target,
        method=method,
        max_distance_deg=float(max_distance_deg),
        stats=stats,
    )
    stats["valid_targets"] = int(weights.target_valid.sum())
    log.info("regrid weights (%s): %s", method, stats)
    return weights


def _bilinear(xyz, finite, ocean, t_xyz, add, stats) -> np.ndarray:
    """Add bilinear / plane rows; return the target ids that need the IDW fallback."""
    ny, nx = finite.shape
    n_target = len(t_xyz)
    periodic = _is_periodic_x(xyz, finite)
    all_index = np.flatnonzero(finite.ravel())
    all_tree = cKDTree(xyz.reshape(-1, 3)[all_index])
    _, nearest = all_tree.query(t_xyz, k=1)
    j0, i0 = np.divmod(all_index[nearest], nx)

    east, north = _tangent_basis(t_xyz)
    found = np.zeros(n_target, bool)
    corners = np.zeros((n_target, 4), np.int64)
    s_found = np.zeros(n_target)
    t_found = np.zeros(n_target)
    for dj, di in ((0, 0), (-1, 0), (0, -1), (-1, -1)):
        j = j0 + dj
        i = i0 + di
        ip1 = i + 1
        if periodic:
            i, ip1 = np.mod(i, nx), np.mod(ip1, nx)
        ok = ~found & (j >= 0) & (j + 1 < ny) & (i >= 0) & (ip1 < nx) & (ip1 >= 0)
        jj, ii, ii1 = np.where(ok, j, 0), np.where(ok, i, 0), np.where(ok, ip1, 0)
        quad = np.stack([jj * nx + ii, jj * nx + ii1, (jj + 1) * nx + ii1, (jj + 1) * nx + ii], axis=1)
        ok &= finite.ravel()[quad].all(axis=1)
        if not ok.any():
            continue
        sel = np.flatnonzero(ok)
        pts = xyz.reshape(-1, 3)[quad[sel]]  # (m, 4, 3)
        u, v = _gnomonic(pts, t_xyz[sel, None, :], east[sel, None, :], north[sel, None, :])
        s, t, conv = _inverse_bilinear(u, v)
        tol = 1e-7
        inside = conv & (s >= -tol) & (s <= 1 + tol) & (t >= -tol) & (t <= 1 + tol)
        hit = sel[inside]
        found[hit] = True
        corners[hit] = quad[sel[inside]]
        s_found[hit] = np.clip(s[inside], 0.0, 1.0)
        t_found[hit] = np.clip(t[inside], 0.0, 1.0)

    ocean_flat = ocean.ravel()
    corner_ocean = ocean_flat[corners] & found[:, None]
    n_ocean = corner_ocean.sum(axis=1)
    full = found & (n_ocean == 4)
    partial = found & (n_ocean > 0) & (n_ocean < 4)
    # Bilinear weights for cells entirely in the ocean.
    ids = np.flatnonzero(full)
    s, t = s_found[ids], t_found[ids]
    w = np.stack([(1 - s) * (1 - t), s * (1 - t), s * t, (1 - s) * t], axis=1)
    add(ids, corners[ids], w)
    stats["bilinear"] = int(ids.size)
    # Cells touching land: least-squares plane through the nearest ocean points.
    ids = np.flatnonzero(partial)
    fallback = [np.flatnonzero(~found | (n_ocean == 0))]
    if ids.size:
        ll_j, ll_i = np.divmod(corners[ids, 0], nx)
        c, w, ok = _plane_rows(xyz.reshape(-1, 3), ocean_flat, ll_j, ll_i, (ny, nx), periodic, t_xyz[ids])
        add(ids[ok], c[ok], w[ok])
        fallback.append(ids[~ok])
        stats["coastal_plane"] = int(ok.sum())
    else:
        stats["coastal_plane"] = 0
    stats["periodic_x"] = periodic
    return np.sort(np.concatenate(fallback))


def weights_from_config(lat, lon, ocean, grid: TargetGrid, regrid_cfg) -> RegridWeights:
    """compute_weights with the options of an ``ingest.regrid`` config section (RegridSection or mapping)."""
    cfg = RegridSection.model_validate(regrid_cfg)
    return compute_weights(
        lat, lon, ocean, grid, method=cfg.method, neighbours=cfg.neighbours, idw_power=cfg.idw_power,
        max_distance_deg=cfg.max_distance_deg,
    )  # fmt: skip
