"""``bridging forecast-study``: train and gate forecast-model variants × seeds on a finished run's latent stores."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ._options import add_config_option, add_device_option, add_model_option, load_model_settings
from .train_forecast import default_paths


def register(sub) -> None:
    p = sub.add_parser(
        "forecast-study",
        help="train and gate the linear model (without and with the noise head) and the LSTM at several hidden sizes, "
        "for several seeds; write study.json and study.md",
        description="Reads the latent stores, autoencoder and source stores of the config's run folder (run "
        "`snakemake encode` or `make run` first) and trains into --out; the run's own models are not touched.",
    )
    add_model_option(p)
    add_config_option(p)
    p.add_argument("--hidden", type=int, nargs="+", default=[32, 64, 128], help="LSTM hidden sizes")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training and free-run seeds")
    p.add_argument(
        "--variants", nargs="+", help="run only these variants (linear, linear+head, lstm<hidden>); default: all"
    )
    p.add_argument("--out", required=True, help="output folder")
    add_device_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..models.forecast_study import forecast_study, standard_variants

    cfg = load_model_settings(args)
    variants = standard_variants(args.hidden)
    if args.variants:
        unknown = sorted(set(args.variants) - set(variants))
        if unknown:
            raise ConfigError(f"--variants: unknown {unknown}; choose from {sorted(variants)}")
        variants = {name: variants[name] for name in args.variants}
    paths = {key: Path(value) for key, value in default_paths(cfg, args.model).items()}
    study = forecast_study(
        paths,
        variants,
        args.seeds,
        args.out,
        forecast=cfg.forecast,
        curriculum=cfg.curriculum,
        compute=cfg.compute,
        grid=cfg.grid,
    )
    print(f"wrote {Path(args.out) / 'study.md'} ({len(study['runs'])} trained models)")
    return 0
