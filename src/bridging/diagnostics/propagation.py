"""The known-truth propagation test: how far from the observed equatorial cells the bridging model reproduces the
idealized model's fields.

The filter observes only the equatorial cells of the pseudo-observation run; that run's full SST and
thermocline-depth fields are nevertheless known (CF23's 2-D reconstruction on the target grid,
:mod:`bridging.idealized.reconstruction`). The bridging model's ensemble mean (the decoded D(z̄)) is compared with
them month by month: per grid cell the anomaly correlation and the RMSE over the record (anomalies against each
record's own monthly climatology), then averaged over the ocean cells of each latitude row within the node range
(126–280°E), and over the cells within ±``band_deg`` of the equator for each longitude. The forecast model's free run
(the same models without the analysis) is the no-skill reference: its months are not tied to the pseudo-observation
run, so its correlation should be near zero everywhere.
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from ..errors import InputDataError
from ..idealized.reconstruction import NODE_FIELDS, CF23Reconstruction, has_node_fields
from ..stores import FIELDS, open_store, open_zarr_checked
from ..timeaxis import year_month

log = logging.getLogger(__name__)

NODE_LON_RANGE = (126.0, 280.0)
SOURCES = ("bridging", "free_run")


def _anomalies(x: np.ndarray, months: np.ndarray) -> np.ndarray:
    """(time, …) minus each calendar month's mean over the record."""
    out = np.empty_like(x, dtype=np.float64)
    for m in range(1, 13):
        sel = months == m
        out[sel] = x[sel] - x[sel].mean(axis=0)
    return out


def cell_skill(truth: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell over time (axis 0): anomaly correlation, RMSE and the truth's std. NaN where either is constant."""
    t = truth - truth.mean(axis=0)
    e = estimate - estimate.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (t * e).mean(axis=0) / np.sqrt((t * t).mean(axis=0) * (e * e).mean(axis=0))
    rmse = np.sqrt(((estimate - truth) ** 2).mean(axis=0))
    return corr, rmse, t.std(axis=0)


def truth_fields(pseudo_obs: xr.Dataset, lat: np.ndarray, lon: np.ndarray, path=None) -> dict[str, np.ndarray]:
    """(time, lat, lon) SST and thermocline-depth anomalies of the pseudo-observation run on the target grid."""
    if not has_node_fields(pseudo_obs):
        raise InputDataError(
            path, f"no CF23 node fields {NODE_FIELDS}: the propagation test needs a CF23 pseudo-observation run"
        )
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    sst, depth = CF23Reconstruction.build(la, lo).apply_run(pseudo_obs)
    return {"sst": sst, "thermocline_depth": depth}


def propagation_skill(
    truth: dict[str, np.ndarray],
    estimates: dict[str, dict[str, np.ndarray]],
    lat,
    lon,
    ocean,
    months,
    band_deg: float = 5.0,
) -> dict:
    """Skill by latitude and by longitude of each estimate (source → field → (time, lat, lon)) against the truth."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    in_range = (lon >= NODE_LON_RANGE[0]) & (lon <= NODE_LON_RANGE[1])
    near_equator = np.abs(lat) <= band_deg
    out: dict = {"latitude": lat.tolist(), "longitude": lon.tolist(), "equatorial_band_deg": band_deg}
    for field, true in truth.items():
        true_anom = _anomalies(true, months)
        entry: dict = {}
        for source, fields in estimates.items():
            corr, rmse, truth_std = cell_skill(true_anom, _anomalies(fields[field], months))
            valid = ocean & np.isfinite(corr)
            by_lat = valid & in_range[None, :]
            by_lon = valid & near_equator[:, None]
            entry[source] = {
                "latitude": lat.tolist(),
                "correlation": _masked_mean(corr, by_lat, axis=1),
                "rmse": _masked_mean(rmse, by_lat, axis=1),
                "longitude": lon.tolist(),
                "correlation_by_longitude": _masked_mean(corr, by_lon, axis=0),
                "rmse_by_longitude": _masked_mean(rmse, by_lon, axis=0),
                "equator_correlation": _masked_mean(
                    corr, valid & (np.abs(lat) < 0.5)[:, None] & in_range[None, :], axis=None
                ),
            }
        entry["truth_std"] = _masked_mean(truth_std, ocean & in_range[None, :], axis=1)
        out[field] = entry
    return out


def _masked_mean(values: np.ndarray, mask: np.ndarray, axis):
    with np.errstate(invalid="ignore"):
        total = np.where(mask, values, 0.0).sum(axis=axis)
        count = mask.sum(axis=axis)
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return float(mean) if axis is None else [float(v) if np.isfinite(v) else None for v in mean]


def _ensemble_mean_fields(path, months_ref: np.ndarray) -> dict[str, np.ndarray]:
    ds = open_store(path)
    missing = [f"{f}_ensemble_mean" for f in FIELDS if f"{f}_ensemble_mean" not in ds]
    if missing:
        raise InputDataError(path, f"no decoded ensemble mean {missing}")
    years, months = year_month(ds["time"])
    if months.size != months_ref.size or not np.array_equal(months, months_ref):
        raise InputDataError(path, "its months do not match the pseudo-observation record month for month")
    return {f: np.asarray(ds[f"{f}_ensemble_mean"].transpose("time", "lat", "lon").values, np.float64) for f in FIELDS}


def run_propagation(pseudo_obs, bridging, free_run, *, band_deg: float = 5.0) -> dict:
    """The whole test from the stores (the rule ``propagation``): returns the JSON-able result."""
    po = open_zarr_checked(pseudo_obs, "pseudo-observation store", NODE_FIELDS)
    grid = open_store(bridging)
    lat, lon = np.asarray(grid["lat"].values, float), np.asarray(grid["lon"].values, float)
    if np.any(np.diff(lat) < 0):
        raise InputDataError(bridging, "latitudes must ascend (a project store does)")
    ocean = np.asarray(grid["ocean_mask"].transpose("lat", "lon").values, bool)
    _, months = year_month(po["time"])
    truth = truth_fields(po, lat, lon, pseudo_obs)
    estimates = {
        "bridging": _ensemble_mean_fields(bridging, months),
        "free_run": _ensemble_mean_fields(free_run, months),
    }
    result = propagation_skill(truth, estimates, lat, lon, ocean, months, band_deg)
    result["definition"] = __doc__.split("\n\n")[1].replace("\n", " ")
    for field in FIELDS:
        log.info(
            "%s: equatorial anomaly correlation bridging %.2f, free run %.2f",
            field, result[field]["bridging"]["equator_correlation"], result[field]["free_run"]["equator_correlation"],
        )  # fmt: skip
    return result
