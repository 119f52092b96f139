from bridging.diagnostics.run import idealized_source_diagnostics
from bridging.runtime import script_context

with script_context(snakemake):
    idealized_source_diagnostics(
        snakemake.input.store,
        statistics=snakemake.output.statistics,
        indices=snakemake.output.indices,
        diagnostics=snakemake.params.diagnostics,
        grid=snakemake.input.grid,
        kind=snakemake.params.kind,
    )
