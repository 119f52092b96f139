from bridging.models.autoencoder import train_autoencoder
from bridging.runtime import StorePaths, script_context

with script_context(snakemake):
    i, o, p = StorePaths(snakemake.input), snakemake.output, snakemake.params
    train_autoencoder(
        i.operational,
        i.reanalysis,
        i.pseudo_obs,
        o.checkpoint,
        o.metrics,
        o.curves,
        autoencoder=p.autoencoder,
        curriculum=p.curriculum,
        compute=p.compute,
        grid=p.grid,
    )
