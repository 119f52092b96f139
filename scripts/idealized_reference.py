from bridging.idealized.run import run_reference
from bridging.runtime import StorePaths, script_context

with script_context(snakemake):
    run_reference(StorePaths(snakemake.output)[0], idealized=snakemake.params.idealized, threads=snakemake.threads)
