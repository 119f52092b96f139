"""Benchmark of the diagnostics' kernels against reference implementations, in one run, plus the whole per-source
stage at the bridging model's size (which sets the diagnostics_source rule's resources).

    nice -n 10 .venv/bin/python bench/bench_diagnostics.py [--quick]

Rows (ours beside a reference; "max |diff|" is the largest absolute difference of the results):
* Niño box means of a (member, time, lat, lon) field: strip + weight tensordot vs xarray's weighted mean;
* block-bootstrap moments (1000 resamples): vectorised batches vs a per-resample loop with scipy.stats;
* KDE PDF on the common grid: chunked Gaussian sum vs scipy.stats.gaussian_kde with the same bandwidth;
* leading EOFs: ARPACK truncated SVD through a linear operator vs numpy's full SVD (explained fractions compared);
* residual std map: chunked float64 projection vs numpy.linalg.lstsq on the whole matrix;
* the whole gridded_source_diagnostics stage on a bridging-size store, timed with its peak resident memory
  (measured in a child process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import xarray as xr
from scipy import stats as scipy_stats

from bridging.diagnostics.indices import BOXES, NINO_INDICES, box_means
from bridging.diagnostics.spatial import FieldAnomalies, leading_eofs, observable_pcs, residual_std_map
from bridging.diagnostics.statistics import bootstrap_series_statistics, index_pdf, pdf_grid
from bridging.diagnostics.synthetic import ar1, synthetic_store


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def row(name, size, ours, ref, diff):
    print(f"| {name} | {size} | {ours:.3f} | {ref:.3f} | {ref / ours:.1f}× | {diff:.1e} |", flush=True)


def bench_box_means(store: xr.Dataset):
    field = store["sst"]

    def reference():
        out = {}
        for name in NINO_INDICES:
            b = BOXES[name]
            sel = field.sel(lat=slice(b.lat_min, b.lat_max), lon=slice(b.lon_min, b.lon_max))
            weights = np.cos(np.deg2rad(sel["lat"])) * xr.ones_like(sel["lon"])
            # Land (NaN) cells have zero weight in xarray's weighted mean, as in ours.
            out[name] = sel.weighted(weights).mean(("lat", "lon")).values
        return out

    t_ours, ours = timed(lambda: box_means(field, [BOXES[n] for n in NINO_INDICES]), 3)
    t_ref, ref = timed(reference, 3)
    diff = max(float(np.max(np.abs(ours[n].values - ref[n]))) for n in NINO_INDICES)
    row("Niño box means", "×".join(map(str, field.shape)), t_ours, t_ref, diff)


def bench_bootstrap(n_member: int, n_time: int, samples: int):
    rng = np.random.default_rng(0)
    x = ar1(n_time, 0.9, rng, (n_member,))
    months = np.arange(n_time) % 12 + 1

    def reference():
        # The same resample positions (same generator and seed), one resample at a time: scipy's estimators for the
        # moments and a per-month numpy variance, the same quantities as ours.
        from bridging.diagnostics.statistics import block_bootstrap_positions

        pos = block_bootstrap_positions(n_time, 24, samples, np.random.default_rng(1))
        reps = {"std": [], "skewness": [], "kurtosis": [], "monthly": []}
        for p in pos:
            sample = x[:, p]
            flat = sample.ravel()
            reps["std"].append(np.std(flat))
            reps["skewness"].append(scipy_stats.skew(flat))
            reps["kurtosis"].append(scipy_stats.kurtosis(flat, fisher=False))
            reps["monthly"].append([np.var(sample[:, months == m]) for m in range(1, 13)])
        return {k: np.quantile(np.array(v), [0.025, 0.975], axis=0) for k, v in reps.items()}

    t_ours, ours = timed(lambda: bootstrap_series_statistics(x, months, block=24, n_samples=samples, seed=1))
    t_ref, ref = timed(reference)
    diff = max(
        *(
            abs(ours[k]["ci_low"] - ref[k][0]) + abs(ours[k]["ci_high"] - ref[k][1])
            for k in ("std", "skewness", "kurtosis")
        ),
        float(np.max(np.abs(np.array(ours["monthly_variance"]["ci_high"]) - ref["monthly"][1]))),
    )
    row(f"block bootstrap, {samples} resamples", f"{n_member}×{n_time}", t_ours, t_ref, diff)


def bench_kde(n: int):
    x = np.random.default_rng(2).gamma(4.0, size=n) - 4.0
    grid = pdf_grid(6.0, 601)
    t_ours, (ours, h) = timed(lambda: index_pdf(x, grid), 3)
    t_ref, ref = timed(lambda: scipy_stats.gaussian_kde(x, bw_method=h / np.std(x, ddof=1))(grid), 3)
    row("KDE PDF (601 points)", f"{n}", t_ours, t_ref, float(np.max(np.abs(ours - ref))))


def bench_eofs(anom: FieldAnomalies, modes: int):
    def reference():
        u, s, _ = np.linalg.svd(anom.data.astype(np.float64) * np.sqrt(anom.coslat), full_matrices=False)
        return s[:modes] ** 2 / np.sum(s**2)

    t_ours, (_, frac, _) = timed(lambda: leading_eofs(anom, modes))
    t_ref, ref = timed(reference)
    row(
        f"EOFs ({modes} modes)",
        f"{anom.data.shape[0]}×{anom.data.shape[1]}",
        t_ours,
        t_ref,
        float(np.max(np.abs(frac - ref))),
    )


def bench_residual(anom: FieldAnomalies, modes: int):
    rng = np.random.default_rng(3)
    y = anom.data[:, rng.choice(anom.data.shape[1], 60, replace=False)].astype(np.float64)
    pcs, _ = observable_pcs(y, modes)

    def reference():
        x = anom.data.astype(np.float64)
        coef, *_ = np.linalg.lstsq(pcs, x, rcond=None)
        return anom.to_map(np.sqrt(np.mean((x - pcs @ coef) ** 2, axis=0)))

    t_ours, ours = timed(lambda: residual_std_map(anom, pcs))
    t_ref, ref = timed(reference)
    row(
        f"residual std map ({modes} PCs)",
        f"{anom.data.shape[0]}×{anom.data.shape[1]}",
        t_ours,
        t_ref,
        float(np.nanmax(np.abs(ours - ref))),
    )


# Peak memory from /proc/self/status VmHWM: unlike getrusage's ru_maxrss it is not inherited across exec, so the
# child reports its own peak, not the parent's.
CHILD = """
import json, sys, time
from bridging.diagnostics.run import gridded_source_diagnostics
t = time.perf_counter()
gridded_source_diagnostics(sys.argv[1], statistics=sys.argv[2] + '/s.json', indices=sys.argv[2] + '/i.nc', maps=sys.argv[2] + '/m.nc',
                           diagnostics={'bootstrap_samples': int(sys.argv[3])}, layout=sys.argv[4])
hwm = next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM'))
print(json.dumps({'seconds': time.perf_counter() - t, 'peak_mb': hwm / 1024}))
"""


def bench_stage(n_members: int, n_years: int, samples: int):
    from bridging.atomic import write_zarr_atomic
    from bridging.diagnostics.synthetic import synthetic_layout_store
    from bridging.stores import write_store

    with tempfile.TemporaryDirectory() as tmp:
        ds = synthetic_store(n_years=n_years, n_members=n_members, resolution=1.0, seed=0, source_kind="bridging")
        write_store(ds, f"{tmp}/store.zarr")
        write_zarr_atomic(synthetic_layout_store(ds["lat"].values, ds["lon"].values, stride=3), f"{tmp}/layout.zarr")
        size_mb = ds["sst"].nbytes * 2 / 2**20
        del ds
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, f"{tmp}/store.zarr", tmp, str(samples), f"{tmp}/layout.zarr"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"\nWhole per-source stage, {n_members} members × {n_years} years on 41×161 ({samples} bootstrap resamples): "
        f"{result['seconds']:.1f} s, peak resident memory {result['peak_mb']:.0f} MB (the two float32 fields: {size_mb:.0f} MB)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args()
    members, years = (2, 50) if args.quick else (5, 300)
    print("| operation | size | ours (s) | reference (s) | speed-up | max abs diff |")
    print("|---|---|---|---|---|---|")
    store = synthetic_store(n_years=years, n_members=members, resolution=1.0, seed=0, source_kind="bridging")
    bench_box_means(store)
    bench_bootstrap(members, 12 * years, 200 if args.quick else 1000)
    bench_kde(12 * years * members)
    from bridging.diagnostics.indices import normalise_grid

    field = normalise_grid(store, "sst")
    eof_store = field.isel(member=0) if "member" in field.dims else field
    anom = FieldAnomalies(eof_store, store["ocean_mask"].values.astype(bool))
    bench_eofs(anom, 3)
    bench_residual(anom, 8)
    del store, field, anom
    bench_stage(members, years, 200 if args.quick else 1000)


if __name__ == "__main__":
    main()
