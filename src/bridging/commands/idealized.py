"""``bridging idealized``: run an idealized ENSO model (CF23 or CFY22) and stream its monthly output to zarr."""

from __future__ import annotations

from ..atomic import check_writable
from ._options import add_config_option, load_settings


def register(sub) -> None:
    p = sub.add_parser(
        "idealized",
        help="run CF23 or CFY22 (many members, streamed to zarr)",
        description="Run an idealized ENSO model; parameters from the config (defaults, or --config files merged in order).",
    )
    p.add_argument("model", choices=["cf23", "cfy22"])
    p.add_argument("--out", required=True, help="output zarr store")
    p.add_argument("--years", type=int, help="model years after the spin-up (default: idealized.reference_years)")
    p.add_argument("--seed", type=int, help="random seed (default: idealized.seed_reference)")
    p.add_argument("--members", type=int, default=1, help="independent members run at once (default 1)")
    p.add_argument("--spinup-years", type=int, help="years discarded first (default: idealized.spinup_years)")
    p.add_argument("--chunk-years", type=int, help="years per streamed chunk (default: idealized.chunk_years)")
    p.add_argument("--threads", type=int, default=1, help="threads of the compiled member loop (default 1)")
    add_config_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    # the scientific stack loads only when the command runs: `bridging --help` imports every command module
    from ..idealized.run import open_run, run_to_zarr
    from ..idealized.stats import run_statistics, summary_line

    check_writable(args.out, (".zarr",))
    section = load_settings(args).idealized
    out = run_to_zarr(
        args.out,
        section,
        model=args.model,
        years=args.years if args.years is not None else section.reference_years,
        seed=args.seed if args.seed is not None else section.seed_reference,
        members=args.members,
        spinup_years=args.spinup_years,
        chunk_years=args.chunk_years,
        threads=args.threads,
    )
    print(f"wrote {out}: {summary_line(run_statistics(open_run(out)))}")
    return 0
