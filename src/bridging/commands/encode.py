"""``bridging encode``: encode the operational and reanalysis records into the latent stores of one model."""

from __future__ import annotations

from pathlib import Path

from ..atomic import check_writable
from ._options import add_config_option, add_device_option, add_model_option, layout, load_model_settings, run_paths


def register(sub) -> None:
    p = sub.add_parser(
        "encode",
        help="encode both records with a trained autoencoder into latent stores (z, y)",
        description="The `encode` rule's stage. Paths default to the run folder of the config (results/<run>/...).",
    )
    add_model_option(p)
    add_config_option(p)
    p.add_argument("--autoencoder", help="autoencoder.pt")
    p.add_argument("--operational-store", help="the operational model's source store")
    p.add_argument("--reanalysis-store", help="the reanalysis source store")
    p.add_argument("--pseudo-obs", help="pseudo-observation store (gives the observable positions)")
    p.add_argument("--out-dir", help="folder for operational.zarr and reanalysis.zarr")
    add_device_option(p)
    p.set_defaults(func=run)


def default_paths(cfg, model: str) -> dict[str, str]:
    """The paths of the `encode` rule's job for ``model``."""
    run = layout(cfg)
    return {
        "autoencoder": run.model_file(model, "autoencoder.pt"),
        "operational_store": run.store(model),
        "reanalysis_store": run.store(cfg.data.reanalysis.name),
        "pseudo_obs": run.pseudo_obs(cfg.idealized.model),
        "out_dir": run.latent_dir(model),
    }


def resolve_paths(args, cfg) -> dict[str, Path]:
    """The paths the command reads and writes: the options given, else the rule's."""
    return run_paths(args, default_paths(cfg, args.model))


def run(args) -> int:
    # torch loads only when the stage runs: `bridging --help` imports every command module
    from ..models.latent import encode_sources

    cfg = load_model_settings(args)
    paths = resolve_paths(args, cfg)
    check_writable(paths["out_dir"] / "operational.zarr", (".zarr",))
    written = encode_sources(
        paths["autoencoder"],
        paths["operational_store"],
        paths["reanalysis_store"],
        paths["pseudo_obs"],
        paths["out_dir"] / "operational.zarr",
        paths["out_dir"] / "reanalysis.zarr",
        autoencoder=cfg.autoencoder,
        compute=cfg.compute,
        grid=cfg.grid,
    )
    print("wrote " + " and ".join(str(p) for p in written.values()))
    return 0
