from bridging.idealized.pseudo_obs import make_pseudo_obs
from bridging.runtime import StorePaths, script_context

with script_context(snakemake):
    make_pseudo_obs(
        StorePaths(snakemake.output)[0],
        idealized={**snakemake.params.idealized, "model": snakemake.wildcards.idealized},
        pseudo_obs=snakemake.params.pseudo_obs,
        grid=snakemake.params.grid,
    )
