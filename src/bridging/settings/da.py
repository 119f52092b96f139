"""The latent ensemble Kalman filter run and decoding of its output."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import Section


class LocalizationSection(Section):
    """Localization in observation space, projected onto the ensemble span (bridging.da.analysis).

    The observable–observable covariance is tapered, ρ ∘ C_yy, the localized observable increments are fitted by least
    squares with combinations of the members, and z and y move by those same weights: the increments stay in the
    ensemble span and balanced (y is a function of the decoded z). The old Schur taper on the whole state–observation
    covariance gave z and y increments that did not match and diverged with trained models (docs/method.md, Filter).
    """

    enabled: bool = Field(
        False,
        description="Gaspari–Cohn taper on the observation–observation covariance, projected onto the ensemble span "
        "(z and y keep the same member weights). Off by default: docs/method.md, Filter, has the measurements.",
    )
    obs_halfwidth_deg: float = Field(
        250.0,
        gt=0,
        description="GC half-width c of the zonal distance between observables, in degrees of longitude (zero from "
        "2c on). Keep it wide: the 126–280 °E pairs carry ENSO's basin-scale thermocline–SST covariance (c = 250 keeps "
        "a weight of 0.56 on them).",
    )


class AdaptiveNoiseSection(Section):
    """Online estimate of the model-error amplitude from the innovations (adaptive additive noise).

    Why: the stored noise covariance is the forecast model's average one-month error, but the predictability of the
    pseudo-observations varies with ENSO's decadal regime (CF23's Walker variable), so a constant noise makes the
    filter over-dispersive in quiet decades and too tight in active ones. Each month the factor on the noise std
    takes a small multiplicative step toward consistency of the running means, E[d²] = E[spread² + R]
    (bridging.da.noise.AdaptiveNoise). The factor applies to the noise of the observables and of the latent directions
    they explain; the latent noise the observables do not see (the operational model's own variability, which the
    bridge must keep) keeps its estimated amplitude (bridging.da.noise.NoiseSplit).
    """

    enabled: bool = Field(
        True,
        description="Adapt the model-noise amplitude to the innovation statistics (assimilation only). On by default: "
        "without it the per-decade innovation ratio of the demo's filters is 0.07–0.93 (median 0.22–0.24), with or "
        "without the state-dependent noise head, because Q is fitted on records less predictable than the "
        "pseudo-observations (`bridging noise-budget`); a constant factor cannot follow the decades (docs/method.md, "
        "Filter).",
    )
    timescale_months: int = Field(
        6,
        ge=1,
        description="e-folding time of the running innovation statistics, and the inverse gain of each month's step.",
    )
    min_factor: float = Field(0.1, gt=0, description="Lower bound of the factor on the noise standard deviation.")
    max_factor: float = Field(5.0, gt=0, description="Upper bound of the factor on the noise standard deviation.")

    @model_validator(mode="after")
    def _bounds_in_order(self):
        if self.min_factor > self.max_factor:
            raise ValueError(f"min_factor ({self.min_factor}) must not exceed max_factor ({self.max_factor})")
        return self


#: a hierarchy source: an idealized model and an optional region suffix (bridging.da.sources.REGIONS)
SOURCE_PATTERN = re.compile(r"(cf23|cfy22|xro)(?:_(wp|cp|ep))?")


def source_models(sources) -> list[str]:
    """The idealized models of ``da.observations.sources`` entries (``cf23_ep`` → ``cf23``), in order."""
    return [SOURCE_PATTERN.fullmatch(s).group(1) for s in sources]


class AssimilatedObservationsSection(Section):
    """Which of the pseudo-observations the filter assimilates, and how noisy: the seed paper's SST-only check and its
    open question 4 (fewer or noisier pseudo-observations). The state keeps every observable (the models are the main
    run's); an observable left out is simply not assimilated, and its innovation is reported as withheld."""

    variables: list[Literal["sst", "thermocline_depth"]] = Field(
        ["sst", "thermocline_depth"], min_length=1, description="Observed variables (SST only: [sst])."
    )
    node_stride: int = Field(
        1, ge=1, description="Assimilate every k-th node of each variable (west to east; 2: every 2nd node)."
    )
    added_noise: float = Field(
        0.0,
        ge=0,
        description="Extra Gaussian noise added to the pseudo-observations, variance = this fraction of R; the filter "
        "is told (its R becomes (1 + fraction) R). One fixed draw (seed da.seed) for every value of a sweep.",
    )

    sources: list[str] = Field(
        [],
        description="The model hierarchy: idealized models whose pseudo-observations are assimilated together as one "
        "observation vector (cf23, cfy22, xro), each optionally restricted by a suffix to the observables centred in "
        "a region: _wp 120–160 °E, _cp 160–210 °E, _ep 210–280 °E (e.g. [cf23_ep, cfy22_cp]). Empty: idealized.model "
        "alone. The runs of different models are independent, so models observing the same region contradict each "
        "other; another model than idealized.model is observed through the state's observables (docs/method.md, "
        "Model hierarchy).",
    )

    @field_validator("variables")
    @classmethod
    def _unique(cls, variables):
        if len(set(variables)) != len(variables):
            raise ValueError(f"variables listed twice: {variables}")
        return variables

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, sources):
        bad = [s for s in sources if not SOURCE_PATTERN.fullmatch(s)]
        if bad:
            raise ValueError(f"unknown sources {bad}: a model (cf23, cfy22, xro), optionally with _wp, _cp or _ep")
        models = source_models(sources)
        if len(set(models)) != len(models):
            raise ValueError(f"a model listed twice in {sources}: give each model once (one region)")
        return sources


class DASection(Section):
    method: Literal["stochastic", "etkf"] = Field(
        "stochastic", description="stochastic: perturbed observations; etkf: deterministic symmetric square root."
    )
    ensemble_size: int = Field(50, ge=2)
    inflation: float = Field(
        1.09, ge=1.0, description="Factor on the forecast anomalies before each analysis (prior inflation)."
    )
    localization: LocalizationSection = Field(default_factory=LocalizationSection)
    model_noise_scale: float = Field(
        1.0,
        ge=0,
        description="Factor on the forecast model's stored model-error covariance (noise_cov) added each month.",
    )
    adaptive_noise: AdaptiveNoiseSection = Field(default_factory=AdaptiveNoiseSection)
    observations: AssimilatedObservationsSection = Field(default_factory=AssimilatedObservationsSection)
    reencode: bool = Field(
        False,
        description="Re-encode each analysis member through the autoencoder, z ← E(D(z)). Off by default: it helps only "
        "when E(D(z)) ≈ z on the manifold (the prototype's well-trained autoencoder: Niño 3 skewness +0.22 → +0.48); "
        "with a 2-epoch one (E(D(z)) moved z by 0.44 of its spread) it collapsed the ensemble (innovation ratio 9.2 "
        "vs 0.56). The statistics JSON reports autoencoder.reencode_relative_change to decide.",
    )
    months: int | None = Field(None, ge=1, description="Length of the run; null = the whole pseudo-observation record.")
    dtype: Literal["float32", "float64"] = Field("float32")
    seed: int = Field(0)
    init_warmup_months: int = Field(
        12, ge=0, description="Training months fed through the forecast model to spin up each member's recurrent state."
    )
    checkpoint_months: int = Field(
        120, ge=1, description="Months between resumable checkpoints (also the time chunk of the output store)."
    )
    consistency_members: int = Field(
        5,
        ge=0,
        description="Members decoded every month to check decoded fields at the observation points against y "
        "(one decoder call a month; 0 switches the check off). A batched run (a sweep's experiments) shares them: "
        "each experiment checks ceil(this / experiments) members, at least one, so a sweep decodes no more a month "
        "than one run does.",
    )
    innovation_ratio_warn: float = Field(
        2.0, gt=0, description="Warn (ensemble collapse) when a decade's E[d²]/(spread² + R) exceeds this."
    )
    consistency_warn: float = Field(
        0.9,
        gt=-1,
        le=1,
        description="Warn when a decade's correlation of decoded vs analysis observables falls below this.",
    )


class DecodeSection(Section):
    n_realizations: int = Field(5, ge=1, description="Analysis members decoded as the bridging model's realizations.")
    batch_size: int = Field(256, ge=1, description="Latent vectors decoded per batch.")
    time_chunk: int = Field(
        120, ge=1, description="Months per chunk of the decoded store (decoded and written one chunk at a time)."
    )
