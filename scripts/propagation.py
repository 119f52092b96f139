from bridging.diagnostics.run import propagation_stage
from bridging.runtime import StorePaths, script_context

with script_context(snakemake):
    i = StorePaths(snakemake.input)
    propagation_stage(
        i.pseudo_obs,
        i.bridging,
        i.free_run,
        result=snakemake.output.result,
        figure=snakemake.output.figure,
        plotting=snakemake.params.plotting,
    )
