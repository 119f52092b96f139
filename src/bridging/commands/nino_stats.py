"""``bridging nino-stats``: Niño 3 / 3.4 / 4 moments and DJF event counts of any monthly gridded SST file."""

from __future__ import annotations

import json

from ._options import add_config_option, load_settings


def register(sub) -> None:
    p = sub.add_parser(
        "nino-stats",
        help="Niño index statistics and DJF event counts of a monthly SST file or project store",
        description=(
            "Computes the Niño 3, 3.4 and 4 index anomalies (cos-lat weighted box means over ocean cells, monthly "
            "climatology of the whole record removed) of a regular lat/lon monthly file (netCDF or zarr; "
            "coordinates found by their CF attributes or names, 1-D or 2-D, 0-360 or -180-180, any calendar, any "
            "temperature units) or a project store, and prints their std, "
            "skewness, Pearson kurtosis and the DJF EP / CP El Nino and La Nina counts, exactly as the workflow does."
        ),
    )
    p.add_argument("file", help="monthly gridded file (netCDF, zarr) or project store (RUN/stores/<source>.zarr)")
    p.add_argument("--variable", default="sst", help="name of the SST variable in the file (default: sst)")
    p.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    add_config_option(p)  # the event thresholds: diagnostics.event_threshold / extreme_threshold
    p.set_defaults(func=run)


def run(args) -> int:
    # the scientific stack loads only when the command runs: `bridging --help` imports every command module
    from ..diagnostics.run import jsonable, nino_stats

    settings = load_settings(args).diagnostics
    result = nino_stats(args.file, args.variable, settings)
    if args.json:
        print(json.dumps(jsonable(result), indent=2, allow_nan=False))
        return 0
    print(
        f"{result['file']}: {result['variable']}, {result['years'][0]}–{result['years'][1]}, "
        f"{result['n_months']} months × {result['n_members']} member(s)"
    )
    print(f"{'index':<8} {'std (°C)':>9} {'skewness':>9} {'kurtosis':>9}")
    for name in ("nino3", "nino34", "nino4"):
        s = result[name]
        print(f"{name:<8} {s['std']:>9.3f} {s['skewness']:>+9.3f} {s['kurtosis']:>9.3f}")
    ev = result["events"]
    print(
        f"DJF events in {ev['winters']} winters: EP {ev['ep']}, CP {ev['cp']}, La Niña {ev['la_nina']}, extreme EP {ev['extreme_ep']}"
    )
    return 0
