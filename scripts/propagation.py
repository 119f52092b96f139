from bridging.diagnostics.run import propagation_stage
from bridging.runtime import script_context

with script_context(snakemake):
    propagation_stage(
        snakemake.input.pseudo_obs,
        snakemake.input.bridging,
        snakemake.input.free_run,
        result=snakemake.output.result,
        figure=snakemake.output.figure,
        plotting=snakemake.params.plotting,
    )
