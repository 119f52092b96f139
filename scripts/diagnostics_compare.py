from bridging.diagnostics.run import compare_model
from bridging.runtime import script_context

with script_context(snakemake):
    compare_model(
        snakemake.wildcards.model,
        dict(snakemake.input.items()),
        dict(snakemake.output.items()),
        diagnostics=snakemake.params.diagnostics,
    )
