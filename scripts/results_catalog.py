from bridging.io.results_catalog import build_results_catalog
from bridging.layout import RunLayout
from bridging.runtime import script_context

with script_context(snakemake):
    build_results_catalog(RunLayout.of({"run": snakemake.params.run}), **snakemake.params.outputs)
