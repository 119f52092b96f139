# Sensitivity sweeps (config `sweeps:`, target `sweeps`, not part of `all`): per sweep ONE filter job per model for
# all its values (bridging.sweeps.filter), then per value the main run's decoding, per-source diagnostics and
# comparison on the decoded bridging model, the known-truth propagation test (against the main run's free run), and a
# summary table per sweep. Everything upstream of the filter (data,
# stores, idealized runs, trained models, latent stores) and every other source of the comparison is the main run's.
# SWEEPS (the plans) and the input functions are in common.smk. One value of a sweep is laid out as a run folder,
# results/<run>/sweeps/<sweep>/<value>/.
POINT = LAYOUT.sweep_point("{sweep}", "{value}")


wildcard_constraints:
    sweep=_alternatives(SWEEPS) if SWEEPS else "(?!)",
    value="[^/]+",


rule sweep_filter:
    input:
        code=src(*script_imports("sweep_filter")),
        latent_store=done(LAYOUT.latent("{model}", "operational")),
        operational_store=done(LAYOUT.store("{model}")),
        forecast_model=LAYOUT.model_file("{model}", "forecast.pt"),
        autoencoder=LAYOUT.model_file("{model}", "autoencoder.pt"),
        pseudo_obs=done(LAYOUT.pseudo_obs(IDEALIZED)),
    output:
        manifest=LAYOUT.sweep_filter("{sweep}", "{model}"),
    log:
        log("sweep_filter_{sweep}_{model}"),
    benchmark:
        bench("sweep_filter_{sweep}_{model}")
    conda:
        ENV
    threads: config["compute"]["torch_threads"]
    resources:
        mem_mb=8000,
        runtime=480,
        torch_jobs=1,
    params:
        sweep=lambda wc: SWEEPS[wc.sweep].params(),
        da=cfg("da"),
        grid=cfg("grid"),
        allow_failed_gate=cfg("forecast", "gate", "allow_failed"),
        device=cfg("compute", "device"),
        zarr_format=cfg("outputs", "zarr_format"),
    script:
        "../../scripts/sweep_filter.py"


rule sweep_decode:
    input:
        code=src(*script_imports("sweep_decode")),
        manifest=LAYOUT.sweep_filter("{sweep}", "{model}"),
        autoencoder=LAYOUT.model_file("{model}", "autoencoder.pt"),
        operational_store=done(LAYOUT.store("{model}")),
    output:
        done(POINT.decoded("bridging", "{model}")),
    log:
        log("sweep_decode_{sweep}_{value}_{model}"),
    benchmark:
        bench("sweep_decode_{sweep}_{value}_{model}")
    conda:
        ENV
    threads: config["compute"]["torch_threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        torch_jobs=1,
    params:
        decode=cfg("decode"),
        device=cfg("compute", "device"),
        zarr_format=cfg("outputs", "zarr_format"),
    script:
        "../../scripts/sweep_decode.py"


rule sweep_diagnostics_source:
    input:
        code=src(*script_imports("diagnostics_source")),
        store=done(POINT.decoded("bridging", "{model}")),
        layout=done(LAYOUT.pseudo_obs(IDEALIZED)),
    output:
        statistics=POINT.source_diagnostics("bridging_{model}", "statistics.json"),
        indices=POINT.source_diagnostics("bridging_{model}", "indices.nc"),
        maps=POINT.source_diagnostics("bridging_{model}", "maps.nc"),
    log:
        log("sweep_diagnostics_source_{sweep}_{value}_{model}"),
    benchmark:
        bench("sweep_diagnostics_source_{sweep}_{value}_{model}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        diagnostics=DIAGNOSTICS_STATISTICS_CFG,
    script:
        "../../scripts/diagnostics_source.py"


rule sweep_compare:
    input:
        unpack(sweep_comparison_sources),
        code=src(*script_imports("diagnostics_compare")),
    output:
        comparison=POINT.model_diagnostics("{model}", "comparison.json"),
        table_csv=POINT.model_diagnostics("{model}", "comparison.csv"),
        table_md=POINT.model_diagnostics("{model}", "comparison.md"),
        acceptance=POINT.model_diagnostics("{model}", "acceptance.json"),
    log:
        log("sweep_compare_{sweep}_{value}_{model}"),
    benchmark:
        bench("sweep_compare_{sweep}_{value}_{model}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        diagnostics=DIAGNOSTICS_COMPARE_CFG,
    script:
        "../../scripts/diagnostics_compare.py"


rule sweep_propagation:
    input:
        code=src(*script_imports("propagation")),
        pseudo_obs=done(LAYOUT.pseudo_obs(IDEALIZED)),
        bridging=done(POINT.decoded("bridging", "{model}")),
        free_run=done(LAYOUT.decoded("free_run", "{model}")),
    output:
        result=POINT.model_diagnostics("{model}", "propagation.json"),
        figure=POINT.figure("{model}", "propagation"),
    log:
        log("sweep_propagation_{sweep}_{value}_{model}"),
    benchmark:
        bench("sweep_propagation_{sweep}_{value}_{model}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        plotting=cfg("diagnostics", "plotting"),
    script:
        "../../scripts/propagation.py"


rule sweep_summary:
    input:
        unpack(sweep_summary_inputs),
        code=src(*script_imports("sweep_summary")),
        pseudo_obs=done(LAYOUT.pseudo_obs(IDEALIZED)),
    output:
        csv=LAYOUT.sweep_summary("{sweep}", "csv"),
        markdown=LAYOUT.sweep_summary("{sweep}", "md"),
        html=report(
            LAYOUT.sweep_summary("{sweep}", "html"),
            caption="../report/sweep_summary.rst",
            category=REPORT_CATEGORIES["sweeps"],
            subcategory="{sweep}",
            labels={"sweep": "{sweep}", "table": "summary"},
        ),
        figure=report(
            LAYOUT.sweep_summary("{sweep}", "png"),
            caption="../report/sweep_figure.rst",
            category=REPORT_CATEGORIES["sweeps"],
            subcategory="{sweep}",
            labels={"sweep": "{sweep}", "table": "figure"},
        ),
    log:
        log("sweep_summary_{sweep}"),
    benchmark:
        bench("sweep_summary_{sweep}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        sweep=lambda wc: SWEEPS[wc.sweep].params(),
        description=lambda wc: SWEEPS[wc.sweep].description,
        models=OPERATIONAL,
        plotting=cfg("diagnostics", "plotting"),
    script:
        "../../scripts/sweep_summary.py"


# Target: every enabled sweep's summary (`snakemake sweeps`, `make sweeps`).
rule sweeps:
    input:
        [LAYOUT.sweep_summary(sweep, suffix) for sweep in SWEEPS for suffix in ("csv", "md", "html", "png")],


localrules:
    sweeps,
