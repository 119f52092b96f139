"""``bridging decode``: decode the filter's members into the bridging model's (or the free run's) source store."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "decode",
        help="decode analysis (or free-run) members and the ensemble mean into full SST / thermocline fields",
        description="The `decode` rule's stage; paths default to the run folder of the config.",
    )
    p.add_argument("--model", required=True, help="operational model name (data.operational[].name)")
    p.add_argument("--config", nargs="+", default=[], metavar="FILE", help="config files merged over the defaults")
    p.add_argument("--free-run", action="store_true", help="decode the free run into stores/free_run_<model>.zarr")
    p.add_argument("--assimilation", help="the filter's store (default: the rule's input)")
    p.add_argument("--autoencoder", help="autoencoder.pt")
    p.add_argument("--operational-store", help="the operational model's source store")
    p.add_argument("--out", help="output store (default: stores/bridging_<model>.zarr or stores/free_run_<model>.zarr)")
    p.add_argument("--experiment", type=int, default=0, help="experiment of a sweep to decode")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: compute.device")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..da.decode import decode_filter_store
    from ..errors import ConfigError
    from ..runtime import limit_threads
    from ..settings import Config, load_config

    cfg = load_config(*args.config) if args.config else Config()
    if args.model not in [m.name for m in cfg.data.operational]:
        raise ConfigError(f"--model {args.model}: not one of data.operational {[m.name for m in cfg.data.operational]}")
    limit_threads(cfg.compute.torch_threads)
    run_dir = Path(cfg.run.results_dir) / cfg.run.name
    kind = "free_run" if args.free_run else "bridging"
    from ..atomic import check_writable

    out_path = check_writable(args.out or run_dir / "stores" / f"{kind}_{args.model}.zarr", (".zarr",))
    out = decode_filter_store(
        out_path,
        assimilation=args.assimilation or run_dir / ("free_run" if args.free_run else "assimilation") / f"{args.model}.zarr",
        autoencoder=args.autoencoder or run_dir / "models" / args.model / "autoencoder.pt",
        operational_store=args.operational_store or run_dir / "stores" / f"{args.model}.zarr",
        decode=cfg.decode,
        model_name=args.model,
        device=args.device or cfg.compute.device,
        experiment=args.experiment,
    )
    print(f"wrote {out}")
    return 0
