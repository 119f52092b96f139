from bridging.explain import explain_model
from bridging.runtime import StorePaths, script_context

with script_context(snakemake):
    i = StorePaths(snakemake.input)
    explain_model(
        snakemake.output.responses,
        snakemake.output.correlation,
        snakemake.output.summary,
        assimilation=i.assimilation,
        latent_store=i.latent_store,
        forecast_model=i.forecast_model,
        autoencoder=i.autoencoder,
        operational_store=i.operational_store,
        da=snakemake.params.da,
        diagnostics=snakemake.params.diagnostics,
        model_name=snakemake.params.model_name,
    )
