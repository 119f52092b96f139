"""The experiments of one filter run: the settings batched along the store's ``experiment`` dimension.

The analysis is batched over experiments (:mod:`.analysis`), so settings that only scale tensors of the cycle —
prior inflation, the model-noise scale, R (the observation-error variance, as a fraction of each observable's
variance) and the noise added to the pseudo-observations — run as one job for many values: one forecast-model call
per month for all of them. Members, noise draws
and the ensemble size are shared, so an experiment of a batched run is not bit-identical to the same value run
alone (the random stream is drawn for the whole batch), but the run is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..settings import DASection


@dataclass(frozen=True)
class Experiments:
    """The experiments of a (batched) run: one inflation (assimilation only) and one model-noise scale each."""

    inflation: tuple[float, ...] | None  # None for the free run
    model_noise_scale: tuple[float, ...]
    #: R of each experiment as a fraction of each observable's variance (None: the pseudo-observations' own R)
    obs_error_fraction: tuple[float, ...] | None = None
    #: the factor on the pseudo-observations' R of each experiment (None: 1)
    obs_error_scale: tuple[float, ...] | None = None
    #: noise added to the pseudo-observations, variance as a fraction of R (None: none); R grows by (1 + fraction)
    obs_added_noise: tuple[float, ...] | None = None

    @classmethod
    def of(cls, da: DASection, inflation, model_noise_scale, *, assimilating: bool) -> Experiments:
        """The Cartesian product of the given inflation and noise-scale values (default: the configured ones)."""
        if not assimilating and inflation is not None:
            raise ConfigError("the free run has no analysis: inflation values do not apply to it")
        infl = [float(v) for v in (inflation if inflation is not None else [da.inflation])]
        noise = [float(v) for v in (model_noise_scale if model_noise_scale is not None else [da.model_noise_scale])]
        if not infl or not noise:
            raise ConfigError("a sweep needs at least one inflation and one model_noise_scale value")
        if min(infl) < 1.0:
            raise ConfigError(f"inflation values must be ≥ 1, got {infl}")
        if min(noise) < 0.0:
            raise ConfigError(f"model_noise_scale values must be ≥ 0, got {noise}")
        if not assimilating:
            return cls(None, tuple(noise))
        pairs = [(a, b) for a in infl for b in noise]
        added = da.observations.added_noise
        return cls(
            tuple(p[0] for p in pairs),
            tuple(p[1] for p in pairs),
            obs_added_noise=(added,) * len(pairs) if added > 0 else None,
        )

    @classmethod
    def from_records(
        cls, da: DASection, records: Sequence[Mapping], *, base_error_fraction, assimilating: bool
    ) -> Experiments:
        """Experiments listed one by one; ``obs_error_fraction`` needs the pseudo-observations' own fraction."""
        allowed = {"inflation", "model_noise_scale", "obs_error_fraction", "obs_added_noise"}
        if not records:
            raise ConfigError("a sweep needs at least one experiment")
        for record in records:
            if set(record) - allowed:
                raise ConfigError(
                    f"unknown experiment settings {sorted(set(record) - allowed)} (allowed: {sorted(allowed)})"
                )
        infl = [float(r.get("inflation", da.inflation)) for r in records]
        noise = [float(r.get("model_noise_scale", da.model_noise_scale)) for r in records]
        if not assimilating and any(set(r) & {"inflation", "obs_error_fraction", "obs_added_noise"} for r in records):
            raise ConfigError("the free run has no analysis: inflation, R and observation values do not apply to it")
        if min(infl) < 1.0 or min(noise) < 0.0:
            raise ConfigError(f"inflation values must be ≥ 1 and model_noise_scale values ≥ 0, got {infl}, {noise}")
        fractions = scale = None
        if any("obs_error_fraction" in r for r in records):
            if base_error_fraction is None or not float(base_error_fraction) > 0:
                raise ConfigError("the pseudo-observation store records no error_fraction: R cannot be rescaled")
            base = float(base_error_fraction)
            fractions = tuple(float(r.get("obs_error_fraction", base)) for r in records)
            if min(fractions) <= 0:
                raise ConfigError(f"obs_error_fraction values must be > 0, got {list(fractions)}")
            scale = tuple(f / base for f in fractions)
        added = [float(r.get("obs_added_noise", da.observations.added_noise)) for r in records]
        if min(added) < 0:
            raise ConfigError(f"obs_added_noise values must be ≥ 0, got {added}")
        added = tuple(added) if assimilating and max(added) > 0 else None
        return cls(tuple(infl) if assimilating else None, tuple(noise), fractions, scale, added)

    def __len__(self) -> int:
        return len(self.model_noise_scale)

    def obs_error_variance(self, base: np.ndarray) -> np.ndarray:
        """R of each experiment, (B, m), from the pseudo-observations' R (m,): rescaled, and grown by the added noise."""
        scale = np.ones(len(self)) if self.obs_error_scale is None else np.asarray(self.obs_error_scale)
        if self.obs_added_noise is not None:
            scale = scale * (1.0 + np.asarray(self.obs_added_noise))
        return scale[:, None] * np.asarray(base, dtype=np.float64)[None, :]

    def observations(self, observations: np.ndarray, base: np.ndarray, seed: int) -> np.ndarray:
        """The observations of each experiment, (T, B, m) (without added noise (T, 1, m), which broadcasts): the record, plus the added noise of variance fraction × R
        (the pseudo-observations' own R, rescaled). One standard-normal draw (``seed``) serves every experiment, so
        the values of a sweep differ only in the noise amplitude."""
        y = np.asarray(observations, dtype=np.float64)[:, None, :]
        if self.obs_added_noise is None:
            return y
        scale = np.ones(len(self)) if self.obs_error_scale is None else np.asarray(self.obs_error_scale)
        std = np.sqrt(np.asarray(self.obs_added_noise)[:, None] * scale[:, None] * np.asarray(base)[None, :])
        draw = np.random.default_rng([seed, 0xADD]).standard_normal(y.shape)
        return y + draw * std[None]

    def records(self) -> list[dict]:
        out = [{"model_noise_scale": b} for b in self.model_noise_scale]
        if self.inflation is not None:
            out = [{"inflation": a, **r} for a, r in zip(self.inflation, out)]
        if self.obs_error_fraction is not None:
            out = [{**r, "obs_error_fraction": f} for r, f in zip(out, self.obs_error_fraction)]
        if self.obs_added_noise is not None:
            out = [{**r, "obs_added_noise": f} for r, f in zip(out, self.obs_added_noise)]
        return out
