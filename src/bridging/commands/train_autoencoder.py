"""``bridging train-autoencoder``: train the physically-augmented autoencoder of one operational model."""

from __future__ import annotations

from pathlib import Path

from ..atomic import check_writable
from ._options import add_config_option, add_device_option, add_model_option, layout, load_model_settings, run_paths


def register(sub) -> None:
    p = sub.add_parser(
        "train-autoencoder",
        help="train the physically-augmented autoencoder of one operational model (checkpoint, metrics JSON, curves)",
        description="The `train_autoencoder` rule's stage. Paths default to the run folder of the config "
        "(results/<run>/...). An interrupted run continues from its last epoch when re-run with the same settings.",
    )
    add_model_option(p)
    add_config_option(p)
    p.add_argument("--operational-store", help="the operational model's source store")
    p.add_argument("--reanalysis-store", help="the reanalysis source store")
    p.add_argument("--pseudo-obs", help="pseudo-observation store (gives the observable positions)")
    p.add_argument("--out-dir", help="folder for autoencoder.pt, autoencoder_metrics.json, autoencoder_curves.png")
    add_device_option(p)
    p.set_defaults(func=run)


def default_paths(cfg, model: str) -> dict[str, str]:
    """The paths of the `train_autoencoder` rule's job for ``model``."""
    run = layout(cfg)
    return {
        "operational_store": run.store(model),
        "reanalysis_store": run.store(cfg.data.reanalysis.name),
        "pseudo_obs": run.pseudo_obs(cfg.idealized.model),
        "out_dir": run.model_dir(model),
    }


def resolve_paths(args, cfg) -> dict[str, Path]:
    """The paths the command reads and writes: the options given, else the rule's."""
    return run_paths(args, default_paths(cfg, args.model))


def run(args) -> int:
    # torch loads only when the stage runs: `bridging --help` imports every command module
    from ..models.autoencoder import train_autoencoder

    cfg = load_model_settings(args)
    paths = resolve_paths(args, cfg)
    out = paths["out_dir"]
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
    print(
        f"held-out L_recon {held['recon_loss']:.4g}, L_corr {held['corr_loss']:.3f}, ||C|| {held['cross_cov_norm']:.3g}, "
        f"y-from-z R2 {held['y_from_z_r2']:.3f}"
    )
    return 0
