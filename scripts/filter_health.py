from bridging.diagnostics.filter_health import filter_health_stage
from bridging.runtime import script_context

with script_context(snakemake):
    filter_health_stage(
        snakemake.input.assimilation,
        snakemake.input.free_run,
        figure=snakemake.output.figure,
        plotting=snakemake.params.plotting,
        innovation_ratio_warn=snakemake.params.innovation_ratio_warn,
        consistency_warn=snakemake.params.consistency_warn,
        model=snakemake.wildcards.model,
    )
