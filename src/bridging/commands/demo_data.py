"""``bridging demo-data``: generate the synthetic demo data set (CESM2 / GFDL-CM4 Omon and ORAS5 layouts)."""

from __future__ import annotations

from ..atomic import check_writable
from ._options import add_config_option, load_settings


def register(sub) -> None:
    p = sub.add_parser(
        "demo-data",
        help="generate the synthetic demo data (operational models + reanalysis in their real file layouts)",
        description="Generate the demo data as the `demo_data` rule does; settings from the `demo` config section.",
    )
    p.add_argument("--out", help="output folder (default: demo.output_dir); replaced as a whole")
    p.add_argument("--full-record", action="store_true", help="operational models over the full 1850–2014 record")
    add_config_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    # the scientific stack loads only when the command runs: `bridging --help` imports every command module
    from ..demo.generate import generate_demo_data, load_statistics, plan_sources
    from ..idealized.stats import summary_line

    demo = load_settings(args).demo
    if args.full_record:
        demo.full_record = True
    out = generate_demo_data(check_writable(args.out or demo.output_dir), demo)
    for plan in plan_sources(demo):
        record = load_statistics(out, plan.source_id)
        print(f"{plan.source_id} {record['years'][0]}–{record['years'][1]}: {summary_line(record['statistics'])}")
        print(
            f"{'':>{len(plan.source_id)}} long run {record['long_run']['years']} yr: {summary_line(record['long_run']['statistics'])}"
        )
    print(f"wrote {out}")
    return 0
