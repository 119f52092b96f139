from bridging.idealized.run import run_reference
from bridging.runtime import script_context

with script_context(snakemake):
    run_reference(snakemake.output[0], idealized=snakemake.params.idealized, threads=snakemake.threads)
