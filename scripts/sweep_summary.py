from bridging.runtime import StorePaths, script_context
from bridging.sweeps.summary import write_summary

with script_context(snakemake):
    i, o, p = StorePaths(snakemake.input), snakemake.output, snakemake.params
    write_summary(
        p.sweep,
        models=p.models,
        manifests=i.manifests,
        comparisons=i.comparisons,
        propagation=i.propagation,
        autoencoder_metrics=i.autoencoder_metrics,
        indices=i.indices,
        pseudo_obs=i.pseudo_obs,
        csv_path=o.csv,
        markdown=o.markdown,
        html=o.html,
        figure=o.figure,
        plotting=p.plotting,
        description=p.description,
    )
