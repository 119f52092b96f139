"""Benchmark: applying stored regrid weights vs scipy.interpolate.griddata per time step.

Source: a global gx1-sized displaced-pole grid (384 × 320, land masked), 600 months of a smooth SST-like field
with noise; target: the default 41 × 161 tropical-Pacific grid. Rows:

* ours: bridging.regrid weights (bilinear, land-aware) computed once, then applied to all 600 months as one sparse
  product (the weights' time is reported separately: it is paid once per source grid and cached by the workflow);
* griddata: scipy.interpolate.griddata(method="linear") on the ocean points in (lon, lat), called per month, as a
  typical script does (it re-triangulates every call). Timed on a subset of months and scaled to 600 (printed);
* LinearNDInterpolator with one Delaunay triangulation reused for every month: the fair "precomputed" reference.

Also: the weights time for an ORCA025-sized source (1442 columns, ~1000 rows). Run: python bench/bench_regrid.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.interpolate import LinearNDInterpolator, griddata
from scipy.spatial import Delaunay

from bridging.fixtures import gx1_like_global_grid, orca_like_grid, pacific_land_mask
from bridging.grid import TargetGrid
from bridging.regrid import compute_weights, regrid_array


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=600)
    parser.add_argument(
        "--griddata-months", type=int, default=6, help="months actually timed for griddata (then scaled)"
    )
    parser.add_argument("--interp-months", type=int, default=60, help="months actually timed for LinearNDInterpolator")
    args = parser.parse_args()

    grid = gx1_like_global_grid()  # 384 × 320
    target = TargetGrid()
    rng = np.random.default_rng(0)
    t = np.arange(args.months)[:, None, None]
    base = 26 + 3 * np.cos(np.deg2rad(grid.lat) * 3) * np.cos(np.deg2rad(grid.lon - 160))
    fields = (
        base + 0.8 * np.sin(2 * np.pi * t / 12 + np.deg2rad(grid.lon)) + rng.normal(0, 0.1, (args.months, *grid.shape))
    ).astype(np.float32)
    fields[:, ~grid.ocean] = np.nan
    print(
        f"source {grid.shape[0]}×{grid.shape[1]} ({grid.ocean.sum()} ocean points), {args.months} months; target {target.shape}"
    )

    weights, t_weights = timed(compute_weights, grid.lat, grid.lon, grid.ocean, target, method="bilinear")
    ours, t_apply = timed(regrid_array, fields, weights)

    ocean = grid.ocean.ravel()
    points = np.stack([grid.lon.ravel()[ocean], grid.lat.ravel()[ocean]], axis=1)
    tlat, tlon = np.meshgrid(target.lat, target.lon, indexing="ij")
    flat = fields.reshape(args.months, -1)[:, ocean]
    n_gd = min(args.griddata_months, args.months)
    ref = np.empty((n_gd, *target.shape), np.float32)
    t0 = time.perf_counter()
    for k in range(n_gd):
        ref[k] = griddata(points, flat[k], (tlon, tlat), method="linear")
    t_griddata = (time.perf_counter() - t0) / n_gd * args.months

    n_li = min(args.interp_months, args.months)
    tri, t_tri = timed(Delaunay, points)
    t0 = time.perf_counter()
    for k in range(n_li):
        LinearNDInterpolator(tri, flat[k])(tlon, tlat)
    t_interp = t_tri + (time.perf_counter() - t0) / n_li * args.months

    # Accuracy against the noise-free field at target cells that are ocean in the land mask the grid was built with.
    truth = (
        26
        + 3 * np.cos(np.deg2rad(tlat) * 3) * np.cos(np.deg2rad(tlon - 160))
        + 0.8 * np.sin(2 * np.pi * np.arange(n_gd)[:, None, None] / 12 + np.deg2rad(tlon))
    )
    ocean_targets = np.broadcast_to(~pacific_land_mask(tlat, tlon), truth.shape)
    err_ours = np.abs(ours[:n_gd] - truth)[ocean_targets]
    err_ref = np.abs(ref - truth)[ocean_targets]

    orca = orca_like_grid(resolution=0.25, lat_range=(-78.0, 65.0), lon_range=(73.0, 433.0))
    _, t_orca = timed(compute_weights, orca.lat, orca.lon, orca.ocean, target, method="bilinear")

    rows = [
        ("ours: apply stored weights", t_apply, f"{args.months} months measured"),
        ("ours: compute weights (once per grid)", t_weights, "gx1-sized source"),
        ("ours: weights + apply", t_weights + t_apply, ""),
        ("scipy griddata per month", t_griddata, f"{n_gd} months measured, scaled ×{args.months / n_gd:g}"),
        ("scipy LinearNDInterpolator, one triangulation", t_interp, f"Delaunay {t_tri:.2f} s + {n_li} months scaled"),
        ("ours: compute weights, ORCA025-sized source", t_orca, f"{orca.shape[0]}×{orca.shape[1]} points"),
    ]
    print(f"\n{'method':48s} {'time [s]':>10s}  note")
    for name, seconds, note in rows:
        print(f"{name:48s} {seconds:10.3f}  {note}")
    ratio = t_griddata / t_apply
    print(
        f"\nspeed-up of applying stored weights over griddata per month: {ratio:,.0f}× (requirement ≥ 50×: {'met' if ratio >= 50 else 'NOT met'})"
    )
    print(f"speed-up of weights + apply over griddata per month:       {t_griddata / (t_weights + t_apply):,.0f}×")
    print(
        f"speed-up of applying stored weights over one-triangulation LinearNDInterpolator: {t_interp / t_apply:,.0f}×"
    )
    print(f"error vs the noise-free field at ocean targets (noise σ = 0.1 °C): ours max {np.nanmax(err_ours):.3f} mean "
          f"{np.nanmean(err_ours):.4f} °C, NaN {np.isnan(err_ours).sum()}; griddata max {np.nanmax(err_ref):.3f} mean "
          f"{np.nanmean(err_ref):.4f} °C, NaN {np.isnan(err_ref).sum()} (griddata is not land-aware: its triangles span land)")  # fmt: skip
    return 0 if ratio >= 50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
