# The catalogs of the run's outputs (intake-esm): results/<run>/catalog.json lists every zarr store, so a user opens
# the run with intake.open_esm_datastore(...).to_dataset_dict(); diagnostics/catalog.json lists the diagnostics
# netCDF files (bridging.io.results_catalog). Include after the rules whose outputs it lists.


rule results_catalog:
    input:
        # the producing rules' outputs (whatever form they take: a store folder or a marker beside it); the
        # catalog itself lists the stores at their RunLayout paths (bridging.io.results_catalog)
        code=src(*script_imports("results_catalog")),
        ingested=expand(rules.ingest.output, source=SOURCES),
        idealized=rules.idealized_reference.output,
        pseudo_obs=expand(rules.pseudo_obs.output, idealized=IDEALIZED),
        latent=expand(rules.encode.output, model=OPERATIONAL),
        assimilation=expand(rules.assimilate.output, model=OPERATIONAL),
        free_run=expand(rules.free_run.output, model=OPERATIONAL),
        decoded=expand(rules.decode.output, kind=["bridging", "free_run"], model=OPERATIONAL),
        diagnostics=expand(rules.diagnostics_source.output, store=DIAGNOSTICS_STORES),
        diagnostics_idealized=expand(rules.diagnostics_idealized.output, record=list(IDEALIZED_STORES)),
    output:
        json=LAYOUT.results_catalog("json"),
        csv=LAYOUT.results_catalog("csv"),
        diagnostics_json=LAYOUT.results_catalog("json", "diagnostics"),
        diagnostics_csv=LAYOUT.results_catalog("csv", "diagnostics"),
    log:
        log("results_catalog"),
    benchmark:
        bench("results_catalog")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        run=cfg("run"),
        outputs={
            "operational": OPERATIONAL,
            "reanalysis": REANALYSIS,
            "idealized": IDEALIZED,
            "gridded_diagnostics": DIAGNOSTICS_STORES,
            "idealized_diagnostics": list(IDEALIZED_STORES),
        },
    script:
        "../../scripts/results_catalog.py"
