from bridging.diagnostics.run import gridded_source_diagnostics
from bridging.runtime import StorePaths, script_context

with script_context(snakemake):
    i, out = StorePaths(snakemake.input), snakemake.output
    gridded_source_diagnostics(
        i.store,
        statistics=out.statistics,
        indices=out.indices,
        maps=out.maps,
        diagnostics=snakemake.params.diagnostics,
        layout=i.layout,
    )
