"""Spatial ENSO diagnostics of a gridded source and map-to-map comparison.

For each field (SST, thermocline depth) of a store, on the anomalies against the record's monthly climatology
(pooled over members):

* **std map** of the anomalies;
* **regression maps** on Niño 3 and on Niño 4: cov(field, index) / var(index), per °C of the index;
* **EOFs** of cos(lat)-weighted anomalies (the data matrix is weighted by √cos lat so that the covariance is
  area-weighted), shown as the regression of the unweighted anomalies on each standardised PC (units of the field
  per PC standard deviation), with the fraction of weighted variance each explains. Signs are fixed so that
  sources compare: EOF 1 has a positive Niño 3 box mean (El Niño-like), EOF 2 a positive Niño 3 − Niño 4 contrast
  (EP-like), higher modes a positive largest-magnitude loading;
* **DJF composites** of EP El Niño, CP El Niño and La Niña winters (the source's own event classification);
* **residual std map**: the std left after regressing out the equatorial observables (the pseudo-observation
  positions, :class:`bridging.observables.ObservationLayout`) by least squares. The regressors are the leading
  ``k`` principal components of the observables, each observable standardised first (°C and m would otherwise
  weigh by their units); a few PCs capture the observed ENSO state, whereas all ~112 strongly collinear
  observables would overfit (noise regressed out, a residual biased low). The map measures the variability that
  the observed equatorial ENSO state does not explain — the operational model's own detail the bridge should keep.

Map comparison (:func:`pattern_statistics`): centred pattern correlation and RMSE, area-weighted by cos(lat) over
the cells where both maps are finite (common ocean), as in Taylor diagrams.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.sparse.linalg import LinearOperator, svds

from .. import cf
from ..errors import InputDataError
from ..grid import TargetGrid
from ..observables import ObservationLayout
from ..stores import FIELD_ATTRS, FIELD_NAMES, FIELDS, OCEAN_MASK_ATTRS
from ..timeaxis import year_month
from .events import EVENT_CODES, WinterClassification
from .indices import NINO3, NINO4, IndexBox, normalise_grid

#: the cell method of the standard deviation maps (of monthly anomalies over the record)
STD = "time: standard_deviation"

REGRESSION_INDICES = ("nino3", "nino4")


class FieldAnomalies:
    """Anomalies of one field on its ocean cells as a (member·time, cell) float32 matrix, with the grid around it.

    The field is read in time chunks straight into the ocean-cell matrix, and the monthly climatology (pooled over
    members, float64) is accumulated on the way, so the peak memory is the matrix plus one chunk — not two full
    copies of the field. ``ocean`` is the store's ocean mask; a cell that is missing at some time anyway is dropped.
    """

    TIME_CHUNK = 120

    def __init__(self, field: xr.DataArray, ocean: np.ndarray):
        field = field if "member" in field.dims else field.expand_dims("member")
        self.n_member, self.n_time = field.sizes["member"], field.sizes["time"]
        self.lat = np.asarray(field["lat"].values, float)
        self.lon = np.asarray(field["lon"].values, float)
        cells = np.flatnonzero(np.asarray(ocean, bool).ravel())
        if cells.size == 0:
            raise ValueError("the field has no ocean cell")
        _, self.months = year_month(field["time"])
        data = np.empty((self.n_member, self.n_time, cells.size), np.float32)
        month_sums = np.zeros((12, cells.size))
        complete = np.ones(cells.size, bool)
        for start in range(0, self.n_time, self.TIME_CHUNK):
            sl = slice(start, min(start + self.TIME_CHUNK, self.n_time))
            block = np.asarray(field.isel(time=sl).values, dtype=np.float32)
            block = np.take(block.reshape(*block.shape[:2], -1), cells, axis=2)
            complete &= np.isfinite(block).all(axis=(0, 1))
            data[:, sl] = block
            onehot = (self.months[sl, None] == np.arange(1, 13)[None, :]).astype(np.float64)
            month_sums += onehot.T @ block.sum(axis=0, dtype=np.float64)
        if not complete.all():
            cells, data, month_sums = cells[complete], data[:, :, complete], month_sums[:, complete]
        if cells.size == 0:
            raise ValueError("the field has no ocean cell with data at every time")
        counts = np.bincount(self.months, minlength=13)[1:] * self.n_member
        climatology = (month_sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        data -= climatology[self.months - 1][None]
        self.cells = cells
        self.ocean = np.zeros(self.lat.size * self.lon.size, bool)
        self.ocean[cells] = True
        self.ocean = self.ocean.reshape(self.lat.size, self.lon.size)
        self.data = data.reshape(self.n_member * self.n_time, -1)
        self.coslat = np.cos(np.deg2rad(self.lat))[:, None].repeat(self.lon.size, 1).ravel()[self.cells]

    def to_map(self, values: np.ndarray) -> np.ndarray:
        """Scatter (…, cell) values onto the (…, lat, lon) grid, NaN off the ocean cells."""
        values = np.asarray(values, float)
        out = np.full(values.shape[:-1] + (self.lat.size * self.lon.size,), np.nan)
        out[..., self.cells] = values
        return out.reshape(values.shape[:-1] + (self.lat.size, self.lon.size))

    def box_weights(self, box: IndexBox) -> np.ndarray:
        lat2 = np.repeat(self.lat, self.lon.size)[self.cells]
        lon2 = np.tile(self.lon, self.lat.size)[self.cells]
        w = np.where(box.contains_points(lat2, lon2), self.coslat, 0.0)
        return w / w.sum() if w.sum() > 0 else w


# Cells per chunk of the float64 reductions: bounds the temporary to rows × 512 × 8 bytes (≈ 74 MB for the
# bridging model's 5 members × 300 years) instead of a float64 copy of the whole matrix.
CELL_CHUNK = 512


def _cell_chunks(n_cells: int):
    for start in range(0, n_cells, CELL_CHUNK):
        yield slice(start, min(start + CELL_CHUNK, n_cells))


def sum_of_squares(anom: FieldAnomalies) -> np.ndarray:
    """Σ_t x² per cell, accumulated in float64."""
    out = np.empty(anom.cells.size)
    for chunk in _cell_chunks(anom.cells.size):
        block = anom.data[:, chunk].astype(np.float64)
        out[chunk] = np.einsum("ij,ij->j", block, block)
    return out


def std_map(anom: FieldAnomalies) -> np.ndarray:
    return anom.to_map(np.sqrt(sum_of_squares(anom) / anom.data.shape[0]))


def regression_map(anom: FieldAnomalies, index: np.ndarray) -> np.ndarray:
    """Least-squares slope of the anomalies on a (member, time) index, per unit of the index."""
    x = np.asarray(index, float).reshape(-1)
    x = x - x.mean()
    slope = (x.astype(np.float32) @ anom.data).astype(np.float64) / float(x @ x)
    return anom.to_map(slope)


def leading_eofs(anom: FieldAnomalies, n_modes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(patterns (mode, lat, lon), explained variance fractions (mode,), standardised PCs (mode, member·time)).

    Truncated SVD (ARPACK) of the √cos(lat)-weighted anomaly matrix through a linear operator, so the weighted
    copy of the (possibly ~1 GB) data matrix is never formed.
    """
    data = anom.data
    sqrt_w = np.sqrt(anom.coslat).astype(np.float32)
    n_rows, n_cells = data.shape
    k = int(min(n_modes, min(n_rows, n_cells) - 1))
    if k < 1:
        raise ValueError("too few samples or cells for an EOF analysis")
    op = LinearOperator(
        (n_rows, n_cells),
        matvec=lambda v: (data @ (sqrt_w * np.asarray(v, np.float32).ravel())).astype(np.float64),
        rmatvec=lambda u: (sqrt_w * (np.asarray(u, np.float32).ravel() @ data)).astype(np.float64),
        dtype=np.float64,
    )
    v0 = np.random.default_rng(seed).standard_normal(min(n_rows, n_cells))
    # A Lanczos basis larger than ARPACK's default (2k+1) restarts less: weak EOFs near the noise continuum
    # otherwise need hundreds of passes over the data. (A randomized SVD is 5× faster but inexact for such modes.)
    ncv = int(min(max(4 * k + 8, 32), min(n_rows, n_cells) - 1))
    u, s, _ = svds(op, k=k, v0=v0, tol=1e-8, ncv=ncv)
    order = np.argsort(s)[::-1]
    u, s = u[:, order], s[order]
    total = float(sum_of_squares(anom) @ anom.coslat)
    fractions = s**2 / total
    pcs = (u - u.mean(axis=0)) / u.std(axis=0)  # standardised PCs (member·time, mode)
    patterns = (pcs.T.astype(np.float32) @ data).astype(np.float64) / n_rows  # field units per PC std
    w3, w4 = anom.box_weights(NINO3), anom.box_weights(NINO4)
    for j in range(k):
        if j == 0:
            key = patterns[j] @ w3
        elif j == 1:
            key = patterns[j] @ w3 - patterns[j] @ w4
        else:
            key = patterns[j][np.argmax(np.abs(patterns[j]))]
        if key < 0:
            patterns[j] *= -1
            pcs[:, j] *= -1
    return anom.to_map(patterns), fractions, pcs.T


def djf_composites(
    anom: FieldAnomalies, classification: WinterClassification, winter_starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(composites (event, lat, lon) in EVENT_CODES order, counts (event,)) of DJF-mean anomalies.

    ``winter_starts`` are the time positions of the April that opens each classified winter's window.
    """
    data = anom.data.reshape(anom.n_member, anom.n_time, -1)
    djf_pos = np.asarray(winter_starts)[:, None] + np.arange(8, 11)[None, :]  # (winter, 3)
    maps, counts = [], []
    for code in EVENT_CODES.values():
        members, winters = np.nonzero(classification.event_class == code)
        counts.append(members.size)
        if members.size == 0:
            maps.append(np.full(anom.cells.size, np.nan))
            continue
        acc = np.zeros(anom.cells.size)
        for m, w in zip(members, winters):
            acc += data[m, djf_pos[w]].mean(axis=0, dtype=np.float64)
        maps.append(acc / members.size)
    return anom.to_map(np.array(maps)), np.array(counts)


def observable_values(anomalies: dict[str, FieldAnomalies], layout: ObservationLayout) -> np.ndarray:
    """(member·time, n_obs) observables of the anomaly fields: the layout's observation operator
    (:meth:`ObservationLayout.operator`, cos(lat)-weighted box means over each field's ocean cells; one cell for
    CF23 nodes) applied to the ocean-cell matrices."""
    missing = sorted(set(layout.variable) - set(anomalies))
    if missing:
        raise ValueError(f"the observables need the fields {missing}, which the store lacks")
    first = next(iter(anomalies.values()))
    grid = grid_of(first.lat, first.lon)
    names = tuple(anomalies)
    operator = layout.operator(grid, {name: anom.ocean for name, anom in anomalies.items()}, names)
    n_cells = grid.shape[0] * grid.shape[1]
    out = np.empty((first.data.shape[0], layout.size))
    for c, name in enumerate(names):
        idx = layout.indices(name)
        if idx:
            anom = anomalies[name]
            weights = operator[np.ix_(idx, c * n_cells + anom.cells)].astype(np.float32)
            out[:, idx] = anom.data @ weights.T
    return out


def observable_pcs(observables: np.ndarray, n_modes: int) -> tuple[np.ndarray, np.ndarray]:
    """(orthonormal leading PCs (samples, k), fraction of the standardised observables' variance they explain)."""
    y = np.asarray(observables, float)
    y = y - y.mean(axis=0)
    scale = y.std(axis=0)
    y = y[:, scale > 0] / scale[scale > 0]
    u, s, _ = np.linalg.svd(y, full_matrices=False)
    k = int(min(n_modes, s.size))
    return u[:, :k], s[:k] ** 2 / np.sum(s**2)


def residual_std_map(anom: FieldAnomalies, pcs: np.ndarray) -> np.ndarray:
    """Std of the anomalies after least-squares regression on the orthonormal regressors ``pcs`` (samples, k)."""
    q = np.asarray(pcs, float)
    residual = np.empty(anom.cells.size)
    # The residual itself, in float64 and chunk by chunk: subtracting the explained from the total variance would
    # lose half the digits exactly where the residual is small.
    for chunk in _cell_chunks(anom.cells.size):
        block = anom.data[:, chunk].astype(np.float64)
        block -= q @ (q.T @ block)
        residual[chunk] = np.einsum("ij,ij->j", block, block)
    return anom.to_map(np.sqrt(residual / anom.data.shape[0]))


def grid_of(lat: np.ndarray, lon: np.ndarray) -> TargetGrid:
    """The regular TargetGrid of a store's coordinates (checked to reproduce them)."""
    res = float(np.round(lat[1] - lat[0], 6))
    grid = TargetGrid(float(lat[0]), float(lat[-1]), float(lon[0]), float(lon[-1]), res)
    if grid.shape != (lat.size, lon.size) or not (np.allclose(grid.lat, lat) and np.allclose(grid.lon, lon)):
        raise ValueError("the store's grid is not the regular target grid")
    return grid


def spatial_diagnostics(
    ds: xr.Dataset,
    indices: xr.Dataset,
    classification: WinterClassification,
    winter_starts: np.ndarray,
    layout: ObservationLayout | None,
    *,
    eof_modes: int,
    residual_modes: int,
    seed: int = 0,
    path=None,
) -> xr.Dataset:
    """All maps of a store (see the module docstring) as one Dataset on (lat, lon)."""
    ocean = np.asarray(ds["ocean_mask"].transpose("lat", "lon").values, bool)
    fields = {name: normalise_grid(ds, name, path) for name in FIELDS}
    if np.any(np.diff(ds["lat"].values) < 0):
        ocean = ocean[::-1]
    anomalies = {name: FieldAnomalies(field, ocean) for name, field in fields.items()}
    first = anomalies["sst"]
    coords = {
        "lat": ("lat", first.lat, dict(cf.COORDINATE_ATTRS["lat"])),
        "lon": ("lon", first.lon, dict(cf.COORDINATE_ATTRS["lon"])),
    }
    out = xr.Dataset(coords=coords)
    out = out.assign_coords(
        mode=("mode", np.arange(1, eof_modes + 1)),
        event=("event", np.array(list(EVENT_CODES), dtype=str)),
    )
    index_values = {
        name: np.asarray(
            indices[name].transpose(*[d for d in ("member", "time") if d in indices[name].dims]).values, float
        )
        for name in REGRESSION_INDICES
    }
    for name, anom in anomalies.items():
        units, long = FIELD_ATTRS[name]["units"], FIELD_NAMES[name]
        out[f"{name}_std"] = (
            ("lat", "lon"),
            std_map(anom),
            {"units": units, "long_name": f"standard deviation of {long} anomalies", "cell_methods": STD},
        )
        for index in REGRESSION_INDICES:
            out[f"{name}_regression_{index}"] = (
                ("lat", "lon"),
                regression_map(anom, index_values[index]),
                {
                    "units": "1" if units == "degC" else f"{units} degC-1",
                    "long_name": f"regression of {long} anomalies on the {index} index (change per degC of {index})",
                },
            )
        patterns, fractions, _ = leading_eofs(anom, eof_modes, seed)
        n = patterns.shape[0]
        eof = np.full((eof_modes, first.lat.size, first.lon.size), np.nan)
        eof[:n] = patterns
        frac = np.full(eof_modes, np.nan)
        frac[:n] = fractions
        out[f"{name}_eof"] = (
            ("mode", "lat", "lon"),
            eof,
            {
                "units": units,
                "long_name": f"EOF patterns of cos(lat)-weighted {long} anomalies: the anomaly regressed on the "
                "standardised principal component (anomaly per one standard deviation of the PC)",
            },
        )
        out[f"{name}_eof_variance_fraction"] = (
            ("mode",),
            frac,
            {"units": "1", "long_name": f"fraction of the weighted {long} anomaly variance of each EOF mode"},
        )
        comp, counts = djf_composites(anom, classification, winter_starts)
        out[f"{name}_composite"] = (
            ("event", "lat", "lon"),
            comp,
            {
                "units": units,
                "long_name": f"December-February composite of {long} anomalies per kind of event",
                "cell_methods": "time: mean",
            },
        )
    out["composite_count"] = (("event",), counts, {"long_name": "member-winters in each composite", "units": "1"})
    if layout is not None:
        try:
            y = observable_values(anomalies, layout)
        except ValueError as err:  # an observable on this store's land, or a field the layout needs is missing
            raise InputDataError(path, f"cannot extract the observables for the residual std map: {err}") from None
        pcs, explained = observable_pcs(y, residual_modes)
        for name, anom in anomalies.items():
            out[f"{name}_residual_std"] = (
                ("lat", "lon"),
                residual_std_map(anom, pcs),
                {
                    "units": FIELD_ATTRS[name]["units"],
                    "long_name": f"standard deviation of {FIELD_NAMES[name]} anomalies not explained by the leading "
                    f"{pcs.shape[1]} PCs of the observables",
                    "cell_methods": STD,
                },
            )
        out.attrs["residual_observable_modes"] = int(pcs.shape[1])
        out.attrs["residual_observables_explained_fraction"] = float(np.sum(explained))
        out.attrs["n_observables"] = int(layout.size)
    out["ocean_mask"] = (
        ("lat", "lon"),
        (anomalies["sst"].ocean & anomalies["thermocline_depth"].ocean).astype("int8"),
        dict(OCEAN_MASK_ATTRS),
    )
    return out


# --------------------------------------------------------------------------------------------------- comparison


def pattern_statistics(
    a: np.ndarray, b: np.ndarray, lat: np.ndarray, region: np.ndarray | None = None
) -> dict[str, float]:
    """Centred pattern correlation, RMSE (b − a) and RMS amplitude ratio (b / a) of two (lat, lon) maps,
    cos(lat)-weighted over the cells where both are finite (and ``region`` is True)."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    w = np.cos(np.deg2rad(np.asarray(lat, float)))[:, None] * np.ones_like(a)
    mask = np.isfinite(a) & np.isfinite(b)
    if region is not None:
        mask &= np.asarray(region, bool)
    if mask.sum() < 3:
        return {
            "pattern_correlation": float("nan"),
            "rmse": float("nan"),
            "amplitude_ratio": float("nan"),
            "n_cells": int(mask.sum()),
        }
    w, a, b = w[mask], a[mask], b[mask]
    w = w / w.sum()
    da, db = a - w @ a, b - w @ b
    denom = np.sqrt((w @ (da * da)) * (w @ (db * db)))
    corr = float((w @ (da * db)) / denom) if denom > 0 else float("nan")
    rms_a = np.sqrt(w @ (a * a))
    return {
        "pattern_correlation": corr,
        "rmse": float(np.sqrt(w @ ((b - a) ** 2))),
        "amplitude_ratio": float(np.sqrt(w @ (b * b)) / rms_a) if rms_a > 0 else float("nan"),
        "n_cells": int(mask.sum()),
    }
