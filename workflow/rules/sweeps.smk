# Sensitivity sweeps (config `sweeps:`, target `sweeps`, not part of `all`): per sweep ONE filter job per model for
# all its values (bridging.sweeps.filter), then per value the main run's decoding, per-source diagnostics and
# comparison on the decoded bridging model, the known-truth propagation test (against the main run's free run), and a
# summary table per sweep. Everything upstream of the filter (data, stores, idealized runs, and except for a
# retraining sweep the trained models and latent stores) and every other source of the comparison is the main run's.
# SWEEPS (the plans) and the input functions are in common.smk. One value of a sweep is laid out as a run folder,
# results/<run>/sweeps/<sweep>/<value>/.
POINT = LAYOUT.sweep_point("{sweep}", "{value}")


wildcard_constraints:
    sweep=_alternatives(SWEEPS) if SWEEPS else "(?!)",
    value="[^/]+",


# A retraining sweep (autoencoder.*, e.g. λ): each value trains its own autoencoder, encodes its latent stores and
# trains its forecast model by the main run's rules, on the value's config, under the value's folder.
use rule train_autoencoder as sweep_train_autoencoder with:
    output:
        checkpoint=POINT.model_file("{model}", "autoencoder.pt"),
        metrics=POINT.model_file("{model}", "autoencoder_metrics.json"),
        curves=POINT.model_file("{model}", "autoencoder_curves.png"),
    log:
        log("sweep_train_autoencoder_{sweep}_{value}_{model}"),
    benchmark:
        bench("sweep_train_autoencoder_{sweep}_{value}_{model}")
    wildcard_constraints:
        sweep=_alternatives(RETRAINING_SWEEPS) if RETRAINING_SWEEPS else "(?!)",
    params:
        autoencoder=sweep_section("autoencoder"),
        curriculum=cfg("curriculum"),
        compute=TORCH_COMPUTE,
        grid=cfg("grid"),


use rule encode as sweep_encode with:
    input:
        code=src(*script_imports("encode")),
        autoencoder=POINT.model_file("{model}", "autoencoder.pt"),
        operational=done(LAYOUT.store("{model}")),
        reanalysis=done(LAYOUT.store(REANALYSIS)),
        pseudo_obs=done(LAYOUT.pseudo_obs(IDEALIZED)),
    output:
        operational=done(POINT.latent("{model}", "operational")),
        reanalysis=done(POINT.latent("{model}", "reanalysis")),
    log:
        log("sweep_encode_{sweep}_{value}_{model}"),
    benchmark:
        bench("sweep_encode_{sweep}_{value}_{model}")
    wildcard_constraints:
        sweep=_alternatives(RETRAINING_SWEEPS) if RETRAINING_SWEEPS else "(?!)",
    params:
        autoencoder=sweep_section("autoencoder"),
        compute=TORCH_COMPUTE,
        grid=cfg("grid"),
        zarr_format=cfg("outputs", "zarr_format"),


use rule train_forecast as sweep_train_forecast with:
    input:
        code=src(*script_imports("train_forecast")),
        latent_operational=done(POINT.latent("{model}", "operational")),
        latent_reanalysis=done(POINT.latent("{model}", "reanalysis")),
        autoencoder=POINT.model_file("{model}", "autoencoder.pt"),
        operational=done(LAYOUT.store("{model}")),
        reanalysis=done(LAYOUT.store(REANALYSIS)),
    output:
        checkpoint=POINT.model_file("{model}", "forecast.pt"),
        metrics=POINT.model_file("{model}", "forecast_metrics.json"),
        curves=POINT.model_file("{model}", "forecast_curves.png"),
        gate=POINT.model_file("{model}", "forecast_gate.png"),
    log:
        log("sweep_train_forecast_{sweep}_{value}_{model}"),
    benchmark:
        bench("sweep_train_forecast_{sweep}_{value}_{model}")
    wildcard_constraints:
        sweep=_alternatives(RETRAINING_SWEEPS) if RETRAINING_SWEEPS else "(?!)",


rule sweep_filter:
    input:
        unpack(sweep_filter_models),
        code=src(*script_imports("sweep_filter")),
        operational_store=done(LAYOUT.store("{model}")),
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
        autoencoder=sweep_point_autoencoder,
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
