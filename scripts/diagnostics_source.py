from bridging.diagnostics.run import gridded_source_diagnostics
from bridging.runtime import script_context

with script_context(snakemake):
    out = snakemake.output
    gridded_source_diagnostics(
        snakemake.input.store,
        statistics=out.statistics,
        indices=out.indices,
        maps=out.maps,
        diagnostics=snakemake.params.diagnostics,
        layout=snakemake.input.layout,
    )
