from bridging.runtime import StorePaths, script_context
from bridging.sweeps.filter import decode_sweep_point

with script_context(snakemake):
    i = StorePaths(snakemake.input)
    decode_sweep_point(
        StorePaths(snakemake.output)[0],
        manifest=i.manifest,
        label=snakemake.wildcards.value,
        autoencoder=i.autoencoder,
        operational_store=i.operational_store,
        decode=snakemake.params.decode,
        model_name=snakemake.wildcards.model,
        device=snakemake.params.device,
    )
