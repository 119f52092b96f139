from bridging.idealized.xro_obs import make_xro_pseudo_obs
from bridging.runtime import StorePaths, script_context

with script_context(snakemake):
    make_xro_pseudo_obs(
        StorePaths(snakemake.output)[0],
        StorePaths(snakemake.input).reanalysis,
        idealized=snakemake.params.idealized,
        pseudo_obs=snakemake.params.pseudo_obs,
        grid=snakemake.params.grid,
    )
