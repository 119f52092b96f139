from bridging.provenance import write_provenance
from bridging.runtime import script_context

with script_context(snakemake):
    write_provenance(snakemake.params.config, snakemake.output.config, snakemake.output.versions)
