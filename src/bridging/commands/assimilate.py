"""``bridging assimilate``: the latent EnKF run (or, with --free-run, the control) for one operational model."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "assimilate",
        help="cycle the latent forecast model with the EnKF against the pseudo-observations (zarr + JSON statistics)",
        description="The `assimilate` / `free_run` rules' stage. Input paths default to the run folder of the config "
        "(results/<run>/...); several --inflation / --model-noise-scale values run a batched sweep over their product.",
    )
    p.add_argument("--model", required=True, help="operational model name (data.operational[].name)")
    p.add_argument("--config", nargs="+", default=[], metavar="FILE", help="config files merged over the defaults")
    p.add_argument("--free-run", action="store_true", help="the control: forecast model + noise, no assimilation")
    p.add_argument("--out", help="output zarr store (default: the rule's output path)")
    p.add_argument("--statistics", help="output JSON of filter statistics (default: beside the store)")
    p.add_argument("--latent", help="latent operational store")
    p.add_argument("--operational-store", help="the operational model's source store")
    p.add_argument("--forecast-model", help="forecast.pt")
    p.add_argument("--autoencoder", help="autoencoder.pt")
    p.add_argument("--pseudo-obs", help="pseudo-observation store")
    p.add_argument("--inflation", type=float, nargs="+", help="inflation value(s) (default: da.inflation)")
    p.add_argument("--model-noise-scale", type=float, nargs="+", help="model-noise scale value(s) (default: da.model_noise_scale)")
    p.add_argument("--months", type=int, help="run length (default: da.months)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: compute.device")
    p.set_defaults(func=run)


def default_paths(run_dir: Path, model: str, idealized: str, free_run: bool) -> dict[str, Path]:
    """The paths the Snakemake rules use (workflow/rules/assimilation.smk)."""
    out = run_dir / ("free_run" if free_run else "assimilation") / f"{model}.zarr"
    return {
        "out": out,
        "statistics": out.with_name(f"{model}_statistics.json"),
        "latent": run_dir / "latent" / model / "operational.zarr",
        "operational_store": run_dir / "stores" / f"{model}.zarr",
        "forecast_model": run_dir / "models" / model / "forecast.pt",
        "autoencoder": run_dir / "models" / model / "autoencoder.pt",
        "pseudo_obs": run_dir / "pseudo_obs" / f"{idealized}.zarr",
    }


def run(args) -> int:
    from ..da.run import assimilate, free_run
    from ..errors import ConfigError
    from ..runtime import limit_threads
    from ..settings import Config, load_config

    cfg = load_config(*args.config) if args.config else Config()
    if args.model not in [m.name for m in cfg.data.operational]:
        raise ConfigError(f"--model {args.model}: not one of data.operational {[m.name for m in cfg.data.operational]}")
    limit_threads(cfg.compute.torch_threads)
    paths = default_paths(Path(cfg.run.results_dir) / cfg.run.name, args.model, cfg.idealized.model, args.free_run)
    for key in paths:
        if getattr(args, key, None):
            paths[key] = Path(getattr(args, key))
    from ..atomic import check_writable

    check_writable(paths["out"], (".zarr",))
    check_writable(paths["statistics"], (".json",))
    da = cfg.da.model_copy()
    if args.months is not None:
        da.months = args.months
    stage = free_run if args.free_run else assimilate
    summary = stage(
        paths["out"],
        paths["statistics"],
        latent_store=paths["latent"],
        operational_store=paths["operational_store"],
        forecast_model=paths["forecast_model"],
        autoencoder=paths["autoencoder"],
        pseudo_obs=paths["pseudo_obs"],
        da=da,
        grid=cfg.grid.model_dump(),
        allow_failed_gate=cfg.forecast.gate.allow_failed,
        device=args.device or cfg.compute.device,
        model_name=args.model,
        inflation=args.inflation,
        model_noise_scale=args.model_noise_scale,
    )
    print(f"wrote {paths['out']} and {paths['statistics']}")
    overall = summary["overall"]
    print(f"innovation ratio {overall['innovation_ratio']}, consistency {overall.get('consistency_correlation')}")
    for w in summary["warnings"]:
        print(f"warning: {w}")
    return 0
