"""CUDA check of the latent EnKF: correctness against CPU float64 and timings, for a lent GPU machine.

    python bench/gpu_check.py          # without CUDA: prints "no CUDA device" and exits 0
    python bench/gpu_check.py --dry-run-on-cpu   # the same steps on the CPU, short: checks the script itself

1. Analysis at the paper's size (n_l = 501, n_o = 112, N = 50, batch 16), stochastic (identical injected
   perturbations) and ETKF (Newton–Schulz square root on CUDA vs eigh on the CPU), with and without localization:
   CUDA float64 and float32 against CPU float64, as the maximum error relative to the largest increment.
2. A failed Cholesky factorisation on CUDA fills the experiment with NaN (no host sync) instead of raising.
3. Analysis timings on CUDA (CUDA events) for batches of 1, 16 and 256 experiments.
4. A 600-month cycle (stand-in LSTM of the default size + noise + localized analysis, bench_enkf.full_run) on CUDA at
   batch 1, 16 and 128: seconds per 6000-month experiment; and a deterministic 240-month run (localized ETKF, no
   model noise, 2 experiments) on CUDA float64 and float32 against the same run on the CPU in float64.

TF32 is switched off so float32 means float32. Exit status 1 if any correctness check fails.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

TOLERANCE = {torch.float64: 1e-9, torch.float32: 2e-4}


def _timer(dev):
    """Milliseconds of a callable run ``reps`` times: CUDA events on the GPU, wall clock on the CPU."""

    def run(fn, reps):
        if dev.type == "cuda":
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(reps):
                fn()
            stop.record()
            torch.cuda.synchronize()
            return start.elapsed_time(stop) / reps
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return 1e3 * (time.perf_counter() - t0) / reps

    return run


def main(argv: list[str]) -> int:
    dry_run = "--dry-run-on-cpu" in argv
    if not (torch.cuda.is_available() or dry_run):
        print("no CUDA device")
        return 0
    from bench_enkf import FULL_RUN_MONTHS, N_MEMBERS, N_OBS, analysis_problem, full_run

    from bridging.da.analysis import analysis, draw_obs_perturbations

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cpu" if dry_run else "cuda")
    timed = _timer(dev)
    months = 24 if dry_run else 600
    deterministic_months = 24 if dry_run else 240  # bounded by the CPU float64 reference run
    batches = (1, 4) if dry_run else (1, 16, 256)
    run_batches = (1, 4) if dry_run else (1, 16, 128)
    name = "CPU dry run" if dry_run else torch.cuda.get_device_name(0)
    print(f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}\n")
    failures: list[str] = []

    # 1. correctness of one analysis
    B = 16
    E, y, R, taper, _ = analysis_problem(B, torch.float64)
    eps = draw_obs_perturbations(
        (B, N_MEMBERS, N_OBS), R.expand(B, N_OBS), torch.Generator().manual_seed(1), dtype=torch.float64, device="cpu"
    )
    print("Analysis, CUDA vs CPU float64 (max error / max increment)")
    for method in ("stochastic", "etkf"):
        for localized in (False, True):
            tap = taper if localized else None
            pert = eps if method == "stochastic" else None
            ref = analysis(E, y, R, method=method, inflation=1.09, taper=tap, obs_perturbations=pert)
            scale = float((ref - E).abs().max())
            for dtype in (torch.float64, torch.float32):
                to = lambda t: None if t is None else t.to(dev, dtype)  # noqa: E731
                out = analysis(
                    to(E), to(y), to(R), method=method, inflation=1.09, taper=to(tap), obs_perturbations=to(pert)
                )
                err = float((out.double().cpu() - ref).abs().max()) / scale
                ok = err < TOLERANCE[dtype]
                label = f"{method:10s} {'localized' if localized else 'global':9s} {str(dtype)[6:]:7s}"
                print(f"  {label} {err:9.2e} {'ok' if ok else 'FAIL'}")
                if not ok:
                    failures.append(f"analysis {label}: {err:.2e}")

    if not dry_run:  # on the CPU the same failure raises instead (tests/test_da_analysis.py)
        bad = analysis(E.to(dev), y.to(dev), (-R).to(dev), obs_perturbations=eps.to(dev))
        if not bool(torch.isnan(bad).all()):
            failures.append("a failed Cholesky factorisation on CUDA did not fill the result with NaN")
        print(f"  failed Cholesky on CUDA → NaN fill: {'ok' if bool(torch.isnan(bad).all()) else 'FAIL'}")
    print()

    # 3. analysis timings
    print("Analysis timings on CUDA, float32 (ms per call, µs per experiment)")
    for method, localized in (("stochastic", True), ("stochastic", False), ("etkf", True), ("etkf", False)):
        for batch in batches:
            Eb, yb, Rb, tb, _ = analysis_problem(batch, torch.float32)
            Eb, yb, Rb, tb = Eb.to(dev), yb.to(dev), Rb.to(dev), tb.to(dev)
            gen = torch.Generator(device=dev).manual_seed(0)
            kw = dict(
                method=method,
                inflation=1.09,
                taper=tb if localized else None,
                generator=gen if method == "stochastic" else None,
            )
            timed(lambda: analysis(Eb, yb, Rb, **kw), 3)  # warm-up
            ms = timed(lambda: analysis(Eb, yb, Rb, **kw), 30)
            print(
                f"  {method:10s} {'localized' if localized else 'global':9s} batch {batch:4d}: {ms:8.3f} ms, "
                f"{1e3 * ms / batch:9.2f} µs/experiment"
            )
    print()

    # 4. cycles
    print(
        f"Full cycle on {dev.type}, float32, {months} months (stand-in LSTM 613→256→613, N = 50, localized stochastic)"
    )
    for batch in run_batches:
        seconds, _ = full_run(batch, months, 1, device=dev.type)
        print(
            f"  batch {batch:4d}: {1e3 * seconds / months:7.2f} ms/cycle, "
            f"{seconds / months / batch * FULL_RUN_MONTHS:7.2f} s per {FULL_RUN_MONTHS}-month experiment"
        )
    print()
    print(
        f"Deterministic {deterministic_months}-month run (ETKF, no model noise, 2 experiments): {dev.type} vs CPU float64"
    )
    threads = max(1, min(8, os.cpu_count() or 1))
    t0 = time.perf_counter()
    _, ref_means, ref_final = full_run(
        2,
        deterministic_months,
        threads,
        dtype=torch.float64,
        method="etkf",
        model_noise_scale=0.0,
        inflation=torch.tensor([1.0, 1.09]),
        keep_means=True,
    )
    print(f"  CPU float64 reference: {time.perf_counter() - t0:.1f} s with {threads} threads")
    temporal_std = ref_means.std(0).mean()
    member_spread = ref_final.std(1).mean()
    for dtype in (torch.float64, torch.float32):
        _, means, final = full_run(
            2,
            deterministic_months,
            1,
            dtype=dtype,
            device=dev.type,
            method="etkf",
            model_noise_scale=0.0,
            inflation=torch.tensor([1.0, 1.09]),
            keep_means=True,
        )
        # The stored series is float32 (so a float64 run agrees to its rounding); the final members are compared at
        # full precision, against the ensemble spread.
        err_series = float(np.abs(means - ref_means).max() / temporal_std)
        err_final = float(np.abs(final - ref_final).max() / member_spread)
        tol = 1e-8 if dtype == torch.float64 else 1e-3
        ok = bool(np.isfinite(final).all()) and err_final < tol and err_series < max(tol, 1e-6)
        print(
            f"  {dev.type} {str(dtype)[6:]:7s}: final members max |Δ| / spread = {err_final:.2e}, stored monthly "
            f"means max |Δ| / temporal std = {err_series:.2e} {'ok' if ok else 'FAIL'}"
        )
        if not ok:
            failures.append(
                f"{deterministic_months}-month run on {dev.type} {dtype}: {err_final:.2e} / {err_series:.2e}"
            )

    print()
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"all {'dry-run' if dry_run else 'CUDA'} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
