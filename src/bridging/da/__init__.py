"""The latent ensemble Kalman filter (the da stage).

* :mod:`bridging.da.run` — the stage: the assimilation run and the free run (rules ``assimilate`` / ``free_run``);
* :mod:`bridging.da.inputs` — its input files, models, autoencoder hooks and initial ensemble;
* :mod:`bridging.da.cycle` — the forecast + analysis loop on tensors (``run_cycles``);
* :mod:`bridging.da.noise` — the model noise of the stochastic forecast, adaptive amplitude included;
* :mod:`bridging.da.analysis` — ``analysis(ensemble, obs, obs_var, *, method, inflation, taper, obs_perturbations,
  generator)``: one batched EnKF analysis (stochastic or ETKF) with H = [0 I]; also re-exported here as
  ``bridging.da.analysis``;
* :mod:`bridging.da.localization` — Gaspari–Cohn tapers for the augmented state [z; y];
* :mod:`bridging.da.statistics` — innovation statistics, spreads and the decoded-vs-analysis consistency;
* :mod:`bridging.da.checkpoint` — the resumable output store and the filter state saved beside it;
* :mod:`bridging.da.decode` — decoding members into the bridging model's store (rule ``decode``).
"""

from .analysis import analysis

__all__ = ["analysis"]
