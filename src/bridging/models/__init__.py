"""Latent models of ENSO Bridge: the physically-augmented autoencoder, the latent stores, the forecast model.

* :mod:`.autoencoder` — the stage ``train_autoencoder`` (rule ``train_autoencoder``) and the autoencoder's public
  names (``load_autoencoder`` with ``encode``/``decode``, ``encode_array``, ``load_field_record``, ...), defined in
  :mod:`.conv_autoencoder` (the network), :mod:`.autoencoder_metrics` (loss and metrics) and
  :mod:`.field_records` (training data);
* :mod:`.latent` — ``encode_sources`` (rule ``encode``), ``open_latent_store``;
* :mod:`.forecast` — the stage ``train_forecast`` (rule ``train_forecast``) and the forecast models' public names
  (``load_forecast_model`` with ``initial_state``/``step``, ``noise_cov``, ``gate_passed``; ``ensure_gate_passed``),
  defined in :mod:`.forecasters` (the models), :mod:`.ridge` (closed-form fits), :mod:`.lstm_training` and
  :mod:`.model_error`;
* :mod:`.curriculum` — the epoch ``Schedule`` and the reanalysis/operational ``CurriculumSampler``;
* :mod:`.gate` — the forecast model's quality gate and held-out skill;
* :mod:`.training` — seeds, checkpoints (``weights_only``), the epoch loop with its resume checkpoint
  (:mod:`bridging.resume`), early stopping, progress; :mod:`.figures` — the stages' figures.

Submodules import torch; this package file does not, so ``import bridging.models`` stays cheap.
"""
