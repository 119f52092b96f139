"""Benchmark of the latent EnKF: our batched torch analysis beside DAPPER's ``EnKF_analysis``, and the full cycle.

    nice -n 10 .venv/bin/python bench/bench_enkf.py [--months 240] [--threads 1 2] [--quick]

One table per section, all numbers from this run (timings on a shared 2-vCPU machine vary by about ±30 % between runs):

* GEMM ceiling: torch float32 2048³ matrix product, the FLOP rate this machine reaches at 1 and 2 threads;
* analysis at the paper's size (n_l = 501, n_o = 112, N = 50), float32, a batch of 16 experiments, with the default
  localization (Gaspari–Cohn taper on the m × m observation covariance, increments projected onto the ensemble span:
  no m × n product) and without: milliseconds per analysis (per experiment), GFLOP/s and fraction of the GEMM
  ceiling (exact FLOP counts of the stochastic forms), beside DAPPER
  1.7.1 ``EnKF_analysis`` ('PertObs' and 'Sqrt', NumPy float64, no localization: DAPPER's EnKF has none) on the same
  sizes. DAPPER caps every thread pool at one thread when imported, so it is timed in a child process (and its
  2-thread rows re-raise the cap with threadpoolctl);
* full cycle (``bridging.da.cycle.run_cycles``: LSTM forecast step carrying (h, c), model noise, localized analysis,
  statistics, one host copy per block), with ``bridging.models.forecast.LSTMForecaster`` at the configured default
  size (n_state = 613, hidden 256, 1 layer; random weights), N = 50, at batch 1 and 16: seconds per 6000-month
  experiment, extrapolated from ``--months`` cycled months (``--months 6000`` runs it in full).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from bridging.da.analysis import analysis
from bridging.da.cycle import CycleSetup, FilterState, run_cycles
from bridging.da.localization import taper_from_settings
from bridging.settings import AutoencoderSection, ForecastSection, LocalizationSection

N_LATENT = AutoencoderSection().latent_dim  # 501
N_OBS = 112
N_MEMBERS = 50
N_EXPERIMENTS = 16
FULL_RUN_MONTHS = 6000


def stochastic_flops(N: int, n: int, m: int, localized: bool) -> float:
    """Floating-point operations of one stochastic analysis as implemented (multiply-add = 2)."""
    if localized:
        # Yᵀ Y, Cholesky of S̃, triangular solve of [D; Y R], D Yᵀ and (D L⁻ᵀ)(Y R L⁻ᵀ)ᵀ, Y Yᵀ, N×N Cholesky of
        # Y Yᵀ + μ 1 1ᵀ/N and two triangular solves (the default CPU projection), M A
        return 2 * N * m * m + m**3 / 3 + 2 * N * m * m + 6 * N * N * m + N**3 / 3 + 2 * N**3 + 2 * N * N * n
    if m > N:  # Woodbury ensemble space: Y R⁻¹ Yᵀ, D R⁻¹ Yᵀ, N×N Cholesky and solves, T A
        return 4 * N * N * m + N**3 / 3 + 2 * N**3 + 2 * N * N * n
    return 2 * N * m * m + m**3 / 3 + 2 * m * m * N + 2 * N * N * m + 2 * N * N * n


def dapper_pertobs_flops(N: int, n: int, m: int) -> float:
    """DAPPER 'PertObs': YᵀY, LU solve, KG = Aᵀ·YC, HK = Yᵀ·YC, KG·Dᵀ."""
    return 2 * N * m * m + 2 * m**3 / 3 + 2 * m * m * N + 2 * N * n * m + 2 * N * m * m + 2 * n * m * N


def median_seconds(fn, min_reps: int = 10, min_seconds: float = 0.5) -> float:
    fn()  # warm-up (allocations, lazy init)
    times, start = [], time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 500:
            break
    return float(np.median(times))


def gemm_ceiling(threads: int, size: int = 2048) -> float:
    torch.set_num_threads(threads)
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    seconds = min(median_seconds(lambda: torch.mm(a, b), min_reps=3, min_seconds=0.3) for _ in range(2))
    return 2 * size**3 / seconds / 1e9


def analysis_problem(B: int, dtype, seed: int = 0):
    """Ensemble, observations, R and the default localization taper (m × m, observation space) at the paper's size."""
    rng = np.random.default_rng(seed)
    n = N_LATENT + N_OBS
    # Training-like series: observables driven by a few modes, latents mixing them with noise.
    T = 600
    modes = rng.standard_normal((T, 8))
    y_train = modes @ rng.standard_normal((8, N_OBS)) + 0.3 * rng.standard_normal((T, N_OBS))
    z_train = modes @ rng.standard_normal((8, N_LATENT)) * rng.uniform(0, 1, N_LATENT) + rng.standard_normal(
        (T, N_LATENT)
    )
    obs_lon = np.tile(126 + 2.8125 * np.arange(56), 2)
    taper = taper_from_settings(obs_lon, LocalizationSection(enabled=True))
    x_train = np.concatenate([z_train, y_train], axis=1)
    E = x_train[rng.integers(0, T, (B, N_MEMBERS))] + 0.1 * rng.standard_normal((B, N_MEMBERS, n))
    y = y_train[rng.integers(0, T, B)]
    R = 0.04 * y_train.var(0)
    t = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    return t(E), t(y), t(R), t(taper), x_train


DAPPER_CHILD = textwrap.dedent(
    """
    import json, sys, time, warnings
    import numpy as np
    warnings.filterwarnings("ignore")
    from threadpoolctl import threadpool_limits
    from dapper.da_methods.ensemble import EnKF_analysis
    from dapper.tools.randvars import GaussRV

    N, n, m, B = (int(v) for v in sys.argv[1:5])
    threads = [int(v) for v in sys.argv[5].split(",")]
    rng = np.random.default_rng(0)
    E = rng.standard_normal((B, N, n))
    y = rng.standard_normal((B, m))
    noise = GaussRV(C=rng.uniform(0.1, 0.5, m), M=m)
    out = {}
    for t in threads:
        with threadpool_limits(limits=t):
            for upd in ("PertObs", "Sqrt"):
                def one_batch():
                    for b in range(B):
                        EnKF_analysis(E[b], E[b][:, -m:], noise, y[b], upd)
                one_batch()
                times, start = [], time.perf_counter()
                while len(times) < 5 or time.perf_counter() - start < 1.0:
                    t0 = time.perf_counter(); one_batch(); times.append(time.perf_counter() - t0)
                out[f"{upd}/{t}"] = float(np.median(times)) / B
    print(json.dumps(out))
    """
)


def dapper_timings(threads: list[int]) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            DAPPER_CHILD,
            str(N_MEMBERS),
            str(N_LATENT + N_OBS),
            str(N_OBS),
            str(N_EXPERIMENTS),
            ",".join(map(str, threads)),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"DAPPER child failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def stand_in_forecaster(n_state: int, seed: int = 0):
    """The real LSTMForecaster class at the configured size, with random (stable) weights instead of trained ones."""
    from bridging.models.forecast import LSTMForecaster

    cfg = ForecastSection()
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n_state, n_state)))
    with torch.random.fork_rng():  # the same weights in every call (CPU and CUDA runs are compared)
        torch.manual_seed(seed)
        fm = LSTMForecaster(
            state_mean=np.zeros(n_state),
            state_std=np.ones(n_state),
            skip_weight=0.9 * q,
            skip_bias=np.zeros(n_state),
            hidden=cfg.hidden,
            layers=cfg.layers,
            dropout=cfg.dropout,
            noise_cov=0.01 * np.eye(n_state),
            n_latent=N_LATENT,
        )
        torch.nn.init.normal_(fm.head.weight, std=0.01)  # a non-zero correction, so the LSTM output matters
    fm.gate_passed = True
    return fm.eval().requires_grad_(False)


def full_run(
    B: int,
    months: int,
    threads: int,
    *,
    dtype=torch.float32,
    device="cpu",
    method: str = "stochastic",
    model_noise_scale: float = 1.0,
    inflation=1.09,
    keep_means: bool = False,
):
    """Cycle ``months`` months of B experiments × N members (stand-in LSTM, localized analysis).

    Returns (wall seconds, ensemble means (months, B, n) if ``keep_means`` else None); the means are the stored
    float32 values, and with ``keep_means`` the final members (B, N, n) in full precision are appended to the tuple.
    """
    torch.set_num_threads(threads)
    n = N_LATENT + N_OBS
    fm = stand_in_forecaster(n).to(device=device, dtype=dtype)
    _, _, R, taper, x_train = analysis_problem(1, torch.float64)
    rng = np.random.default_rng(1)
    obs = x_train[rng.integers(0, x_train.shape[0], months), N_LATENT:]
    setup = CycleSetup(
        forecaster=fm,
        observations=torch.as_tensor(obs, dtype=dtype, device=device).unsqueeze(1).expand(months, B, N_OBS),
        obs_var=R.to(device=device, dtype=dtype).expand(B, N_OBS),
        noise_factor=torch.linalg.cholesky(fm.noise_cov.double().cpu()).to(device=device, dtype=dtype),
        noise_std_scale=torch.full((B,), model_noise_scale, dtype=dtype, device=device).sqrt(),
        inflation=torch.as_tensor(inflation, dtype=dtype, device=device).expand(B).contiguous(),
        n_latent=N_LATENT,
        method=method,
        taper=taper.to(device=device, dtype=dtype),
    )
    x0 = torch.as_tensor(x_train[rng.integers(0, x_train.shape[0], N_MEMBERS)], dtype=dtype, device=device)
    members = x0.unsqueeze(0).expand(B, N_MEMBERS, n).contiguous()
    gen = torch.Generator(device=device).manual_seed(0)
    state = FilterState(0, members, fm.initial_state(B * N_MEMBERS, device, dtype), gen)
    means = []
    on_block = (
        (lambda result, st: means.append(result.mean.astype(np.float64))) if keep_means else (lambda result, st: None)
    )
    if device != "cpu":
        torch.cuda.synchronize()
    start = time.perf_counter()
    state = run_cycles(setup, state, stop_month=months, block_months=120, on_block=on_block)
    if device != "cpu":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if keep_means:
        return seconds, np.concatenate(means), state.members.double().cpu().numpy()
    return seconds, None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=240, help="cycled months timed for the full-run rows")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="fewer months (60), for a smoke test")
    args = parser.parse_args(argv)
    months = 60 if args.quick else args.months
    n = N_LATENT + N_OBS
    print(f"torch {torch.__version__}, n_l = {N_LATENT}, n_o = {N_OBS}, N = {N_MEMBERS}, batch {N_EXPERIMENTS}\n")

    ceilings = {t: gemm_ceiling(t) for t in args.threads}
    print("GEMM ceiling (torch float32 2048³)")
    for t, g in ceilings.items():
        print(f"  {t} thread(s): {g:7.1f} GFLOP/s")
    print()

    dapper = dapper_timings(args.threads)
    rows = []
    for t in args.threads:
        torch.set_num_threads(t)
        pools = threadpool_limits(limits=t)  # the CPU's LAPACK factorizations run in SciPy's OpenBLAS pool
        for label, B, dtype, method, localized in (
            ("ours stochastic, localized, f32, batch 16", N_EXPERIMENTS, torch.float32, "stochastic", True),
            ("ours stochastic, localized, f32, batch 1", 1, torch.float32, "stochastic", True),
            ("ours stochastic, localized, f64, batch 16", N_EXPERIMENTS, torch.float64, "stochastic", True),
            ("ours stochastic, no localization, f32, batch 16", N_EXPERIMENTS, torch.float32, "stochastic", False),
            ("ours ETKF, localized, f32, batch 16", N_EXPERIMENTS, torch.float32, "etkf", True),
            ("ours ETKF, no localization, f32, batch 16", N_EXPERIMENTS, torch.float32, "etkf", False),
        ):
            E, y, R, taper, _ = analysis_problem(B, dtype)
            gen = torch.Generator().manual_seed(0)
            tap = taper if localized else None
            seconds = (
                median_seconds(lambda: analysis(E, y, R, method=method, inflation=1.09, obs_taper=tap, generator=gen))
                / B
            )
            flops = stochastic_flops(N_MEMBERS, n, N_OBS, localized) if method == "stochastic" else None
            rows.append((label, t, seconds, flops))
        pools.restore_original_limits()
        for upd in ("PertObs", "Sqrt"):
            flops = dapper_pertobs_flops(N_MEMBERS, n, N_OBS) if upd == "PertObs" else None
            rows.append((f"DAPPER EnKF_analysis '{upd}', f64, no localization", t, dapper[f"{upd}/{t}"], flops))

    print("Analysis step (ms per analysis = per experiment; GFLOP/s for the stochastic forms, whose FLOPs are exact)")
    header = f"  {'implementation':52s} {'thr':>3s} {'ms':>8s} {'GFLOP/s':>8s} {'% ceiling':>9s} {'× faster than DAPPER PertObs':>29s}"
    print(header)
    for label, t, seconds, flops in rows:
        gf = flops / seconds / 1e9 if flops else None
        speedup = dapper[f"PertObs/{t}"] / seconds
        print(
            f"  {label:52s} {t:3d} {seconds * 1e3:8.3f} {(f'{gf:8.1f}' if gf else '       —')} "
            f"{(f'{100 * gf / ceilings[t]:8.1f}%' if gf else '        —')} {speedup:29.2f}"
        )
    print()

    print(
        f"Full cycle (LSTMForecaster 613→256→613 + noise + localized stochastic analysis, N = 50, f32; "
        f"{months} months timed, × {FULL_RUN_MONTHS / months:g} for {FULL_RUN_MONTHS} months)"
    )
    print(f"  {'batch':>5s} {'thr':>3s} {'ms/cycle':>9s} {'ms/cycle/exp':>12s} {'s per 6000-month experiment':>28s}")
    for t in args.threads:
        for B in (1, N_EXPERIMENTS):
            seconds, _ = full_run(B, months, t)
            per_cycle = seconds / months
            print(
                f"  {B:5d} {t:3d} {per_cycle * 1e3:9.2f} {per_cycle / B * 1e3:12.2f} {per_cycle / B * FULL_RUN_MONTHS:28.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
