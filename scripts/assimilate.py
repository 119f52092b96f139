from bridging.da.run import run_filter_stage
from bridging.runtime import StorePaths, script_context

with script_context(snakemake):
    p, o = snakemake.params, StorePaths(snakemake.output)
    inputs = {k: v for k, v in StorePaths(snakemake.input).items() if k != "code"}
    run_filter_stage(
        o.store,
        o.statistics,
        kind=p.kind,
        da=p.da,
        grid=p.grid,
        allow_failed_gate=p.allow_failed_gate,
        device=p.device,
        model_name=snakemake.wildcards.model,
        **inputs,
    )
