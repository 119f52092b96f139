"""Latent models of ENSO Bridge: the physically-augmented autoencoder, the latent stores, the forecast model.

* :mod:`.autoencoder` — ``train_autoencoder`` (rule ``train_autoencoder``), ``load_autoencoder`` (``encode``/``decode``);
* :mod:`.latent` — ``encode_sources`` (rule ``encode``), ``open_latent_store``;
* :mod:`.forecast` — ``train_forecast`` (rule ``train_forecast``), ``load_forecast_model`` (``initial_state``/``step``,
  ``noise_cov``, ``gate_passed``), ``ensure_gate_passed``;
* :mod:`.curriculum` — the epoch ``Schedule`` and the reanalysis/operational ``CurriculumSampler``;
* :mod:`.gate` — the forecast model's quality gate and held-out skill;
* :mod:`.training` — seeds, checkpoints (``weights_only``), resume, early stopping, progress and figures.

Submodules import torch; this package file does not, so ``import bridging.models`` stays cheap.
"""
