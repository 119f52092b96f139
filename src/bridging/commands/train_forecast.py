"""``bridging train-forecast``: fit the linear and train the LSTM latent forecast model of one model, with its gate."""

from __future__ import annotations

from pathlib import Path

from ..atomic import check_writable
from ._options import add_config_option, add_device_option, add_model_option, layout, load_model_settings, run_paths


def register(sub) -> None:
    p = sub.add_parser(
        "train-forecast",
        help="train the latent forecast model (forecast.kind), gate it, write forecast.pt + metrics + figures",
        description="The `train_forecast` rule's stage. Paths default to the run folder of the config "
        "(results/<run>/...). Exits 1 when the saved model failed its gate (the filter would refuse it).",
    )
    add_model_option(p)
    add_config_option(p)
    p.add_argument("--latent-dir", help="folder with operational.zarr and reanalysis.zarr")
    p.add_argument("--autoencoder", help="autoencoder.pt (decodes for the gate)")
    p.add_argument("--operational-store", help="the operational model's source store")
    p.add_argument("--reanalysis-store", help="the reanalysis source store")
    p.add_argument(
        "--out-dir", help="folder for forecast.pt, forecast_metrics.json, forecast_curves.png, forecast_gate.png"
    )
    add_device_option(p)
    p.set_defaults(func=run)


def default_paths(cfg, model: str) -> dict[str, str]:
    """The paths of the `train_forecast` rule's job for ``model``."""
    run = layout(cfg)
    return {
        "latent_dir": run.latent_dir(model),
        "autoencoder": run.model_file(model, "autoencoder.pt"),
        "operational_store": run.store(model),
        "reanalysis_store": run.store(cfg.data.reanalysis.name),
        "out_dir": run.model_dir(model),
    }


def resolve_paths(args, cfg) -> dict[str, Path]:
    """The paths the command reads and writes: the options given, else the rule's."""
    return run_paths(args, default_paths(cfg, args.model))


def run(args) -> int:
    # torch loads only when the stage runs: `bridging --help` imports every command module
    from ..models.forecast import train_forecast_into

    cfg = load_model_settings(args)
    paths = resolve_paths(args, cfg)
    out = paths["out_dir"]
    check_writable(out / "forecast.pt", (".pt",))
    record = train_forecast_into(
        paths["latent_dir"],
        paths["autoencoder"],
        paths["operational_store"],
        paths["reanalysis_store"],
        out,
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
