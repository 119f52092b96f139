# Idealized ENSO models (CF23 / CFY22): the independent long reference run and the pseudo-observations.


rule idealized_reference:
    input:
        code=src(*script_imports("idealized_reference")),
    output:
        done(LAYOUT.idealized_reference(IDEALIZED)),
    log:
        log("idealized_reference"),
    benchmark:
        bench("idealized_reference")
    conda:
        ENV
    # One member: 1000 CF23 years take about a second compiled; a second thread would idle.
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        idealized=cfg("idealized"),
        zarr_format=cfg("outputs", "zarr_format"),
    script:
        "../../scripts/idealized_reference.py"


rule pseudo_obs:
    input:
        code=src(*script_imports("pseudo_obs")),
    output:
        done(LAYOUT.pseudo_obs(IDEALIZED)),
    log:
        log("pseudo_obs"),
    benchmark:
        bench("pseudo_obs")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        idealized=cfg("idealized"),
        pseudo_obs=cfg("pseudo_obs"),
        grid=cfg("grid"),
        zarr_format=cfg("outputs", "zarr_format"),
    script:
        "../../scripts/pseudo_obs.py"
