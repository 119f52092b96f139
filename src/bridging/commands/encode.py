"""``bridging encode``: encode the operational and reanalysis records into the latent stores of one model."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "encode",
        help="encode both records with a trained autoencoder into latent stores (z, y)",
        description="The `encode` rule's stage. Paths default to the run folder of the config (results/<run>/...).",
    )
    p.add_argument("--model", required=True, help="operational model name (data.operational[].name)")
    p.add_argument("--config", nargs="+", default=[], metavar="FILE", help="config files merged over the defaults")
    p.add_argument("--autoencoder", help="autoencoder.pt")
    p.add_argument("--operational-store", help="the operational model's source store")
    p.add_argument("--reanalysis-store", help="the reanalysis source store")
    p.add_argument("--pseudo-obs", help="pseudo-observation store (gives the observable positions)")
    p.add_argument("--out-dir", help="folder for operational.zarr and reanalysis.zarr")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: compute.device")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..models.latent import encode_sources
    from .train_autoencoder import default_paths, load_cli_config

    cfg = load_cli_config(args)
    run_dir = Path(cfg.run.results_dir) / cfg.run.name
    paths = default_paths(run_dir, args.model, cfg.data.reanalysis.name, cfg.idealized.model)
    paths["autoencoder"] = paths.pop("out_dir") / "autoencoder.pt"
    paths["out_dir"] = run_dir / "latent" / args.model
    for key in paths:
        if getattr(args, key, None):
            paths[key] = Path(getattr(args, key))
    from ..atomic import check_writable

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
