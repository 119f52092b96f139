"""Regrid weights on disk: netCDF in the ESMF offline-weights convention (``S``, ``row``, ``col`` 1-based, ``mask_a``,
``mask_b``, ``src_grid_dims``/``dst_grid_dims`` in x-fastest order), readable by xESMF or CDO-style tools, plus the
fingerprint of the source grid and the target grid they map to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from scipy import sparse

from ..atomic import atomic_output
from ..errors import InputDataError
from ..grid import TargetGrid
from .weights import RegridWeights

WEIGHTS_FORMAT = "enso-bridge regrid weights 1 (ESMF offline-weights layout)"


def save_weights(weights: RegridWeights, path: str | Path) -> Path:
    """Write weights as netCDF in the ESMF offline-weights layout (atomically)."""
    coo = weights.matrix.tocoo()
    ny, nx = weights.source_shape
    nlat, nlon = weights.target.shape
    tlat, tlon = np.meshgrid(weights.target.lat, weights.target.lon, indexing="ij")
    g = weights.target
    ds = xr.Dataset(
        {
            "S": ("n_s", coo.data.astype(np.float64), {"long_name": "weight"}),
            "row": (
                "n_s",
                (coo.row + 1).astype(np.int32),
                {"long_name": "1-based index into the flattened target grid"},
            ),
            "col": (
                "n_s",
                (coo.col + 1).astype(np.int32),
                {"long_name": "1-based index into the flattened source grid (x fastest)"},
            ),
            "mask_a": ("n_a", weights.source_ocean.ravel().astype(np.int32), {"long_name": "source ocean points used"}),
            "mask_b": (
                "n_b",
                weights.target_valid.ravel().astype(np.int32),
                {"long_name": "target cells with a value"},
            ),
            "yc_b": ("n_b", tlat.ravel(), {"units": "degrees_north"}),
            "xc_b": ("n_b", tlon.ravel(), {"units": "degrees_east"}),
            "src_grid_dims": ("src_grid_rank", np.array([nx, ny], np.int32)),
            "dst_grid_dims": ("dst_grid_rank", np.array([nlon, nlat], np.int32)),
        },
        attrs={
            "title": WEIGHTS_FORMAT,
            "map_method": weights.method,
            "normalization": "rows sum to one over ocean sources",
            "source_fingerprint": weights.source_fingerprint,
            "max_distance_deg": weights.max_distance_deg,
            "target_lat_min": g.lat_min,
            "target_lat_max": g.lat_max,
            "target_lon_min": g.lon_min,
            "target_lon_max": g.lon_max,
            "target_resolution": g.resolution,
            **{f"stats_{k}": int(v) for k, v in weights.stats.items()},
        },
    )
    path = Path(path)
    with atomic_output(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
    return path


def load_weights(path: str | Path, *, expected_target: TargetGrid | None = None) -> RegridWeights:
    """Read weights written by :func:`save_weights`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, "regrid weights file does not exist")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
    except Exception as err:
        raise InputDataError(path, f"cannot read regrid weights ({type(err).__name__}: {err})") from None
    missing = [v for v in ("S", "row", "col", "mask_a", "src_grid_dims", "dst_grid_dims") if v not in ds]
    if missing or ds.attrs.get("title") != WEIGHTS_FORMAT:
        raise InputDataError(
            path, f"not a regrid weights file of this project (missing {missing or 'the format title'})"
        )
    target = TargetGrid(
        lat_min=float(ds.attrs["target_lat_min"]), lat_max=float(ds.attrs["target_lat_max"]),
        lon_min=float(ds.attrs["target_lon_min"]), lon_max=float(ds.attrs["target_lon_max"]),
        resolution=float(ds.attrs["target_resolution"]),
    )  # fmt: skip
    if expected_target is not None and target != expected_target:
        raise InputDataError(path, f"the weights map to {target}, but the configured target grid is {expected_target}")
    nx, ny = (int(v) for v in ds["src_grid_dims"].values)
    nlon, nlat = (int(v) for v in ds["dst_grid_dims"].values)
    if (nlat, nlon) != target.shape:
        raise InputDataError(path, f"dst_grid_dims {(nlat, nlon)} do not match the target grid {target.shape}")
    matrix = sparse.csr_matrix(
        (ds["S"].values, (ds["row"].values.astype(np.int64) - 1, ds["col"].values.astype(np.int64) - 1)),
        shape=(nlat * nlon, ny * nx),
    )
    stats = {k[6:]: int(v) for k, v in ds.attrs.items() if k.startswith("stats_")}
    return RegridWeights(
        matrix=matrix,
        source_shape=(ny, nx),
        source_fingerprint=str(ds.attrs["source_fingerprint"]),
        source_ocean=ds["mask_a"].values.astype(bool).reshape(ny, nx),
        target=target,
        method=str(ds.attrs["map_method"]),
        max_distance_deg=float(ds.attrs["max_distance_deg"]),
        stats=stats,
    )
