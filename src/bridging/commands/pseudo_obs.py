"""``bridging pseudo-obs``: pseudo-observations of the configured idealized model on the target grid."""

from __future__ import annotations

from ..atomic import check_writable
from ..errors import ConfigError
from ._options import add_config_option, layout, load_settings


def register(sub) -> None:
    p = sub.add_parser(
        "pseudo-obs",
        help="run the idealized model and write its pseudo-observations (zarr)",
        description="Pseudo-observations as the `pseudo_obs` rule makes them; config from the defaults or --config files.",
    )
    p.add_argument("--out", required=True, help="output zarr store")
    p.add_argument(
        "--model",
        choices=["cf23", "cfy22", "xro"],
        help="idealized model (default: idealized.model; xro: rule pseudo_obs_xro)",
    )
    p.add_argument("--reanalysis", help="xro only: the regridded reanalysis store it is fitted to (default: the run's)")
    p.add_argument("--years", type=int, help="record length (default: idealized.pseudo_obs_years)")
    p.add_argument("--seed", type=int, help="seed (default: idealized.seed_pseudo_obs)")
    add_config_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    # the scientific stack loads only when the command runs: `bridging --help` imports every command module
    from ..idealized.pseudo_obs import make_pseudo_obs

    check_writable(args.out, (".zarr",))
    cfg = load_settings(args)
    idealized = cfg.idealized.model_copy()
    if args.years is not None:
        idealized.pseudo_obs_years = args.years
    if args.seed is not None:
        idealized.seed_pseudo_obs = args.seed
    if args.model == "xro":
        from ..idealized.xro_obs import make_xro_pseudo_obs

        reanalysis = args.reanalysis or layout(cfg).store(cfg.data.reanalysis.name)
        out = make_xro_pseudo_obs(args.out, reanalysis, idealized=idealized, pseudo_obs=cfg.pseudo_obs, grid=cfg.grid)
        print(f"wrote {out}")
        return 0
    if args.reanalysis:
        raise ConfigError("--reanalysis is for --model xro only (CF23 and CFY22 are not fitted)")
    if args.model:
        idealized.model = args.model
    out = make_pseudo_obs(args.out, idealized=idealized, pseudo_obs=cfg.pseudo_obs, grid=cfg.grid)
    print(f"wrote {out}")
    return 0
