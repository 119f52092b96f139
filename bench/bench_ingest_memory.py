"""Benchmark: peak memory and time of ingesting 165 years of monthly thetao (60 levels, gx1-like grid).

The full gx1 record (1980 months × 60 × 384 × 320 float32 ≈ 58 GB) does not fit this machine's disk budget, so the
files are a regional gx1-like subset (30°S–30°N, 100–300°E at gx1's 1.125° zonal spacing with its equatorial
refinement: 88 × 178 columns, 1/7.8 of gx1's columns) in the real CESM2 layout (lev in cm, noleap, one file for
1850–2014, zlib level 1), with smooth tanh profiles plus noise. Peak memory depends on the chunk size
(``ingest.read_chunk_mb``) and the number of threads, not on the record length or the grid size (a gx1 month of
thetao, 29.5 MB, fits one chunk), so the measured peak carries over to the full grid; time scales with the bytes
read and is extrapolated to gx1 from the measured throughput (printed as such).

Rows (each in its own subprocess; peak RSS = that process's maximum resident set size):

* ours: the real ingestion (catalog → readers → thermocline depth → regrid → store), 165 years and 10 years;
* reference: the eager approach (``open_dataset(...).thetao.values`` → D20 → regrid), measured on 5 and 10 years
  and extrapolated linearly to 165 years (running it on 165 years needs more than this subset's 7.4 GB of thetao,
  58 GB for gx1).

Run: python bench/bench_ingest_memory.py [--workdir /tmp/enso_bridge_bench_ingest] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FIRST_YEAR, N_YEARS, N_LEVELS = 1850, 165, 60


def pop_like_depths(n: int = N_LEVELS) -> np.ndarray:
    """Level centres (m): 10 m layers down to 150 m, then thicker layers to ~5400 m, as in POP's 60 levels."""
    thickness = np.concatenate([np.full(15, 10.0), np.geomspace(12.0, 250.0, n - 15)])
    edges = np.concatenate([[0.0], np.cumsum(thickness)])
    return 0.5 * (edges[1:] + edges[:-1])


def generate(workdir: Path, years: int) -> None:
    from bridging.fixtures import consecutive_months, gx1_like_grid, write_cesm2_omon

    grid = gx1_like_grid(resolution=1.125, lat_range=(-30.0, 30.0), lon_range=(100.0, 300.0))
    months = consecutive_months(FIRST_YEAR, 12 * years)
    depth = pop_like_depths()
    counter = np.arange(months.shape[0])
    rng = np.random.default_rng(0)

    def sst(sl):
        t = counter[sl][:, None, None]
        return (
            26
            + 3 * np.cos(np.deg2rad(grid.lat) * 3) * np.cos(np.deg2rad(grid.lon - 160))
            + np.sin(2 * np.pi * t / 12 + np.deg2rad(grid.lon))
        )

    def thetao(sl):
        s = sst(sl)
        d20 = 120 + 50 * np.cos(np.deg2rad(grid.lon - 150)) + 10 * np.sin(2 * np.pi * counter[sl][:, None, None] / 12)
        deep, width = 4.0, 60.0
        centre = d20 + width * np.arctanh(np.clip(1 - 2 * (20 - deep) / (s - deep), -0.999, 0.999))
        z = depth[None, :, None, None]
        theta = deep + (s[:, None] - deep) * 0.5 * (1 - np.tanh((z - centre[:, None]) / width))
        return theta + rng.normal(0, 0.02, theta.shape)

    print(
        f"writing {years} years of CESM2-layout tos + thetao ({N_LEVELS} levels, grid {grid.shape}) to {workdir} …",
        flush=True,
    )
    t0 = time.perf_counter()
    write_cesm2_omon(
        workdir / "data",
        grid=grid,
        months=months,
        tos=sst,
        thetao=thetao,
        depth=depth,
        source_id="BENCH-CESM2",
        slab_months=12,
    )
    size = sum(p.stat().st_size for p in (workdir / "data").rglob("*.nc"))
    print(f"  done in {time.perf_counter() - t0:.0f} s, {size / 2**30:.2f} GiB on disk "
          f"({12 * years * N_LEVELS * grid.lat.size * 4 / 2**30:.2f} GiB of float32 thetao uncompressed)", flush=True)  # fmt: skip
    (workdir / "generated.json").write_text(json.dumps({"years": years, "grid": list(grid.shape)}))


def run_ours(workdir: Path, years: int, threads: int, chunk_mb: float) -> None:
    from bridging.ingest import build_weights, ingest_source
    from bridging.io.catalog import build_catalog

    data = {
        "operational": [{"name": "BENCH", "source_id": "BENCH-CESM2", "years": [FIRST_YEAR, FIRST_YEAR + years - 1]}]
    }
    catalog, _ = build_catalog([workdir / "data"], workdir / f"catalog_{years}.json")
    weights = build_weights(workdir / "weights.nc", catalog=catalog, source="BENCH", data=data, grid={}, regrid_cfg={})
    ingest_source(workdir / f"store_{years}.zarr", catalog=catalog, weights=weights, source="BENCH", data=data, grid={},
                  ingest={"scheduler": "threads", "read_chunk_mb": chunk_mb}, threads=threads)  # fmt: skip


def run_eager(workdir: Path, years: int) -> None:
    import xarray as xr

    from bridging.grid import TargetGrid
    from bridging.regrid import compute_weights, regrid_array
    from bridging.thermocline import isotherm_depth

    thetao_file = next((workdir / "data").rglob("thetao_*.nc"))
    ds = xr.open_dataset(thetao_file, decode_times=False)
    theta = ds["thetao"].isel(time=slice(0, 12 * years)).values  # the whole record in memory
    d20 = isotherm_depth(theta, ds["lev"].values / 100.0, axis=1)
    ocean = np.isfinite(theta[0, 0])
    weights = compute_weights(ds["lat"].values, ds["lon"].values, ocean, TargetGrid())
    regrid_array(d20, weights)


def measure(mode: str, workdir: Path, years: int, threads: int, chunk_mb: float) -> tuple[float, float]:
    """(wall seconds, peak RSS in GiB) of one run in a fresh subprocess (its own rusage, from wait4)."""
    cmd = [sys.executable, __file__, "--child", mode, "--workdir", str(workdir), "--years", str(years),
           "--threads", str(threads), "--chunk-mb", str(chunk_mb)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed with exit code {proc.returncode}")
    return wall, usage.ru_maxrss / 2**20  # KiB → GiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/enso_bridge_bench_ingest")
    parser.add_argument("--years", type=int, default=N_YEARS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk-mb", type=float, default=128.0)
    parser.add_argument("--reference-years", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the generated files (several GB)")
    parser.add_argument("--child", choices=("ours", "eager"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = Path(args.workdir)

    if args.child == "ours":
        run_ours(workdir, args.years, args.threads, args.chunk_mb)
        return 0
    if args.child == "eager":
        run_eager(workdir, args.years)
        return 0

    marker = workdir / "generated.json"
    if not marker.is_file() or json.loads(marker.read_text())["years"] != args.years:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        generate(workdir, args.years)
    grid = json.loads(marker.read_text())["grid"]
    columns = grid[0] * grid[1]
    thetao_gib = lambda years: 12 * years * N_LEVELS * columns * 4 / 2**30  # noqa: E731

    results = []
    half = max(1, args.reference_years // 2)
    for label, mode, years in (
        (f"ours, {args.reference_years} years", "ours", args.reference_years),
        (f"ours, {args.years} years", "ours", args.years),
        (f"eager reference, {half} years", "eager", half),
        (f"eager reference, {args.reference_years} years", "eager", args.reference_years),
    ):
        wall, peak = measure(mode, workdir, years, args.threads, args.chunk_mb)
        results.append((label, years, wall, peak))
        print(f"  {label}: {wall:.0f} s, peak RSS {peak:.2f} GiB", flush=True)

    # The eager peak grows linearly with the record: extrapolate from its two measured sizes.
    (_, y1, w1, p1), (_, y2, w2, p2) = results[2], results[3]
    per_year = (p2 - p1) / (y2 - y1)
    eager_peak_full = p2 + per_year * (args.years - y2)
    eager_wall_full = w2 + (w2 - w1) / (y2 - y1) * (args.years - y2)
    print(f"\nthetao: {args.years} years × {N_LEVELS} levels × {grid[0]}×{grid[1]} columns = {thetao_gib(args.years):.2f} GiB float32; "
          f"threads {args.threads}, read_chunk_mb {args.chunk_mb:g}")  # fmt: skip
    print(f"{'run':34s} {'years':>5s} {'wall [s]':>9s} {'peak RSS [GiB]':>15s} {'MB/s thetao':>12s}")
    for label, years, wall, peak in results:
        print(f"{label:34s} {years:5d} {wall:9.0f} {peak:15.2f} {thetao_gib(years) * 1024 / wall:12.0f}")
    print(f"{'eager reference, extrapolated':34s} {args.years:5d} {eager_wall_full:9.0f} {eager_peak_full:15.2f}  "
          f"(linear in years: {per_year * 1024:.0f} MiB per year)")  # fmt: skip
    full_gx1 = 12 * args.years * N_LEVELS * 384 * 320 * 4 / 2**30
    _, _, wall_full, peak_full = results[1]
    print(f"\nfull gx1 (384×320, {full_gx1:.0f} GiB of thetao): estimated {wall_full * full_gx1 / thetao_gib(args.years) / 60:.0f} min "
          f"at the measured throughput; peak memory is set by the chunks, measured {peak_full:.2f} GiB (requirement < 4 GB: "
          f"{'met' if peak_full * 2**30 < 4e9 else 'NOT met'})")  # fmt: skip
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if peak_full * 2**30 < 4e9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
