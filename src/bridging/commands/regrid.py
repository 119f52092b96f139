"""``bridging regrid``: regrid one variable of any supported file(s) of one source to the target grid."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "regrid",
        help="regrid tos/thetao/sosstsst/so20chgt file(s) of one source to the target grid",
        description="Regrid one variable of CMIP6 Omon or ORAS5 files (one file or a record split over many) to the "
        "regular target grid. Weights are computed from the first month's land mask unless --weights is given.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="netCDF files of one variable of one source")
    p.add_argument("--variable", default=None, help="variable name in the files (default: the only known one present)")
    p.add_argument("--out", required=True, help="output .nc or .zarr")
    add_grid_options(p)
    p.add_argument(
        "--method", choices=("bilinear", "idw", "nearest"), default=None, help="regrid method (default: config default)"
    )
    p.add_argument("--neighbours", type=int, default=None, help="k of idw")
    p.add_argument("--max-distance", type=float, default=None, help="max great-circle distance (deg) to an ocean point")
    p.add_argument(
        "--weights", default=None, help="use these precomputed weights (.nc from --save-weights or the workflow)"
    )
    p.add_argument("--save-weights", default=None, help="also save the computed weights here (.nc)")
    add_run_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    # the scientific stack loads only when the command runs: `bridging --help` imports every command module
    from ..ingest import regrid_files
    from ..settings import RegridSection

    regrid_cfg = RegridSection().model_dump()
    for key, value in (
        ("method", args.method),
        ("neighbours", args.neighbours),
        ("max_distance_deg", args.max_distance),
    ):
        if value is not None:
            regrid_cfg[key] = value
    out = regrid_files(
        args.inputs, args.out, variable=args.variable, grid=grid_from_args(args), regrid_cfg=regrid_cfg,
        weights_in=args.weights, weights_out=args.save_weights, chunk_mb=args.chunk_mb, threads=args.threads,
    )  # fmt: skip
    print(f"wrote {out}")
    return 0


# Options shared with `bridging thermocline` (target grid, chunking, threads).
def add_grid_options(p) -> None:
    g = p.add_argument_group("target grid (default: the config defaults, 20°S–20°N, 120–280°E, 1°)")
    for name in ("lat-min", "lat-max", "lon-min", "lon-max", "resolution"):
        g.add_argument(f"--{name}", type=float, default=None)


def grid_from_args(args) -> dict:
    from ..settings import GridSection  # pydantic: see run()

    grid = GridSection().model_dump()
    for key in ("lat_min", "lat_max", "lon_min", "lon_max", "resolution"):
        value = getattr(args, key)
        if value is not None:
            grid[key] = value
    return grid


def add_run_options(p) -> None:
    p.add_argument("--threads", type=int, default=1, help="threads of the dask scheduler (default 1)")
    p.add_argument("--chunk-mb", type=float, default=128.0, help="target MB per chunk of source data (default 128)")
