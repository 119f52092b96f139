"""``bridging noise-budget``: one-step predictability of a run's observables per source, at equal record length."""

from __future__ import annotations

from pathlib import Path

from ._options import add_config_option, add_model_option, layout, load_model_settings


def register(sub) -> None:
    p = sub.add_parser(
        "noise-budget",
        help="one-step residual variance of the operational, reanalysis and pseudo-observation records at equal "
        "length (same VAR operator); write noise_budget.json and noise_budget.md",
        description="Reads the latent stores and the pseudo-observations of the config's run "
        "folder (run `make run` first). Why: the filter's Q is fitted on operational and reanalysis months but has "
        "to describe the idealized model's pseudo-observations (docs/method.md, Filter).",
    )
    add_model_option(p)
    add_config_option(p)
    p.add_argument("--lags", type=int, nargs="+", default=[1, 3, 6, 12], help="months of history of the VAR")
    p.add_argument("--eofs", type=int, default=10, help="leading EOFs of the observables the VAR uses")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..models.predictability import noise_budget_stage

    cfg = load_model_settings(args)
    run_layout = layout(cfg)
    path = noise_budget_stage(
        run_layout.latent(args.model, "operational"),
        run_layout.latent(args.model, "reanalysis"),
        run_layout.pseudo_obs(cfg.idealized.model),
        Path(args.out),
        reanalysis_share=cfg.curriculum.p_max,
        lags=args.lags,
        n_eofs=args.eofs,
    )
    print(f"wrote {path}")
    return 0
