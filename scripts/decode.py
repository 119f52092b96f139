from bridging.da.decode import decode_filter_store
from bridging.runtime import StorePaths, script_context

with script_context(snakemake):
    i = StorePaths(snakemake.input)
    decode_filter_store(
        StorePaths(snakemake.output)[0],
        assimilation=i.filter_store,
        autoencoder=i.autoencoder,
        operational_store=i.operational_store,
        decode=snakemake.params.decode,
        model_name=snakemake.wildcards.model,
        device=snakemake.params.device,
    )
