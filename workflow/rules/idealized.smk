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


# idealized.model's, and those of the other models of a hierarchy (da.observations.sources, the hierarchy sweep).
rule pseudo_obs:
    input:
        code=src(*script_imports("pseudo_obs")),
    output:
        done(LAYOUT.pseudo_obs("{idealized}")),
    log:
        log("pseudo_obs_{idealized}"),
    benchmark:
        bench("pseudo_obs_{idealized}")
    wildcard_constraints:
        idealized="cf23|cfy22",
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


# XRO (the xro package): a recharge oscillator fitted to the reanalysis' Niño 3.4 and thermocline indices, run as a
# third, observation-fitted idealized model of the hierarchy (bridging.idealized.xro_obs).
rule pseudo_obs_xro:
    input:
        code=src(*script_imports("pseudo_obs_xro")),
        reanalysis=done(LAYOUT.store(REANALYSIS)),
    output:
        done(LAYOUT.pseudo_obs("xro")),
    log:
        log("pseudo_obs_xro"),
    benchmark:
        bench("pseudo_obs_xro")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        idealized=cfg_except("idealized", exclude=("cf23", "cfy22", "model", "reference_years", "seed_reference")),
        pseudo_obs=cfg("pseudo_obs"),
        grid=cfg("grid"),
        zarr_format=cfg("outputs", "zarr_format"),
    script:
        "../../scripts/pseudo_obs_xro.py"
