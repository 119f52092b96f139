# The latent EnKF (bridging run) and its control (free run) per operational model, and their decoding into stores.


rule assimilate:
    input:
        code=src(*script_imports("assimilate")),
        latent_store=done(LAYOUT.latent("{model}", "operational")),
        operational_store=done(LAYOUT.store("{model}")),
        forecast_model=LAYOUT.model_file("{model}", "forecast.pt"),
        autoencoder=LAYOUT.model_file("{model}", "autoencoder.pt"),
        pseudo_obs=done(LAYOUT.pseudo_obs(IDEALIZED)),
        # the model hierarchy: the other idealized models of da.observations.sources
        other_pseudo_obs=other_pseudo_obs(config["da"]["observations"]["sources"]),
    output:
        store=done(LAYOUT.assimilation("{model}")),
        statistics=LAYOUT.filter_statistics("{model}", "assimilation"),
    log:
        log("assimilate_{model}"),
    benchmark:
        bench("assimilate_{model}")
    conda:
        ENV
    # Torch uses every thread it is given; the month loop is sequential, so more rules in parallel would only thrash.
    threads: config["compute"]["torch_threads"]
    resources:
        mem_mb=6000,
        runtime=240,
        torch_jobs=1,
    params:
        kind="assimilation",
        da=cfg("da"),
        grid=cfg("grid"),
        allow_failed_gate=cfg("forecast", "gate", "allow_failed"),
        # only the device: the thread count reaches the job through `threads:` (changing it re-runs nothing)
        device=cfg("compute", "device"),
        zarr_format=cfg("outputs", "zarr_format"),
    script:
        "../../scripts/assimilate.py"


use rule assimilate as free_run with:
    output:
        store=done(LAYOUT.free_run("{model}")),
        statistics=LAYOUT.filter_statistics("{model}", "free_run"),
    log:
        log("free_run_{model}"),
    benchmark:
        bench("free_run_{model}")
    params:
        kind="free_run",
        # the control has no analysis: the analysis settings must not re-run it
        da=cfg_except("da", exclude=("method", "inflation", "localization", "reencode")),
        grid=cfg("grid"),
        allow_failed_gate=cfg("forecast", "gate", "allow_failed"),
        device=cfg("compute", "device"),
        zarr_format=cfg("outputs", "zarr_format"),


rule decode:
    input:
        code=src(*script_imports("decode")),
        # bridging_<model> decodes the analysis, free_run_<model> the free run
        filter_store=lambda wc: done(
            LAYOUT.filter_store(wc.model, "assimilation" if wc.kind == "bridging" else "free_run")
        ),
        autoencoder=LAYOUT.model_file("{model}", "autoencoder.pt"),
        operational_store=done(LAYOUT.store("{model}")),
    output:
        done(LAYOUT.store("{kind}_{model}")),
    log:
        log("decode_{kind}_{model}"),
    benchmark:
        bench("decode_{kind}_{model}")
    wildcard_constraints:
        kind="bridging|free_run",
    conda:
        ENV
    threads: config["compute"]["torch_threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        torch_jobs=1,
    params:
        decode=cfg("decode"),
        device=cfg("compute", "device"),
        zarr_format=cfg("outputs", "zarr_format"),
    script:
        "../../scripts/decode.py"
