from bridging.ingest import ingest_source
from bridging.runtime import StorePaths, script_context

with script_context(snakemake):
    ingest_source(
        StorePaths(snakemake.output)[0],
        catalog=snakemake.input.catalog,
        weights=snakemake.input.weights,
        source=snakemake.params.source,
        grid=snakemake.params.grid,
        ingest=snakemake.params.ingest,
        threads=snakemake.threads,
    )
