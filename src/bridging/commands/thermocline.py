"""``bridging thermocline``: depth of the 20 °C isotherm from thetao file(s), on their native grid."""

from __future__ import annotations

from .regrid import add_run_options


def register(sub) -> None:
    p = sub.add_parser("thermocline", help="isotherm (20 °C) depth from thetao file(s), native grid")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="thetao (or ORAS5 votemper) netCDF files of one source")
    p.add_argument("--out", required=True, help="output .nc or .zarr")
    p.add_argument("--isotherm", type=float, default=20.0, help="isotherm in °C (default 20)")
    add_run_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    # the scientific stack loads only when the command runs: `bridging --help` imports every command module
    from ..ingest import thermocline_files

    out = thermocline_files(args.inputs, args.out, isotherm=args.isotherm, chunk_mb=args.chunk_mb, threads=args.threads)
    print(f"wrote {out}")
    return 0
