from bridging.runtime import StorePaths, script_context
from bridging.sweeps.filter import run_sweep_filter

with script_context(snakemake):
    p = snakemake.params
    inputs = {k: v for k, v in StorePaths(snakemake.input).items() if k != "code"}
    run_sweep_filter(
        snakemake.output.manifest,
        sweep=p.sweep,
        da=p.da,
        grid=p.grid,
        allow_failed_gate=p.allow_failed_gate,
        device=p.device,
        model_name=snakemake.wildcards.model,
        **inputs,
    )
