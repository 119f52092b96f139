from bridging.da.run import run_filter_stage
from bridging.runtime import script_context

with script_context(snakemake):
    p, inputs = snakemake.params, {k: v for k, v in snakemake.input.items() if k != "code"}
    run_filter_stage(
        snakemake.output.store,
        snakemake.output.statistics,
        kind=p.kind,
        da=p.da,
        grid=p.grid,
        allow_failed_gate=p.allow_failed_gate,
        device=p.device,
        model_name=snakemake.wildcards.model,
        **inputs,
    )
