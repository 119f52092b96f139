from bridging.diagnostics.run import idealized_source_diagnostics
from bridging.runtime import StorePaths, script_context

with script_context(snakemake):
    i = StorePaths(snakemake.input)
    idealized_source_diagnostics(
        i.store,
        statistics=snakemake.output.statistics,
        indices=snakemake.output.indices,
        diagnostics=snakemake.params.diagnostics,
        grid=i.grid,
        kind=snakemake.params.kind,
    )
