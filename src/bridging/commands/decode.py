"""``bridging decode``: decode the filter's members into the bridging model's (or the free run's) source store."""

from __future__ import annotations

from pathlib import Path

from ..atomic import check_writable
from ._options import add_config_option, add_device_option, add_model_option, layout, load_model_settings, run_paths


def register(sub) -> None:
    p = sub.add_parser(
        "decode",
        help="decode analysis (or free-run) members and the ensemble mean into full SST / thermocline fields",
        description="The `decode` rule's stage; paths default to the run folder of the config.",
    )
    add_model_option(p)
    add_config_option(p)
    p.add_argument("--free-run", action="store_true", help="decode the free run into stores/free_run_<model>.zarr")
    p.add_argument("--assimilation", help="the filter's store (default: the rule's input)")
    p.add_argument("--autoencoder", help="autoencoder.pt")
    p.add_argument("--operational-store", help="the operational model's source store")
    p.add_argument("--out", help="output store (default: stores/bridging_<model>.zarr or stores/free_run_<model>.zarr)")
    p.add_argument("--experiment", type=int, default=0, help="experiment of a sweep to decode")
    add_device_option(p)
    p.set_defaults(func=run)


def default_paths(cfg, model: str, free_run: bool) -> dict[str, str]:
    """The paths of the `decode` rule's job for ``model`` (the bridging model, or the free run's decoding)."""
    run = layout(cfg)
    return {
        "out": run.decoded("free_run" if free_run else "bridging", model),
        "assimilation": run.filter_store(model, "free_run" if free_run else "assimilation"),
        "autoencoder": run.model_file(model, "autoencoder.pt"),
        "operational_store": run.store(model),
    }


def resolve_paths(args, cfg) -> dict[str, Path]:
    """The paths the command reads and writes: the options given, else the rule's."""
    return run_paths(args, default_paths(cfg, args.model, args.free_run))


def run(args) -> int:
    # torch loads only when the stage runs: `bridging --help` imports every command module
    from ..da.decode import decode_filter_store

    cfg = load_model_settings(args)
    paths = resolve_paths(args, cfg)
    out_path = check_writable(paths["out"], (".zarr",))
    out = decode_filter_store(
        out_path,
        assimilation=paths["assimilation"],
        autoencoder=paths["autoencoder"],
        operational_store=paths["operational_store"],
        decode=cfg.decode,
        model_name=args.model,
        device=cfg.compute.device,
        experiment=args.experiment,
    )
    print(f"wrote {out}")
    return 0
