# The input catalog: data.catalog_roots (plus the demo data folder when demo.enabled) scanned for CMIP6 and ORAS5
# files by name, written as an intake-esm catalog (JSON + CSV with absolute paths) that the ingestion reads.
# Needs the demo rules included before this file (it references rules.demo_data when demo.enabled).
import os

from bridging.io.catalog import listing_fingerprint

_DEMO_ROOT = os.path.normpath(config["demo"]["output_dir"])
CATALOG_ROOTS = list(
    dict.fromkeys(
        [os.path.normpath(r) for r in config["data"]["catalog_roots"]]
        + ([_DEMO_ROOT] if config["demo"]["enabled"] else [])
    )
)
# Roots no rule produces: their file listing (names and sizes, no file opened) is a parameter, so adding, removing
# or replacing input files re-runs the catalog. The demo folder is tracked through its rule instead.
_EXTERNAL_ROOTS = [r for r in CATALOG_ROOTS if not (config["demo"]["enabled"] and r == _DEMO_ROOT)]
CATALOG = LAYOUT.catalog("json")
CATALOG_CSV = LAYOUT.catalog("csv")


rule build_catalog:
    input:
        code=src(*script_imports("build_catalog")),
        demo=rules.demo_data.output if config["demo"]["enabled"] else [],
    output:
        json=CATALOG,
        csv=CATALOG_CSV,
    log:
        log("build_catalog"),
    benchmark:
        bench("build_catalog")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        roots=CATALOG_ROOTS,
        listing=listing_fingerprint(_EXTERNAL_ROOTS),
    script:
        "../../scripts/build_catalog.py"
