# The latent models of each operational model: the physically-augmented autoencoder, the latent stores it encodes,
# and the gated latent forecast model (bridging.models). Torch rules take `compute.torch_threads` cores and one `torch_jobs` token:
# two torch trainings on the same cores thrash (5–20× slower in the LSTM backward pass), so they run one at a time.

# What of `compute` changes a trained model: the device and deterministic algorithms. The thread count reaches the
# jobs only through `threads:` (script_context sets torch's pool to it), so changing it re-runs nothing.
TORCH_COMPUTE = cfg_except("compute", exclude=("torch_threads",))


rule train_autoencoder:
    input:
        code=src(*script_imports("train_autoencoder")),
        operational=done(LAYOUT.store("{model}")),
        reanalysis=done(LAYOUT.store(REANALYSIS)),
        pseudo_obs=done(LAYOUT.pseudo_obs(IDEALIZED)),
    output:
        checkpoint=LAYOUT.model_file("{model}", "autoencoder.pt"),
        metrics=LAYOUT.model_file("{model}", "autoencoder_metrics.json"),
        curves=report(
            LAYOUT.model_file("{model}", "autoencoder_curves.png"),
            caption="../report/training_autoencoder.rst",
            category=REPORT_CATEGORIES["training"],
            subcategory="{model}",
            labels={"model": "{model}", "figure": "1. autoencoder training curves"},
        ),
    log:
        log("train_autoencoder_{model}"),
    benchmark:
        bench("train_autoencoder_{model}")
    conda:
        ENV
    threads: config["compute"]["torch_threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        torch_jobs=1,
    params:
        autoencoder=cfg("autoencoder"),
        curriculum=cfg("curriculum"),
        compute=TORCH_COMPUTE,
        grid=cfg("grid"),
    script:
        "../../scripts/train_autoencoder.py"


rule encode:
    input:
        code=src(*script_imports("encode")),
        autoencoder=rules.train_autoencoder.output.checkpoint,
        operational=done(LAYOUT.store("{model}")),
        reanalysis=done(LAYOUT.store(REANALYSIS)),
        pseudo_obs=done(LAYOUT.pseudo_obs(IDEALIZED)),
    output:
        operational=done(LAYOUT.latent("{model}", "operational")),
        reanalysis=done(LAYOUT.latent("{model}", "reanalysis")),
    log:
        log("encode_{model}"),
    benchmark:
        bench("encode_{model}")
    conda:
        ENV
    threads: config["compute"]["torch_threads"]
    resources:
        mem_mb=3000,
        runtime=15,
        torch_jobs=1,
    params:
        autoencoder=cfg("autoencoder"),
        compute=TORCH_COMPUTE,
        grid=cfg("grid"),
        zarr_format=cfg("outputs", "zarr_format"),
    script:
        "../../scripts/encode.py"


rule train_forecast:
    input:
        code=src(*script_imports("train_forecast")),
        latent_operational=rules.encode.output.operational,
        latent_reanalysis=rules.encode.output.reanalysis,
        autoencoder=rules.train_autoencoder.output.checkpoint,
        operational=done(LAYOUT.store("{model}")),
        reanalysis=done(LAYOUT.store(REANALYSIS)),
    output:
        checkpoint=LAYOUT.model_file("{model}", "forecast.pt"),
        metrics=LAYOUT.model_file("{model}", "forecast_metrics.json"),
        curves=report(
            LAYOUT.model_file("{model}", "forecast_curves.png"),
            caption="../report/training_forecast.rst",
            category=REPORT_CATEGORIES["training"],
            subcategory="{model}",
            labels={"model": "{model}", "figure": "2. forecast-model training curves"},
        ),
        gate=report(
            LAYOUT.model_file("{model}", "forecast_gate.png"),
            caption="../report/forecast_gate.rst",
            category=REPORT_CATEGORIES["training"],
            subcategory="{model}",
            labels={"model": "{model}", "figure": "3. forecast gate"},
        ),
    log:
        log("train_forecast_{model}"),
    benchmark:
        bench("train_forecast_{model}")
    conda:
        ENV
    threads: config["compute"]["torch_threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        torch_jobs=1,
    params:
        # gate.allow_failed only decides whether the filter may use a failing model: toggling it must not retrain
        forecast={**cfg("forecast"), "gate": cfg_except("forecast", "gate", exclude=("allow_failed",))},
        curriculum=cfg("curriculum"),
        compute=TORCH_COMPUTE,
        grid=cfg("grid"),
    script:
        "../../scripts/train_forecast.py"
