"""``bridging assimilate``: the latent EnKF run (or, with --free-run, the control) for one operational model."""

from __future__ import annotations

from pathlib import Path

from ..atomic import check_writable
from ..settings.da import source_models
from ._options import add_config_option, add_device_option, add_model_option, layout, load_model_settings, run_paths


def register(sub) -> None:
    p = sub.add_parser(
        "assimilate",
        help="cycle the latent forecast model with the EnKF against the pseudo-observations (zarr + JSON statistics)",
        description="The `assimilate` / `free_run` rules' stage. Input paths default to the run folder of the config "
        "(results/<run>/...); several --inflation / --model-noise-scale values run a batched sweep over their product.",
    )
    add_model_option(p)
    add_config_option(p)
    p.add_argument("--free-run", action="store_true", help="the control: forecast model + noise, no assimilation")
    p.add_argument("--out", help="output zarr store (default: the rule's output path)")
    p.add_argument("--statistics", help="output JSON of filter statistics (default: beside the store)")
    p.add_argument("--latent", help="latent operational store")
    p.add_argument("--operational-store", help="the operational model's source store")
    p.add_argument("--forecast-model", help="forecast.pt")
    p.add_argument("--autoencoder", help="autoencoder.pt")
    p.add_argument("--pseudo-obs", help="pseudo-observation store")
    p.add_argument(
        "--other-pseudo-obs",
        nargs="+",
        help="pseudo-observation stores of the other models of da.observations.sources (default: the run's)",
    )
    p.add_argument("--inflation", type=float, nargs="+", help="inflation value(s) (default: da.inflation)")
    p.add_argument(
        "--model-noise-scale", type=float, nargs="+", help="model-noise scale value(s) (default: da.model_noise_scale)"
    )
    p.add_argument("--months", type=int, help="run length (default: da.months)")
    add_device_option(p)
    p.set_defaults(func=run)


def default_paths(cfg, model: str, free_run: bool) -> dict[str, str]:
    """The paths of the `assimilate` (or `free_run`) rule for ``model``."""
    run, kind = layout(cfg), "free_run" if free_run else "assimilation"
    return {
        "out": run.filter_store(model, kind),
        "latent": run.latent(model, "operational"),
        "operational_store": run.store(model),
        "forecast_model": run.model_file(model, "forecast.pt"),
        "autoencoder": run.model_file(model, "autoencoder.pt"),
        "pseudo_obs": run.pseudo_obs(cfg.idealized.model),
    }


def resolve_paths(args, cfg) -> dict[str, Path]:
    """The paths the command reads and writes: the options given, else the rule's."""
    paths = run_paths(args, default_paths(cfg, args.model, args.free_run))
    # the statistics go beside the store, wherever --out puts it (the rule's path when it is the default)
    paths["statistics"] = Path(args.statistics or paths["out"].with_name(f"{args.model}_statistics.json"))
    others = set(source_models(cfg.da.observations.sources)) - {cfg.idealized.model}
    paths["other_pseudo_obs"] = [
        Path(p) for p in args.other_pseudo_obs or [layout(cfg).pseudo_obs(m) for m in sorted(others)]
    ]
    return paths


def run(args) -> int:
    # torch (through the filter) loads only when the stage runs: `bridging --help` imports every command module
    from ..da.run import assimilate, free_run

    cfg = load_model_settings(args)
    paths = resolve_paths(args, cfg)
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
        other_pseudo_obs=paths["other_pseudo_obs"],
        da=da,
        grid=cfg.grid.model_dump(),
        allow_failed_gate=cfg.forecast.gate.allow_failed,
        device=cfg.compute.device,
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
