from bridging.io.catalog import build_catalog
from bridging.runtime import script_context

with script_context(snakemake):
    build_catalog(snakemake.params.roots, snakemake.output.json, snakemake.output.csv)
