# The latent EnKF (bridging run) and its control (free run) per operational model, and their decoding into stores.


rule assimilate:
    input:
        code=src("da", "models", "observables.py", "grid.py", "stores.py", "timeaxis.py", "resume.py", "provenance.py"),
        latent_store=f"{RUN}/latent/{{model}}/operational.zarr",
        operational_store=f"{RUN}/stores/{{model}}.zarr",
        forecast_model=f"{RUN}/models/{{model}}/forecast.pt",
        autoencoder=f"{RUN}/models/{{model}}/autoencoder.pt",
        pseudo_obs=f"{RUN}/pseudo_obs/{IDEALIZED}.zarr",
    output:
        store=directory(f"{RUN}/assimilation/{{model}}.zarr"),
        statistics=f"{RUN}/assimilation/{{model}}_statistics.json",
    params:
        kind="assimilation",
        da=cfg("da"),
        grid=cfg("grid"),
        allow_failed_gate=cfg("forecast", "gate", "allow_failed"),
        compute=cfg("compute"),
    log:
        log("assimilate_{model}"),
    benchmark:
        bench("assimilate_{model}")
    # Torch uses every thread it is given; the month loop is sequential, so more rules in parallel would only thrash.
    threads: config["compute"]["torch_threads"]
    resources:
        mem_mb=6000,
        runtime=240,
        torch_jobs=1,
    conda:
        ENV
    script:
        "../../scripts/assimilate.py"


use rule assimilate as free_run with:
    output:
        store=directory(f"{RUN}/free_run/{{model}}.zarr"),
        statistics=f"{RUN}/free_run/{{model}}_statistics.json",
    params:
        kind="free_run",
        # the control has no analysis: the analysis settings must not re-run it
        da=cfg_except("da", exclude=("method", "inflation", "localization", "reencode")),
        grid=cfg("grid"),
        allow_failed_gate=cfg("forecast", "gate", "allow_failed"),
        compute=cfg("compute"),
    log:
        log("free_run_{model}"),
    benchmark:
        bench("free_run_{model}")


rule decode:
    input:
        code=src("da", "models", "stores.py", "timeaxis.py", "resume.py", "provenance.py"),
        # bridging_<model> decodes the analysis, free_run_<model> the free run
        filter_store=lambda wc: f"{RUN}/{'assimilation' if wc.kind == 'bridging' else 'free_run'}/{wc.model}.zarr",
        autoencoder=f"{RUN}/models/{{model}}/autoencoder.pt",
        operational_store=f"{RUN}/stores/{{model}}.zarr",
    output:
        directory(f"{RUN}/stores/{{kind}}_{{model}}.zarr"),
    wildcard_constraints:
        kind="bridging|free_run",
    params:
        decode=cfg("decode"),
        compute=cfg("compute"),
    log:
        log("decode_{kind}_{model}"),
    benchmark:
        bench("decode_{kind}_{model}")
    threads: config["compute"]["torch_threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        torch_jobs=1,
    conda:
        ENV
    script:
        "../../scripts/decode.py"
