"""Benchmark of the latent models: default demo training time (autoencoder + encode + forecast model with its gate),
peak memory, and encode/decode throughput, with a linear reference implementation of the same job in the same run.

    OMP_NUM_THREADS=2 nice -n 10 .venv/bin/python bench/bench_models.py [--run-dir results/demo --model DEMO-CESM2]
                                                                          [--ablations] [--quick]

Data: the stores of a demo run when ``--run-dir`` has them (``stores/<model>.zarr``, ``stores/<reanalysis>.zarr``,
``pseudo_obs/<idealized>.zarr``), otherwise demo-sized synthetic sources (below): 100 operational and 43 reanalysis
years on the 41 × 161 target grid with the 112 CF23 observables.

Rows:
* training with the default config: each stage in a child process (wall time, epochs/s, peak RSS); the reference is
  a linear "autoencoder" (PCA to the same latent size, by SVD) plus the ridge forecast on the same data;
* encode + decode throughput at batch 256 (fields/s): the convolutional autoencoder vs the PCA projection;
* held-out forecast skill of the trained LSTM beside the linear model, persistence and climatology, and its gate;
* ``--ablations``: λ = 0 vs the default, and the curriculum on/off for the autoencoder, scored on operational and
  reanalysis held-out months (reconstruction, latent–observable correlation, y-from-z R², ‖C‖).

The synthetic sources are a stand-in, not the demo data set: a stochastic recharge oscillator (period about 4 years)
drives an eastern (EP) and a central (CP) SST pattern, a thermocline east–west seesaw, a recharge mode and
off-equatorial Rossby lobes; red-noise off-equatorial modes ENSO does not explain and white noise are added. The
reanalysis has state-dependent noise (positive Niño 3 skewness), the operational model symmetric noise, a pattern
shifted 20° west and 1.3× the amplitude, like the demo's biased models; land differs slightly between the two.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from bridging import stores
from bridging.atomic import write_zarr_atomic
from bridging.grid import TargetGrid
from bridging.observables import ObservationLayout
from bridging.timeaxis import monthly_time, year_month


# ============================================================================================== synthetic sources
def _enso_driver(n_months: int, rng: np.random.Generator, skew: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T (EP SST index), h (recharge), c (CP index) monthly, burn-in discarded."""
    omega, damp_t, damp_h = 2 * np.pi / 48.0, 1 / 20.0, 1 / 40.0
    burn = 240
    t = np.zeros(n_months + burn)
    h = np.zeros_like(t)
    c = np.zeros_like(t)
    for i in range(1, t.size):
        month = i % 12
        season = 1.0 + 0.35 * np.cos(2 * np.pi * (month - 11) / 12)  # noise peaks in boreal winter: phase locking
        amp = np.clip(1.0 + skew * t[i - 1], 0.3, 3.0)  # multiplicative noise: warm events grow bigger (skewness)
        t[i] = t[i - 1] + (-damp_t * t[i - 1] + omega * h[i - 1]) + 0.22 * season * amp * rng.standard_normal()
        h[i] = h[i - 1] + (-omega * t[i - 1] - damp_h * h[i - 1]) + 0.10 * rng.standard_normal()
        c[i] = 0.88 * c[i - 1] + 0.05 * t[i - 1] - 0.04 * max(t[i - 1], 0) ** 2 + 0.18 * rng.standard_normal()
    t, h, c = t[burn:], h[burn:], c[burn:]
    scale = 0.85 / t.std()
    return t * scale, h * scale, c * (0.5 / c.std())


def _gauss(x, centre, width):
    return np.exp(-(((x - centre) / width) ** 2))


def synthetic_source(grid: TargetGrid, first_year: int, years: int, *, seed: int, kind: str) -> xr.Dataset:
    """One store Dataset (full fields: climatology + anomalies, NaN on land)."""
    rng = np.random.default_rng(seed)
    lat, lon = grid.lat[:, None], grid.lon[None, :]
    n = 12 * years
    biased = kind == "operational"
    shift, amplitude, skew = (20.0, 1.3, 0.0) if biased else (0.0, 1.0, 0.45)
    t, h, c = _enso_driver(n, rng, skew)
    ep = _gauss(lat, 0, 8) * _gauss(lon, 245 - shift, 40)
    cp = _gauss(lat, 0, 7) * _gauss(lon, 190 - shift, 25)
    seesaw = _gauss(lat, 0, 4) * np.tanh((lon - (195 - shift)) / 35)
    recharge = _gauss(lat, 0, 10)
    lobes = (_gauss(lat, 7, 3) + _gauss(lat, -7, 3)) * _gauss(lon, 170 - shift / 2, 30)
    sst = amplitude * (t[:, None, None] * ep + c[:, None, None] * cp)
    thermo = amplitude * (
        25 * t[:, None, None] * seesaw + 12 * h[:, None, None] * recharge - 10 * t[:, None, None] * lobes
    )
    # Off-equatorial red-noise modes that ENSO does not explain: the operational model's own detail.
    for _ in range(6):
        la = rng.choice([-1, 1]) * rng.uniform(8, 17)
        lo = rng.uniform(135, 265)
        pattern = _gauss(lat, la, 4) * _gauss(lon, lo, 14)
        a = np.zeros(n)
        for i in range(1, n):
            a[i] = 0.8 * a[i - 1] + 0.6 * rng.standard_normal()
        sst += 0.35 * a[:, None, None] * pattern
        thermo += 7.0 * a[:, None, None] * pattern
    sst += 0.08 * rng.standard_normal(sst.shape)
    thermo += 2.0 * rng.standard_normal(thermo.shape)

    time = monthly_time(first_year, 1, n)
    _, months = year_month(time)
    phase = 2 * np.pi * (months[:, None, None] - 3) / 12
    east = np.clip((lon - 120) / 160, 0, 1)
    sst_clim = 29.0 - 4.5 * east * _gauss(lat, 0, 12) - 0.03 * lat**2 + 1.2 * east * np.cos(phase)
    thermo_clim = 170 - 125 * east * _gauss(lat, 0, 14) + 0.4 * lat**2 + 8 * east * np.sin(phase)
    land = (
        (lon < 125) & (lat > -8)
        | (lat < -12) & (lon < 145)
        | (lon > 276) & (lat > 7)
        | (lon > 262) & (lat > 15)
        | (lon > 278) & (lat < -4)
    )
    if not biased:  # a slightly different coastline, as from a different native grid
        land = land | (lon > 274) & (lat > 9) | (lon < 127) & (lat > -8) & (lat < -5)
    fields = {}
    for name, clim, anom in (("sst", sst_clim, sst), ("thermocline_depth", thermo_clim, thermo)):
        full = np.where(land, np.nan, clim + anom).astype(np.float32)
        fields[name] = xr.DataArray(full, dims=("time", "lat", "lon"), coords={"time": time, **grid.coords()})
    return stores.build_store(
        fields,
        source_id="SYNTH-OPERATIONAL" if biased else "SYNTH-REANALYSIS",
        source_kind=kind,
        extra_attrs={"comment": "synthetic benchmark source (bench/synthetic_sources.py), not data"},
    )


def cf23_layout(grid: TargetGrid) -> ObservationLayout:
    """SST and thermocline depth at the 56 CF23 equatorial node longitudes (126 + 2.8125 i °E)."""
    node_lon = 126.0 + 2.8125 * np.arange(56)
    variables = ["sst"] * 56 + ["thermocline_depth"] * 56
    return ObservationLayout.points(grid, variables, [0.0] * 112, list(node_lon) * 2)


def write_synthetic_sources(
    root: str | Path,
    grid: TargetGrid | None = None,
    *,
    years_operational: int = 100,
    years_reanalysis: int = 43,
    seed: int = 0,
) -> dict[str, Path]:
    """Write operational + reanalysis stores and a pseudo-observation store under root; return their paths."""
    root = Path(root)
    grid = grid or TargetGrid()
    paths = {
        "operational": root / "stores" / "SYNTH-OPERATIONAL.zarr",
        "reanalysis": root / "stores" / "SYNTH-REANALYSIS.zarr",
        "pseudo_obs": root / "pseudo_obs" / "synthetic.zarr",
    }
    if all(p.exists() for p in paths.values()):
        return paths
    stores.write_store(
        synthetic_source(grid, 2014 - years_operational + 1, years_operational, seed=seed + 11, kind="operational"),
        paths["operational"],
    )
    rean = synthetic_source(grid, 1981, years_reanalysis, seed=seed + 7, kind="reanalysis")
    stores.write_store(rean, paths["reanalysis"])
    layout = cf23_layout(grid)
    obs = layout.extract({f: stores.field_anomalies(rean, f).values for f in stores.FIELDS}, grid)
    ds = xr.Dataset(
        {"observations": (("time", "obs"), obs.astype(np.float32)), "obs_error_variance": ("obs", 0.04 * obs.var(0))},
        coords={"time": rean["time"], **layout.coords()},
    )
    write_zarr_atomic(ds, paths["pseudo_obs"])
    return paths


# ============================================================================================== stages (child processes)
def _config(overrides: dict):
    from bridging.settings import Config

    cfg = Config().model_dump()
    for section, values in overrides.items():
        cfg[section] = {**cfg[section], **values}
    return Config.model_validate(cfg)


def _stage(stage: str, spec: dict) -> dict:
    """Run one stage with the default config (plus overrides) and report wall time and peak RSS of this process."""
    from bridging.runtime import available_cpus, configure_logging, limit_threads

    configure_logging(spec.get("log"))
    limit_threads(available_cpus())
    cfg = _config(spec.get("overrides", {}))
    p = {k: Path(v) for k, v in spec["paths"].items()}
    out = Path(spec["out"])
    grid = spec["grid"]
    start = time.perf_counter()
    extra: dict = {}
    if stage == "autoencoder":
        from bridging.models.autoencoder import train_autoencoder

        record = train_autoencoder(
            p["operational"],
            p["reanalysis"],
            p["pseudo_obs"],
            out / "autoencoder.pt",
            out / "autoencoder_metrics.json",
            out / "autoencoder_curves.png",
            autoencoder=cfg.autoencoder,
            curriculum=cfg.curriculum,
            compute=cfg.compute,
            grid=grid,
        )
        extra = {"epochs": record["epochs_run"]}
    elif stage == "encode":
        from bridging.models.latent import encode_sources

        encode_sources(
            out / "autoencoder.pt",
            p["operational"],
            p["reanalysis"],
            p["pseudo_obs"],
            out / "latent_operational.zarr",
            out / "latent_reanalysis.zarr",
            autoencoder=cfg.autoencoder,
            compute=cfg.compute,
            grid=grid,
        )
    elif stage == "forecast":
        from bridging.models.forecast import train_forecast

        record = train_forecast(
            out / "latent_operational.zarr",
            out / "latent_reanalysis.zarr",
            out / "autoencoder.pt",
            p["operational"],
            p["reanalysis"],
            out / "forecast.pt",
            out / "forecast_metrics.json",
            out / "forecast_curves.png",
            out / "forecast_gate.png",
            forecast=cfg.forecast,
            curriculum=cfg.curriculum,
            compute=cfg.compute,
            grid=grid,
        )
        extra = {"epochs": record["epochs_run"]}
    elif stage == "reference":
        extra = _reference_fit(p, cfg, grid)
    else:
        raise ValueError(stage)
    return {
        "seconds": time.perf_counter() - start,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **extra,
    }


def _reference_fit(p: dict, cfg, grid: dict) -> dict:
    """The linear reference of the same job: PCA (SVD) to the latent size + the ridge forecast on [z; y]."""
    from bridging.models.autoencoder import load_field_record, read_observation_layout
    from bridging.models.forecast import fit_ridge
    from bridging.models.training import time_split

    layout = read_observation_layout(p["pseudo_obs"])
    op = load_field_record(p["operational"], grid=TargetGrid(**grid), layout=layout)
    split = time_split(len(op), cfg.autoencoder.validation_fraction)
    flat = op.standardised[:, :, op.ocean].reshape(len(op), -1)
    t0 = time.perf_counter()
    _, _, vt = np.linalg.svd(flat[split.train], full_matrices=False)
    basis = vt[: cfg.autoencoder.latent_dim]
    t_pca = time.perf_counter() - t0
    x = np.concatenate([flat @ basis.T, op.observables], 1)
    mean, std = x[split.train].mean(0), x[split.train].std(0)
    t0 = time.perf_counter()
    fit_ridge([(x[split.train] - mean) / std], cfg.forecast.ridge_alpha)
    return {"pca_seconds": t_pca, "ridge_seconds": time.perf_counter() - t0, "components": int(basis.shape[0])}


def _in_child(stage: str, spec: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", stage, json.dumps(spec)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"stage {stage} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ============================================================================================== throughput
def _throughput(checkpoint: Path, paths: dict, grid: dict, batch: int = 256, repeats: int = 4) -> dict:
    import torch

    from bridging.models.autoencoder import load_autoencoder, load_field_record
    from bridging.runtime import available_cpus, limit_threads

    limit_threads(available_cpus())
    ae = load_autoencoder(checkpoint)
    rec = load_field_record(paths["operational"], grid=TargetGrid(**grid), layout=ae.layout, field_std=ae.field_std)
    fields = torch.as_tensor(rec.standardised[:batch])
    flat = rec.standardised[:, :, rec.ocean].reshape(len(rec), -1)
    _, _, vt = np.linalg.svd(flat[: int(0.85 * len(rec))], full_matrices=False)
    basis = torch.as_tensor(np.ascontiguousarray(vt[: ae.latent_dim]))
    ocean = torch.as_tensor(rec.ocean)

    def timed(fn) -> float:
        fn()  # warm-up (allocations, kernel selection)
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        return batch * repeats / (time.perf_counter() - start)

    with torch.no_grad():
        z = ae.encode(fields)
        ours = {
            "encode": timed(lambda: ae.encode(fields)),
            "decode": timed(lambda: ae.decode(z)),
            "encode+decode": timed(lambda: ae.decode(ae.encode(fields))),
        }

        def pca_roundtrip():
            x = fields[:, :, ocean].reshape(batch, -1)
            out = torch.full_like(fields, float("nan"))
            out[:, :, ocean] = ((x @ basis.T) @ basis).reshape(batch, 2, -1)
            return out

        def pca_encode():
            return fields[:, :, ocean].reshape(batch, -1) @ basis.T

        reference = {"encode": timed(pca_encode), "encode+decode": timed(pca_roundtrip)}
    return {"ours": ours, "reference": reference, "threads": torch.get_num_threads()}


# ============================================================================================== tables
def _table(title: str, header: tuple, rows: list[tuple]) -> None:
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print(f"\n{title}")
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))


def _fmt(v, digits=3):
    return "—" if v is None else f"{v:.{digits}f}"


def _ablations(spec: dict, work: Path, overrides: dict) -> None:
    cases = [
        ("λ = 0.1, curriculum on (default)", {}),
        ("λ = 0, curriculum on", {"autoencoder": {"lambda_corr": 0.0}}),
        ("λ = 0.1, curriculum off", {"curriculum": {"apply_to_autoencoder": False}}),
        ("λ = 0, curriculum off", {"autoencoder": {"lambda_corr": 0.0}, "curriculum": {"apply_to_autoencoder": False}}),
    ]
    rows = []
    for name, case in cases:
        # The default case is the autoencoder the benchmark already trained.
        out = work / "models" if not case else work / ("ablation_" + "".join(ch for ch in name if ch.isalnum()))
        out.mkdir(parents=True, exist_ok=True)
        merged = {k: {**overrides.get(k, {}), **case.get(k, {})} for k in set(overrides) | set(case)}
        if not (out / "autoencoder_metrics.json").exists():
            _in_child("autoencoder", {**spec, "out": str(out), "overrides": merged})
        final = json.loads((out / "autoencoder_metrics.json").read_text())["final"]
        for data in ("operational_heldout", "reanalysis_heldout"):
            f = final[data]
            rows.append(
                (
                    name,
                    data,
                    f"{f['recon_loss']:.4f}",
                    _fmt(f["recon_rmse_physical"]["sst"]["value"]),
                    _fmt(f["recon_rmse_physical"]["thermocline_depth"]["value"], 2),
                    _fmt(f["corr_loss"]),
                    _fmt(f["mean_max_abs_corr"]),
                    _fmt(f["y_from_z_r2"]),
                    _fmt(f["rms_cross_corr"]),
                    _fmt(f["cross_cov_norm"], 1),
                )
            )
    _table(
        "Autoencoder ablations (λ, curriculum on the autoencoder); held-out scores of the best epoch "
        "(y-from-z R²: ridge of y on z fitted on the same source's training months)",
        (
            "case",
            "data",
            "L_recon",
            "SST RMSE °C",
            "thermo RMSE m",
            "L_corr",
            "mean max|corr|",
            "y-from-z R²",
            "RMS corr",
            "‖C‖ (latent units)",
        ),
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", help="a run folder with stores/ and pseudo_obs/ (default: synthetic sources)")
    parser.add_argument("--model", help="operational model name in --run-dir (default: the config's first)")
    parser.add_argument("--work", help="folder for outputs (default: a temporary folder)")
    parser.add_argument("--ablations", action="store_true", help="also train the four autoencoder ablations")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 epochs each, 10-year gate")
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_stage(args.child[0], json.loads(args.child[1]))))
        return

    from bridging.settings import Config

    cfg = Config()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_models_"))
    work.mkdir(parents=True, exist_ok=True)
    grid = cfg.grid.model_dump()
    if args.run_dir:
        run = Path(args.run_dir)
        model = args.model or cfg.data.operational[0].name
        paths = {
            "operational": run / "stores" / f"{model}.zarr",
            "reanalysis": run / "stores" / f"{cfg.data.reanalysis.name}.zarr",
            "pseudo_obs": run / "pseudo_obs" / f"{cfg.idealized.model}.zarr",
        }
        source = f"demo run {run} ({model})"
    else:
        paths = write_synthetic_sources(work / "synthetic", TargetGrid(**grid))
        source = "synthetic demo-sized sources (100 + 43 years, 41 × 161, 112 observables)"
    overrides = {}
    if args.quick:
        overrides = {
            "autoencoder": {"epochs": 3},
            "forecast": {"epochs": 3, "gate": {**cfg.forecast.gate.model_dump(), "free_run_years": 10}},
        }
    out = work / "models"
    out.mkdir(exist_ok=True)
    spec = {
        "paths": {k: str(v) for k, v in paths.items()},
        "out": str(out),
        "grid": grid,
        "overrides": overrides,
        "log": str(work / "bench_models.log"),
    }

    load_before = os.getloadavg()[0]
    results = {stage: _in_child(stage, spec) for stage in ("autoencoder", "encode", "forecast", "reference")}
    load_after = os.getloadavg()[0]
    ae, enc, fc, ref = (results[k] for k in ("autoencoder", "encode", "forecast", "reference"))
    total = ae["seconds"] + enc["seconds"] + fc["seconds"]
    print(
        f"Latent models benchmark — {os.cpu_count()} CPUs (load average {load_before:.1f} before, {load_after:.1f} after: "
        f"the machine is shared), data: {source}"
    )
    print(
        f"default config: latent_dim {cfg.autoencoder.latent_dim}, channels {cfg.autoencoder.channels}, AE epochs "
        f"{cfg.autoencoder.epochs}, LSTM hidden {cfg.forecast.hidden}, forecast epochs {cfg.forecast.epochs}{' (--quick)' if args.quick else ''}"
    )
    _table(
        "Training with the default config (each stage in its own process)",
        ("stage", "ours", "epochs/s", "peak RSS", "reference (linear: PCA + ridge)"),
        [
            (
                "autoencoder",
                f"{ae['seconds']:.0f} s, {ae['epochs']} epochs",
                _fmt(ae["epochs"] / ae["seconds"]),
                f"{ae['peak_mib']:.0f} MiB",
                f"PCA ({ref['components']} components, SVD) {ref['pca_seconds']:.1f} s",
            ),
            (
                "encode (both records)",
                f"{enc['seconds']:.1f} s",
                "",
                f"{enc['peak_mib']:.0f} MiB",
                "(projection: see throughput)",
            ),
            (
                "forecast: ridge + LSTM + gates",
                f"{fc['seconds']:.0f} s, {fc['epochs']} epochs",
                _fmt(fc["epochs"] / fc["seconds"]) if fc["epochs"] else "",
                f"{fc['peak_mib']:.0f} MiB",
                f"ridge {ref['ridge_seconds']:.2f} s",
            ),
            (
                "total per operational model",
                f"{total:.0f} s ({total / 60:.1f} min)",
                "",
                "",
                f"{ref['pca_seconds'] + ref['ridge_seconds']:.1f} s (peak {ref['peak_mib']:.0f} MiB)",
            ),
            ("both demo operational models", f"≈ {2 * total / 60:.1f} min (budget 10 min)", "", "", ""),
        ],
    )

    tp = _throughput(out / "autoencoder.pt", paths, grid)
    _table(
        f"Encode/decode throughput, batch 256, {tp['threads']} torch threads (fields/s; a field = SST + thermocline on 41 × 161)",
        ("operation", "ours (conv autoencoder)", "reference (PCA projection)"),
        [
            ("encode", f"{tp['ours']['encode']:,.0f}", f"{tp['reference']['encode']:,.0f}"),
            ("decode", f"{tp['ours']['decode']:,.0f}", ""),
            ("encode + decode", f"{tp['ours']['encode+decode']:,.0f}", f"{tp['reference']['encode+decode']:,.0f}"),
        ],
    )

    metrics = json.loads((out / "forecast_metrics.json").read_text())
    gate = metrics["gate"]
    skill = gate["skill"]
    rows = []
    for key, label, digits in (
        ("latent_rmse", "latent RMSE", 3),
        ("reanalysis_latent_rmse", "latent RMSE (reanalysis)", 3),
        ("sst_rmse_degC", "SST RMSE °C", 3),
        ("thermocline_rmse_m", "thermocline RMSE m", 2),
        ("nino3_corr", "Niño 3 corr", 3),
    ):
        for name, values in skill.get(key, {}).items():
            rows.append((label, "LSTM" if name == "model" else name, *(_fmt(v, digits) for v in values)))
    _table(
        f"Held-out skill ({skill['n_starts']} operational start months) by lead",
        ("score", "forecast", *(f"{lead} mo" for lead in skill["leads"])),
        rows,
    )
    other = metrics["gate_other_models"].get("linear", {})
    _table(
        "Gate (100-year noisy free run; std ratio vs the curriculum-mixture training data)",
        ("model", "passed", "Niño 3 std ratio", "Niño 4 std ratio", "max |x_std|", "failures"),
        [
            (
                name,
                rep["passed"],
                _fmt(rep["free_run"]["std_ratio"]["nino3"]),
                _fmt(rep["free_run"]["std_ratio"]["nino4"]),
                _fmt(rep["free_run"].get("state_max_abs_standardised"), 1),
                "; ".join(rep["failures"]) or "—",
            )
            for name, rep in (("LSTM", gate), ("linear", other))
            if rep
        ],
    )
    print(
        f"\nLSTM best epoch {metrics['best_epoch']} (−1 = the untrained model, i.e. the linear skip); held-out mean RMSE "
        f"initial {_fmt(metrics['initial_heldout_score'])} → best {_fmt(metrics['best_heldout_score'])}"
    )
    if args.ablations:
        _ablations(spec, work, overrides)
    print(f"\noutputs in {work}")


if __name__ == "__main__":
    main()
