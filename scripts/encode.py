from bridging.models.latent import encode_sources
from bridging.runtime import StorePaths, script_context

with script_context(snakemake):
    i, o, p = StorePaths(snakemake.input), StorePaths(snakemake.output), snakemake.params
    encode_sources(
        i.autoencoder,
        i.operational,
        i.reanalysis,
        i.pseudo_obs,
        o.operational,
        o.reanalysis,
        autoencoder=p.autoencoder,
        compute=p.compute,
        grid=p.grid,
    )
