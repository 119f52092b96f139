# ENSO diagnostics: statistics and maps per source, then per bridged model the comparison table with the
# acceptance check, and the figures. Plotting options reach only the plotting rule, so a colour-map edit re-runs
# the figures (and the report) and nothing else.
from bridging.diagnostics import FIGURES as DIAGNOSTICS_FIGURES

# Every store the diagnostics read: operational models, the reanalysis, and per model its bridging model and its
# forecast model's free run.
DIAGNOSTICS_STORES = SOURCES + [f"bridging_{m}" for m in OPERATIONAL] + [f"free_run_{m}" for m in OPERATIONAL]
IDEALIZED_SOURCE = f"idealized_{IDEALIZED}"
PSEUDO_OBS_SOURCE = f"pseudo_obs_{IDEALIZED}"
# The idealized model's records the diagnostics read: its long reference run and the pseudo-observation record.
IDEALIZED_STORES = {
    IDEALIZED_SOURCE: done(LAYOUT.idealized_reference(IDEALIZED)),
    PSEUDO_OBS_SOURCE: done(LAYOUT.pseudo_obs(IDEALIZED)),
}
# The statistics and comparison depend on `diagnostics` without its plotting options; the per-source statistics
# also not on the acceptance thresholds (only the comparison checks them).
DIAGNOSTICS_STATISTICS_CFG = {k: v for k, v in cfg("diagnostics").items() if k not in ("plotting", "acceptance")}
DIAGNOSTICS_COMPARE_CFG = {k: v for k, v in cfg("diagnostics").items() if k != "plotting"}


rule diagnostics_source:
    input:
        code=src(*script_imports("diagnostics_source")),
        store=done(LAYOUT.store("{store}")),
        # Only its obs_* coordinates: the observable positions regressed out for the residual std map.
        layout=done(LAYOUT.pseudo_obs(IDEALIZED)),
    output:
        statistics=LAYOUT.source_diagnostics("{store}", "statistics.json"),
        indices=LAYOUT.source_diagnostics("{store}", "indices.nc"),
        maps=LAYOUT.source_diagnostics("{store}", "maps.nc"),
    log:
        log("diagnostics_source_{store}"),
    benchmark:
        bench("diagnostics_source_{store}")
    wildcard_constraints:
        store=_alternatives(DIAGNOSTICS_STORES),
    conda:
        ENV
    threads: 1
    resources:
        # Both fields' anomalies are held as float32 (member·time × ocean cells): about 1.5 GB peak for the bridging
        # model's 5 members × 300 years on 41 × 161 (bench/bench_diagnostics.py); it grows with members × months.
        mem_mb=4000,
        runtime=30,
    params:
        diagnostics=DIAGNOSTICS_STATISTICS_CFG,
    script:
        "../../scripts/diagnostics_source.py"


rule diagnostics_idealized:
    input:
        code=src(*script_imports("diagnostics_idealized")),
        store=lambda wc: IDEALIZED_STORES[wc.record],
        # The grid and ocean mask every gridded source is averaged on: CF23's indices are box means of its 2-D
        # fields on the same cells.
        grid=done(LAYOUT.store(REANALYSIS)),
    output:
        statistics=LAYOUT.source_diagnostics("{record}", "statistics.json"),
        indices=LAYOUT.source_diagnostics("{record}", "indices.nc"),
    log:
        log("diagnostics_idealized_{record}"),
    benchmark:
        bench("diagnostics_idealized_{record}")
    wildcard_constraints:
        record=_alternatives(IDEALIZED_STORES),
    conda:
        ENV
    threads: 1
    resources:
        # the 30 000-year reference run: 2.6 GB peak measured (statistics of 360 000 months)
        mem_mb=4000,
        runtime=15,
    params:
        diagnostics=DIAGNOSTICS_STATISTICS_CFG,
        kind=lambda wc: "idealized" if wc.record == IDEALIZED_SOURCE else "pseudo_obs",
    script:
        "../../scripts/diagnostics_idealized.py"


rule diagnostics_compare:
    input:
        unpack(comparison_sources),
        code=src(*script_imports("diagnostics_compare")),
    output:
        comparison=LAYOUT.model_diagnostics("{model}", "comparison.json"),
        # The report's pages: every table as HTML (a CSV or JSON attachment shows nothing there).
        summary_html=report(
            LAYOUT.model_diagnostics("{model}", "summary.html"),
            caption="../report/diagnostics_summary.rst",
            category=REPORT_CATEGORIES["evidence"],
            subcategory="{model}",
            labels={"model": "{model}", "table": "1. summary tables (with intervals)"},
        ),
        tests_html=report(
            LAYOUT.model_diagnostics("{model}", "tests.html"),
            caption="../report/diagnostics_table.rst",
            category=REPORT_CATEGORIES["evidence"],
            subcategory="{model}",
            labels={"model": "{model}", "table": "2. every equal-footing test"},
        ),
        acceptance_html=report(
            LAYOUT.model_diagnostics("{model}", "acceptance.html"),
            caption="../report/diagnostics_acceptance.rst",
            category=REPORT_CATEGORIES["evidence"],
            subcategory="{model}",
            labels={"model": "{model}", "table": "3. acceptance criteria"},
        ),
        table_csv=LAYOUT.model_diagnostics("{model}", "comparison.csv"),
        table_md=LAYOUT.model_diagnostics("{model}", "comparison.md"),
        acceptance=LAYOUT.model_diagnostics("{model}", "acceptance.json"),
    log:
        log("diagnostics_compare_{model}"),
    benchmark:
        bench("diagnostics_compare_{model}")
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


rule diagnostics_plots:
    input:
        unpack(comparison_sources),
        code=src(*script_imports("diagnostics_plots")),
        comparison=rules.diagnostics_compare.output.comparison,
    output:
        **{
            name: report(
                LAYOUT.figure("{model}", name),
                caption=f"../report/diagnostics_{name}.rst",
                category=REPORT_CATEGORIES["diagnostics"],
                subcategory="{model}",
                labels={"model": "{model}", "figure": name.replace("_", " ")},
            )
            for name in DIAGNOSTICS_FIGURES
        },
    log:
        log("diagnostics_plots_{model}"),
    benchmark:
        bench("diagnostics_plots_{model}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        plotting=cfg("diagnostics", "plotting"),
    script:
        "../../scripts/diagnostics_plots.py"


# The known-truth propagation test: the bridging model's ensemble mean against the pseudo-observation run's full
# fields (CF23's 2-D reconstruction) away from the observed equatorial cells, with the free run as no-skill control.
rule propagation:
    input:
        code=src(*script_imports("propagation")),
        pseudo_obs=done(LAYOUT.pseudo_obs(IDEALIZED)),
        bridging=done(LAYOUT.decoded("bridging", "{model}")),
        free_run=done(LAYOUT.decoded("free_run", "{model}")),
    output:
        result=LAYOUT.model_diagnostics("{model}", "propagation.json"),
        figure=report(
            LAYOUT.figure("{model}", "propagation"),
            caption="../report/diagnostics_propagation.rst",
            category=REPORT_CATEGORIES["diagnostics"],
            subcategory="{model}",
            labels={"model": "{model}", "figure": "propagation (known truth)"},
        ),
    log:
        log("propagation_{model}"),
    benchmark:
        bench("propagation_{model}")
    conda:
        ENV
    threads: 1
    resources:
        # truth and two ensemble means, both fields, as float64 (time × lat × lon): about 2 GB for 300 years
        mem_mb=4000,
        runtime=15,
    params:
        plotting=cfg("diagnostics", "plotting"),
    script:
        "../../scripts/propagation.py"


# The filter's health per decade (innovation ratio, decoded-vs-analysis consistency, adaptive model-noise factor,
# spreads) of the bridging filter and its free-run control, from the statistics each filter run writes.
rule filter_health:
    input:
        code=src(*script_imports("filter_health")),
        assimilation=LAYOUT.filter_statistics("{model}", "assimilation"),
        free_run=LAYOUT.filter_statistics("{model}", "free_run"),
    output:
        figure=report(
            LAYOUT.figure("{model}", "filter_health"),
            caption="../report/filter_health.rst",
            category=REPORT_CATEGORIES["filter"],
            subcategory="{model}",
            labels={"model": "{model}", "figure": "filter health"},
        ),
    log:
        log("filter_health_{model}"),
    benchmark:
        bench("filter_health_{model}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        plotting=cfg("diagnostics", "plotting"),
        innovation_ratio_warn=cfg("da", "innovation_ratio_warn"),
        consistency_warn=cfg("da", "consistency_warn"),
    script:
        "../../scripts/filter_health.py"


# Target: the comparison and figures of every bridged model (`snakemake diagnostics`).
rule diagnostics:
    input:
        expand(LAYOUT.model_diagnostics("{model}", "comparison.json"), model=OPERATIONAL),
        # the known truth exists for CF23 (2-D fields); CFY22 resolves only box variables
        expand(LAYOUT.model_diagnostics("{model}", "propagation.json"), model=OPERATIONAL)
        if IDEALIZED == "cf23"
        else [],
        expand(LAYOUT.figure("{model}", "{name}"), model=OPERATIONAL, name=DIAGNOSTICS_FIGURES),
        expand(LAYOUT.model_diagnostics("{model}", "explain.json"), model=OPERATIONAL),
        expand(LAYOUT.figure("{model}", "filter_health"), model=OPERATIONAL),


localrules:
    diagnostics,


# Explainability: how a one-std correction of each observable group moves the decoded fields through the filter's
# gain (SST at the Niño 3 and Niño 4 nodes, thermocline in the west and east), and the latent–observable
# cross-correlations the gain is built from.
rule explain:
    input:
        code=src(*script_imports("explain")),
        assimilation=done(LAYOUT.assimilation("{model}")),
        latent_store=done(LAYOUT.latent("{model}", "operational")),
        forecast_model=LAYOUT.model_file("{model}", "forecast.pt"),
        autoencoder=LAYOUT.model_file("{model}", "autoencoder.pt"),
        operational_store=done(LAYOUT.store("{model}")),
    output:
        responses=report(
            LAYOUT.figure("{model}", "explain_gain_responses"),
            caption="../report/explain_gain_responses.rst",
            category=REPORT_CATEGORIES["explain"],
            subcategory="{model}",
            labels={"model": "{model}", "figure": "gain responses"},
        ),
        correlation=report(
            LAYOUT.figure("{model}", "explain_latent_observable_correlation"),
            caption="../report/explain_latent_observable_correlation.rst",
            category=REPORT_CATEGORIES["explain"],
            subcategory="{model}",
            labels={"model": "{model}", "figure": "latent–observable correlation"},
        ),
        summary=LAYOUT.model_diagnostics("{model}", "explain.json"),
    log:
        log("explain_{model}"),
    benchmark:
        bench("explain_{model}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    params:
        da=cfg_except(
            "da",
            exclude=(
                "months",
                "checkpoint_months",
                "consistency_members",
                "innovation_ratio_warn",
                "consistency_warn",
            ),
        ),
        diagnostics=cfg("diagnostics"),
        model_name="{model}",
    script:
        "../../scripts/explain.py"
