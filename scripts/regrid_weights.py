from bridging.ingest import build_weights
from bridging.runtime import script_context

with script_context(snakemake):
    build_weights(
        snakemake.output[0],
        catalog=snakemake.input.catalog,
        source=snakemake.params.source,
        grid=snakemake.params.grid,
        regrid_cfg=snakemake.params.regrid,
        chunk_mb=snakemake.params.read_chunk_mb,
    )
