from bridging.demo.generate import generate_demo_data
from bridging.runtime import script_context

with script_context(snakemake):
    generate_demo_data(snakemake.output[0], snakemake.params.demo, threads=snakemake.threads)
