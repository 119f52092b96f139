"""Idealized ENSO models and what is made from them.

* :mod:`~bridging.idealized.cf23` — Chen & Fang (2023) intermediate coupled model (56 equatorial nodes), compiled.
* :mod:`~bridging.idealized.cfy22` — Chen, Fang & Yu (2022) six-variable model, ACI parameter set, compiled.
* :mod:`~bridging.idealized.rng` — per-member xoshiro256** streams: runs are reproducible for a seed, and member k
  is the same whatever the member count, batching, chunking or thread count.
* :mod:`~bridging.idealized.run` — many members at once, spin-up dropped, long runs streamed to zarr.
* :mod:`~bridging.idealized.pseudo_obs` — the filter's pseudo-observations on the target grid.
* :mod:`~bridging.idealized.stats` — headline ENSO statistics of runs (definitions from :mod:`bridging.diagnostics`).
"""
