"""``bridging train-autoencoder``: train the physically-augmented autoencoder of one operational model."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "train-autoencoder",
        help="train the physically-augmented autoencoder of one operational model (checkpoint, metrics JSON, curves)",
        description="The `train_autoencoder` rule's stage. Paths default to the run folder of the config "
        "(results/<run>/...). An interrupted run continues from its last epoch when re-run with the same settings.",
    )
    p.add_argument("--model", required=True, help="operational model name (data.operational[].name)")
    p.add_argument("--config", nargs="+", default=[], metavar="FILE", help="config files merged over the defaults")
    p.add_argument("--operational-store", help="the operational model's source store")
    p.add_argument("--reanalysis-store", help="the reanalysis source store")
    p.add_argument("--pseudo-obs", help="pseudo-observation store (gives the observable positions)")
    p.add_argument("--out-dir", help="folder for autoencoder.pt, autoencoder_metrics.json, autoencoder_curves.png")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: compute.device")
    p.set_defaults(func=run)


def default_paths(run_dir: Path, model: str, reanalysis: str, idealized: str) -> dict[str, Path]:
    """The paths the Snakemake rule uses (workflow/rules/models.smk)."""
    return {
        "operational_store": run_dir / "stores" / f"{model}.zarr",
        "reanalysis_store": run_dir / "stores" / f"{reanalysis}.zarr",
        "pseudo_obs": run_dir / "pseudo_obs" / f"{idealized}.zarr",
        "out_dir": run_dir / "models" / model,
    }


def load_cli_config(args):
    """The validated config of a models CLI command, with --device applied and threads limited."""
    from ..errors import ConfigError
    from ..runtime import limit_threads
    from ..settings import Config, load_config

    cfg = load_config(*args.config) if args.config else Config()
    if args.model not in [m.name for m in cfg.data.operational]:
        raise ConfigError(f"--model {args.model}: not one of data.operational {[m.name for m in cfg.data.operational]}")
    if args.device:
        cfg.compute.device = args.device
    limit_threads(cfg.compute.torch_threads)
    return cfg


def run(args) -> int:
    from ..models.autoencoder import train_autoencoder

    cfg = load_cli_config(args)
    paths = default_paths(Path(cfg.run.results_dir) / cfg.run.name, args.model, cfg.data.reanalysis.name, cfg.idealized.model)
    for key in paths:
        if getattr(args, key, None):
            paths[key] = Path(getattr(args, key))
    out = paths["out_dir"]
    from ..atomic import check_writable

    check_writable(out / "autoencoder.pt", (".pt",))
    record = train_autoencoder(
        paths["operational_store"],
        paths["reanalysis_store"],
        paths["pseudo_obs"],
        out / "autoencoder.pt",
        out / "autoencoder_metrics.json",
        out / "autoencoder_curves.png",
        autoencoder=cfg.autoencoder,
        curriculum=cfg.curriculum,
        compute=cfg.compute,
        grid=cfg.grid,
    )
    held = record["final"]["operational_heldout"]
    print(f"wrote {out}/autoencoder.pt (best epoch {record['best_epoch'] + 1} of {record['epochs_run']})")
    print(f"held-out L_recon {held['recon_loss']:.4g}, L_corr {held['corr_loss']:.3f}, ||C|| {held['cross_cov_norm']:.3g}, "
          f"y-from-z R2 {held['y_from_z_r2']:.3f}")
    return 0
