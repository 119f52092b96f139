"""``bridging catalog``: scan directory trees for CMIP6 / ORAS5 files and write an intake-esm catalog (JSON + CSV)."""

from __future__ import annotations

from ..atomic import check_writable
from ..io.catalog import build_catalog


def register(sub) -> None:
    p = sub.add_parser("catalog", help="scan folders for CMIP6 and ORAS5 files; write an intake-esm catalog")
    p.add_argument("roots", nargs="+", metavar="ROOT", help="directory trees to scan (DRS trees or flat folders)")
    p.add_argument("--out", required=True, help="catalog JSON to write; the CSV goes next to it (same name, .csv)")
    p.add_argument("--csv", default=None, help="CSV path (default: --out with .csv)")
    p.set_defaults(func=run)


def run(args) -> int:
    check_writable(args.out, (".json",))
    if args.csv:
        check_writable(args.csv, (".csv",))
    json_path, csv_path = build_catalog(args.roots, args.out, args.csv)
    print(f"wrote {json_path} and {csv_path}")
    return 0
