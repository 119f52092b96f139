"""Benchmark: ingesting the reanalysis at ORAS5's real size through the catalog, as the workflow does.

ORAS5 comes as one file per variable and month on the ORCA025 grid (1021 × 1442 points, ``nav_lat``/``nav_lon``).
This writes 43 years (1981–2023) of monthly ``sosstsst`` and ``so20chgt`` files at that size in the real ORAS5
layout (``bridging.fixtures.write_oras5_monthly`` on ``orca025_like_global_grid``: 1032 files, land as the 1e20
fill, zlib level 1, smooth fields plus noise so the data compress as real float32 fields do), then runs, each in its
own subprocess (peak RSS = that process's maximum resident set size, from ``wait4``):

* **ours**: catalog scan → regrid weights (``build_weights``) → ``ingest_source`` (readers with the per-month
  plausibility checks, regridding, store) with the ``threads`` scheduler, as the ingest rule runs it;
* **ours, checks off**: the same with the plausibility checks replaced by a no-op, to show what they cost;
* **reference**: the floor of the same work without the library's reader: every file read with netCDF4, the 1e20
  fill masked, and the same regrid weights applied month by month (no checks, no store).

Target (issue 13): at most 15 minutes and 4 GB on a 2-core machine. The load average is printed before and after:
another job on the cores stretches the times.

Run: python bench/bench_ingest_orca025.py [--workdir /tmp/enso_bridge_bench_orca025] [--years 43] [--keep]
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

FIRST_YEAR = 1981


def generate(workdir: Path, years: int) -> None:
    from bridging.fixtures import consecutive_months, orca025_like_global_grid, write_oras5_monthly

    grid = orca025_like_global_grid()
    months = consecutive_months(FIRST_YEAR, 12 * years)
    lat, lon = grid.lat, grid.lon
    coslat2 = np.cos(np.deg2rad(lat)) ** 2
    enso_pattern = np.exp(-((lat / 8.0) ** 2) - ((lon - 235.0) / 45.0) ** 2)
    seasonal = np.sin(np.deg2rad(lat))
    d20_mean = 110.0 + 50.0 * np.cos(np.deg2rad(lon - 150.0)) + 40.0 * (lat / 20.0) ** 2
    t = np.arange(months.shape[0])
    enso = 1.5 * np.sin(2 * np.pi * t / 45.0) + 0.5 * np.sin(2 * np.pi * t / 29.0)
    rng = np.random.default_rng(0)

    def sst_of(k):
        return -1.5 + 30.5 * coslat2 + 2.0 * seasonal * np.sin(2 * np.pi * t[k] / 12.0) + enso[k] * enso_pattern

    def sosstsst(sl):
        k = sl.start
        return (sst_of(k) + rng.normal(0.0, 0.05, lat.shape))[None]

    def so20chgt(sl):
        k = sl.start
        d20 = d20_mean - 30.0 * enso[k] * enso_pattern + rng.normal(0.0, 1.0, lat.shape)
        return np.where((sst_of(k) > 20.0) & (np.abs(lat) < 35.0), d20, np.nan)[None]

    print(
        f"writing {years} years of ORAS5-layout sosstsst + so20chgt on a {grid.shape} grid to {workdir} …", flush=True
    )
    t0 = time.perf_counter()
    write_oras5_monthly(
        workdir / "data", grid=grid, months=months, sosstsst=sosstsst, so20chgt=so20chgt, coordinate_complevel=1
    )
    files = list((workdir / "data").rglob("*.nc"))
    size = sum(p.stat().st_size for p in files)
    raw = 2 * months.shape[0] * lat.size * 4 / 2**30
    print(f"  done in {time.perf_counter() - t0:.0f} s: {len(files)} files, {size / 2**30:.2f} GiB on disk "
          f"({raw:.2f} GiB of float32 fields uncompressed)", flush=True)  # fmt: skip
    (workdir / "generated.json").write_text(json.dumps({"years": years, "grid": list(grid.shape), "files": len(files)}))


def _data(years: int) -> dict:
    return {
        "catalog_roots": ["unused"],
        "operational": [{"name": "UNUSED", "source_id": "UNUSED"}],
        "reanalysis": {"name": "ORAS5", "years": [FIRST_YEAR, FIRST_YEAR + years - 1]},
    }


def run_ours(workdir: Path, years: int, threads: int, checks: bool) -> None:
    from bridging.ingest import build_weights, ingest_source
    from bridging.io.catalog import build_catalog

    if not checks:
        import bridging.io.plausibility as plausibility

        plausibility.check_block = lambda *args, **kwargs: None
    stages = {}
    t0 = time.perf_counter()
    catalog, _ = build_catalog([workdir / "data"], workdir / "catalog.json")
    stages["catalog"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    weights = build_weights(
        workdir / "weights.nc", catalog=catalog, source="ORAS5", data=_data(years), grid={}, regrid_cfg={}
    )
    stages["weights"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ingest_source(workdir / "ORAS5.zarr", catalog=catalog, weights=weights, source="ORAS5", data=_data(years), grid={},
                  ingest={"scheduler": "threads"}, threads=threads)  # fmt: skip
    stages["ingest"] = time.perf_counter() - t0
    (workdir / f"stages_{'checks' if checks else 'nochecks'}.json").write_text(json.dumps(stages))


def run_reference(workdir: Path, years: int) -> None:
    import netCDF4

    from bridging.regrid import load_weights, regrid_array

    weights = load_weights(workdir / "weights.nc")
    out = {}
    for variable in ("sosstsst", "so20chgt"):
        files = sorted((workdir / "data" / "ORAS5" / variable).glob("*.nc"))[: 12 * years]
        fields = []
        for path in files:
            with netCDF4.Dataset(path) as nc:
                nc.set_auto_mask(False)
                slab = np.asarray(nc[variable][0], dtype=np.float32)
            slab[np.abs(slab) >= 1e19] = np.nan
            fields.append(regrid_array(slab[None], weights)[0])
        out[variable] = np.stack(fields)
    assert all(np.isfinite(v).any() for v in out.values())


def measure(mode: str, workdir: Path, years: int, threads: int) -> tuple[float, float]:
    """(wall seconds, peak RSS in GiB) of one run in a fresh subprocess."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--workdir",
        str(workdir),
        "--years",
        str(years),
        "--threads",
        str(threads),
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{mode} run failed with exit code {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_maxrss / 2**20  # KiB → GiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/enso_bridge_bench_orca025")
    parser.add_argument("--years", type=int, default=43)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", default="ours,nochecks,reference", help="comma-separated rows to run")
    parser.add_argument("--keep", action="store_true", help="keep the generated files (about 7 GB)")
    parser.add_argument("--child", choices=("ours", "nochecks", "reference"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = Path(args.workdir)

    if args.child in ("ours", "nochecks"):
        run_ours(workdir, args.years, args.threads, checks=args.child == "ours")
        return 0
    if args.child == "reference":
        run_reference(workdir, args.years)
        return 0

    marker = workdir / "generated.json"
    if not marker.is_file() or json.loads(marker.read_text())["years"] != args.years:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        generate(workdir, args.years)
    info = json.loads(marker.read_text())

    labels = {"ours": "ours (catalog → weights → store)", "nochecks": "ours, plausibility checks off",
              "reference": "reference: netCDF4 + regrid only"}  # fmt: skip
    rows = []
    for mode in args.modes.split(","):
        load_before = os.getloadavg()[0]
        wall, peak = measure(mode, workdir, args.years, args.threads)
        load_after = os.getloadavg()[0]
        stages = {}
        stage_file = workdir / f"stages_{'checks' if mode == 'ours' else 'nochecks'}.json"
        if mode != "reference" and stage_file.is_file():
            stages = json.loads(stage_file.read_text())
        rows.append((labels[mode], wall, peak, load_before, load_after, stages))
        print(
            f"  {labels[mode]}: {wall:.0f} s, peak RSS {peak:.2f} GiB (load {load_before:.1f} → {load_after:.1f})",
            flush=True,
        )

    print(f"\n{info['files']} files, {args.years} years × 12 months × 2 variables on {info['grid'][0]} × {info['grid'][1]}; "
          f"threads {args.threads}, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'run':36s} {'wall [s]':>9s} {'wall [min]':>10s} {'peak RSS [GiB]':>15s} {'load avg':>12s}  stages [s]")
    for label, wall, peak, l0, l1, stages in rows:
        st = ", ".join(f"{k} {v:.0f}" for k, v in stages.items())
        print(f"{label:36s} {wall:9.0f} {wall / 60:10.1f} {peak:15.2f} {l0:5.1f}→{l1:<5.1f}  {st}")
    ours = next((r for r in rows if r[0] == labels["ours"]), None)
    ok = True
    if ours is not None:
        ok = ours[1] <= 15 * 60 and ours[2] * 2**30 <= 4e9
        print(
            f"\ntarget ≤ 15 min and ≤ 4 GB: {'met' if ok else 'NOT met'} ({ours[1] / 60:.1f} min, {ours[2] * 2**30 / 1e9:.2f} GB)"
        )
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
