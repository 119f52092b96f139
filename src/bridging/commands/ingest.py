"""``bridging ingest``: one source's analysis-ready store from the catalog (what the ingest rule runs)."""

from __future__ import annotations

from pathlib import Path

from ..atomic import check_writable
from ._options import add_config_option, load_settings


def register(sub) -> None:
    p = sub.add_parser(
        "ingest",
        help="build a source's store (sst, thermocline depth on the target grid) through the catalog",
        description="Catalog → readers → thermocline depth → regridding → RUN/stores/<source>.zarr, as the ingest rule "
        "does, with the data/grid/ingest sections of the config (the defaults, or --config files merged over them).",
    )
    p.add_argument("--catalog", required=True, help="catalog JSON (from `bridging catalog`)")
    p.add_argument("--source", required=True, help="source name: an operational model's `name` or the reanalysis name")
    p.add_argument("--out", required=True, help="store to write (.zarr)")
    add_config_option(p)
    p.add_argument(
        "--weights", default=None,
        help="precomputed regrid weights; default: computed now and saved next to --out as <out>.weights.nc",
    )  # fmt: skip
    p.add_argument("--threads", type=int, default=1, help="threads of the dask scheduler")
    p.set_defaults(func=run)


def run(args) -> int:
    # the scientific stack loads only when the command runs: `bridging --help` imports every command module
    from ..ingest import build_weights, ingest_source, source_config

    cfg = load_settings(args)
    check_writable(args.out, (".zarr",))
    if args.weights is None:
        check_writable(Path(args.out).with_suffix(".weights.nc"), (".nc",))
    source = source_config(args.source, cfg.data)
    weights = args.weights
    if weights is None:
        weights = Path(args.out).with_suffix(".weights.nc")
        build_weights(weights, catalog=args.catalog, source=source, grid=cfg.grid, regrid_cfg=cfg.ingest.regrid,
                      chunk_mb=cfg.ingest.read_chunk_mb)  # fmt: skip
    out = ingest_source(
        args.out,
        catalog=args.catalog,
        weights=weights,
        source=source,
        grid=cfg.grid,
        ingest=cfg.ingest,
        threads=args.threads,
    )
    print(f"wrote {out}")
    return 0
