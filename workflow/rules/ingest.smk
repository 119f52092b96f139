# Ingestion per source (operational models and the reanalysis): regrid weights from the source's SST grid, then
# the analysis-ready store (SST and thermocline depth on the target grid, climatology, anomaly std).
# Needs catalog.smk included before this file.

# Per source only its own entry of `data`, tagged with its kind: editing another source re-runs nothing here.
SOURCE_CFG = {
    **{name: {"kind": "operational", **copy.deepcopy(operational_cfg(name))} for name in OPERATIONAL},
    REANALYSIS: {"kind": "reanalysis", **cfg("data", "reanalysis")},
}


rule regrid_weights:
    input:
        code=src(*script_imports("regrid_weights")),
        catalog=CATALOG,
        catalog_csv=CATALOG_CSV,
    output:
        LAYOUT.weights("{source}"),
    log:
        log("regrid_weights_{source}"),
    benchmark:
        bench("regrid_weights_{source}")
    conda:
        ENV
    threads: 1
    resources:
        # The KD-trees of a 0.25° global grid (ORCA025, 1.5 M points) and its first SST month.
        mem_mb=3000,
        runtime=20,
    params:
        source=lambda wildcards: SOURCE_CFG[wildcards.source],
        grid=cfg("grid"),
        regrid=cfg("ingest", "regrid"),
        read_chunk_mb=cfg("ingest", "read_chunk_mb"),
    script:
        "../../scripts/regrid_weights.py"


rule ingest:
    input:
        code=src(*script_imports("ingest")),
        catalog=CATALOG,
        catalog_csv=CATALOG_CSV,
        weights=LAYOUT.weights("{source}"),
    output:
        done(LAYOUT.store("{source}")),
    log:
        log("ingest_{source}"),
    benchmark:
        bench("ingest_{source}")
    conda:
        ENV
    threads: 2
    resources:
        # thetao is read in chunks of ingest.read_chunk_mb (a few in flight per thread): 165 years of a gx1-like
        # thetao with 60 levels peaked at 1.2 GiB with 2 threads (bench/bench_ingest_memory.py).
        mem_mb=4000,
        runtime=120,
    params:
        source=lambda wildcards: SOURCE_CFG[wildcards.source],
        grid=cfg("grid"),
        ingest=cfg("ingest"),
        zarr_format=cfg("outputs", "zarr_format"),
    script:
        "../../scripts/ingest.py"
