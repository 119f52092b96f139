# The resolved config, package versions and git commit of this run, next to its results.


rule provenance:
    input:
        code=src("provenance.py"),
    output:
        config=f"{RUN}/provenance/config.resolved.yaml",
        versions=f"{RUN}/provenance/versions.json",
    params:
        # The whole validated config: this small rule re-runs on any config change, nothing downstream depends on it.
        config=cfg(),
    log:
        log("provenance"),
    benchmark:
        bench("provenance")
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        ENV
    script:
        "../../scripts/provenance.py"
