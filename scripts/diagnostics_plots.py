from bridging.diagnostics.run import plot_model
from bridging.runtime import script_context

with script_context(snakemake):
    plot_model(
        snakemake.wildcards.model,
        dict(snakemake.input.items()),
        dict(snakemake.output.items()),
        plotting=snakemake.params.plotting,
    )
