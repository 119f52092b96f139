from bridging.explain import explain_model
from bridging.runtime import script_context

with script_context(snakemake):
    explain_model(
        snakemake.output.responses,
        snakemake.output.correlation,
        snakemake.output.summary,
        assimilation=snakemake.input.assimilation,
        latent_store=snakemake.input.latent_store,
        forecast_model=snakemake.input.forecast_model,
        autoencoder=snakemake.input.autoencoder,
        operational_store=snakemake.input.operational_store,
        da=snakemake.params.da,
        diagnostics=snakemake.params.diagnostics,
        model_name=snakemake.params.model_name,
    )
