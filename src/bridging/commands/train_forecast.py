"""``bridging train-forecast``: fit the linear and train the LSTM latent forecast model of one model, with its gate."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "train-forecast",
        help="train the latent forecast model (forecast.kind), gate it, write forecast.pt + metrics + figures",
        description="The `train_forecast` rule's stage. Paths default to the run folder of the config "
        "(results/<run>/...). Exits 1 when the saved model failed its gate (the filter would refuse it).",
    )
    p.add_argument("--model", required=True, help="operational model name (data.operational[].name)")
    p.add_argument("--config", nargs="+", default=[], metavar="FILE", help="config files merged over the defaults")
    p.add_argument("--latent-dir", help="folder with operational.zarr and reanalysis.zarr")
    p.add_argument("--autoencoder", help="autoencoder.pt (decodes for the gate)")
    p.add_argument("--operational-store", help="the operational model's source store")
    p.add_argument("--reanalysis-store", help="the reanalysis source store")
    p.add_argument("--out-dir", help="folder for forecast.pt, forecast_metrics.json, forecast_curves.png, forecast_gate.png")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: compute.device")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..models.forecast import train_forecast
    from .train_autoencoder import default_paths, load_cli_config

    cfg = load_cli_config(args)
    run_dir = Path(cfg.run.results_dir) / cfg.run.name
    paths = default_paths(run_dir, args.model, cfg.data.reanalysis.name, cfg.idealized.model)
    paths.pop("pseudo_obs")
    paths["autoencoder"] = paths["out_dir"] / "autoencoder.pt"
    paths["latent_dir"] = run_dir / "latent" / args.model
    for key in paths:
        if getattr(args, key, None):
            paths[key] = Path(getattr(args, key))
    out = paths["out_dir"]
    from ..atomic import check_writable

    check_writable(out / "forecast.pt", (".pt",))
    record = train_forecast(
        paths["latent_dir"] / "operational.zarr",
        paths["latent_dir"] / "reanalysis.zarr",
        paths["autoencoder"],
        paths["operational_store"],
        paths["reanalysis_store"],
        out / "forecast.pt",
        out / "forecast_metrics.json",
        out / "forecast_curves.png",
        out / "forecast_gate.png",
        forecast=cfg.forecast,
        curriculum=cfg.curriculum,
        compute=cfg.compute,
        grid=cfg.grid,
    )
    gate = record["gate"]
    print(f"wrote {out}/forecast.pt ({record['kind']}); gate {'passed' if gate['passed'] else 'FAILED'}")
    for failure in gate["failures"]:
        print(f"  {failure}")
    return 0 if gate["passed"] else 1
