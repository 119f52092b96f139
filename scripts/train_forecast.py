from bridging.models.forecast import train_forecast
from bridging.runtime import StorePaths, script_context

with script_context(snakemake):
    i, o, p = StorePaths(snakemake.input), snakemake.output, snakemake.params
    train_forecast(
        i.latent_operational,
        i.latent_reanalysis,
        i.autoencoder,
        i.operational,
        i.reanalysis,
        o.checkpoint,
        o.metrics,
        o.curves,
        o.gate,
        forecast=p.forecast,
        curriculum=p.curriculum,
        compute=p.compute,
        grid=p.grid,
    )
