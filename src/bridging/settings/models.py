"""Latent models: the physically-augmented autoencoder, the curriculum, and the latent forecast model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import Section


class CurriculumSection(Section):
    """Probability that a training sample comes from the reanalysis: linear from p_start to p_max by ramp_end_epoch."""

    p_start: float = Field(0.0, ge=0, le=1, description="p_0 at epoch 0.")
    p_max: float = Field(0.6, ge=0, le=1, description="p_max, reached at ramp_end_epoch and kept after.")
    ramp_end_epoch: int | None = Field(None, ge=1, description="e_f; null = half of the training epochs.")
    apply_to_autoencoder: bool = Field(
        True,
        description="Drive the autoencoder's training with the same schedule (the seed: the curriculum shapes the latent "
        "representation). On by default: an autoencoder trained on the operational model alone cannot represent the "
        "corrected states the filter asks for when the model's pattern is biased (DEMO-CESM2, shifted 15° west: the "
        "filter's decoded-vs-analysis consistency 0.55–0.67 in every decade, whatever the forecast skip or noise; "
        "0.96–0.99 with it). Its cost: the decoder also learns some reanalysis off-equatorial variability (residual-std "
        "maps of the bridging model correlate 0.85 / 0.82 with the operational model's, 0.95 / 0.97 without; docs/method.md).",
    )


class AutoencoderSection(Section):
    latent_dim: int = Field(
        501, ge=1, description="Number of latent variables n_l (must be >= the number of observables)."
    )
    channels: list[int] = Field(
        [16, 32, 64, 128], min_length=1, description="Channels of the convolutional blocks (stride 2 each)."
    )
    lambda_corr: float = Field(
        0.1,
        ge=0,
        description="Weight λ of the correlation loss L_corr = −mean_k corr(z_k, y_k) (latent k designated to observable k).",
    )
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(
        32, ge=2, description="Minibatch size; >= 2 because L_corr is a correlation over the batch."
    )
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    validation_fraction: float = Field(0.15, gt=0, lt=1, description="Last fraction of the record held out.")
    patience: int = Field(8, ge=1, description="Early-stopping patience (epochs) on held-out loss.")
    encode_batch_size: int = Field(256, ge=1, description="Fields per batch when encoding and decoding.")
    seed: int = Field(0)

    @field_validator("channels")
    @classmethod
    def _positive_channels(cls, channels: list[int]) -> list[int]:
        if any(c < 1 for c in channels):
            raise ValueError(f"channels must be positive, got {channels}")
        return channels


class GateSection(Section):
    leads: list[int] = Field(
        [1, 3, 6, 12], min_length=1, description="Lead times (months) of the held-out rollout skill."
    )
    free_run_years: int = Field(100, ge=1, description="Length of the noisy free run of the gate.")
    std_tolerance: float = Field(
        0.3, gt=0, description="Decoded Niño 3 / Niño 4 std must stay within this fraction of the training data's."
    )
    blowup_threshold: float = Field(
        25.0,
        gt=0,
        description="A free run whose standardised state exceeds this magnitude anywhere has blown up (fail).",
    )
    consistency_min: float = Field(
        0.85,
        ge=-1,
        le=1,
        description="The free run's decoded observables must correlate at least this much with its y (pooled over months "
        "and observables): y and the latent state must not drift apart, or the filter corrects y but not the fields. "
        "A guard against gross drift (a skip fitted to off-manifold states gave 0.5–0.8; the demo models reach 0.97–0.98); "
        "the filter itself warns below 0.9.",
    )
    seed: int = Field(0, description="Seed of the free run's model noise.")
    allow_failed: bool = Field(
        False, description="Let the assimilation use a model that failed its gate (explicit override)."
    )

    @field_validator("leads")
    @classmethod
    def _positive_sorted_leads(cls, leads: list[int]) -> list[int]:
        if any(lead < 1 for lead in leads) or sorted(set(leads)) != leads:
            raise ValueError(f"leads must be positive, unique and increasing, got {leads}")
        return leads


class ModelNoiseSection(Section):
    """The forecast model's model error: a constant covariance Q and an optional state-dependent amplitude on its
    leading modes (bridging.models.model_error)."""

    covariance: Literal["heldout_residuals", "fluctuation_dissipation"] = Field(
        "heldout_residuals",
        description="Q: the covariance of held-out one-step residuals, or C − W C Wᵀ (the linear model's stationary "
        "covariance equals the training data's; for the LSTM, W is its frozen skip).",
    )
    state_dependent: bool = Field(
        True,
        description="Scale the noise along Q's leading eigenvectors by g(x) = exp(½(θ₀ + θ·PCs of the state)), fitted by "
        "the residuals' likelihood (a penalty chosen on held-out months; g ≡ 1 when none beats a constant amplitude). "
        "On by default: it wins on held-out likelihood on both demo models; it does not change their bridging "
        "statistics (docs/method.md, Forecast model).",
    )
    modes: int = Field(16, ge=1, description="Leading eigenvectors of Q whose amplitude depends on the state.")
    predictors: int = Field(8, ge=1, description="Leading principal components of the state the amplitude depends on.")


class ForecastSection(Section):
    kind: Literal["lstm", "linear"] = Field(
        "linear",
        description="Forecast model used by the filter (the linear one is always fitted as the baseline). linear by "
        "default: on the demo the LSTM, trained to the end of its schedules, was the linear model (DEMO-CESM2, no epoch "
        "beat it) or forecast decoded Niño 3 worse at 6–12 months (DEMO-GFDL-CM4: correlation 0.87 / 0.59 vs 0.90 / "
        "0.74; one seed; docs/method.md, Forecast model).",
    )
    hidden: int = Field(128, ge=1, description="LSTM hidden size.")
    lstm_subspace: int | None = Field(
        32,
        ge=1,
        description="The LSTM sees and corrects the leading k principal components of the standardised state "
        "(null = the whole state); the frozen linear skip carries every direction.",
    )
    layers: int = Field(1, ge=1)
    dropout: float = Field(
        0.1, ge=0, lt=1, description="Dropout on the LSTM output before the (zero-initialised) correction head."
    )
    teacher_forcing_months: int = Field(12, ge=1, description="Teacher-forced warm-up months before the rollout.")
    rollout_max: int = Field(12, ge=1, description="Rollout length k reached by the end of the ramp.")
    rollout_ramp_fraction: float = Field(
        0.6, gt=0, le=1, description="Fraction of training over which k ramps 1 → rollout_max."
    )
    input_noise: float = Field(
        0.1, ge=0, description="Std of noise added to the standardised LSTM inputs while training."
    )
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay of the LSTM correction.")
    learning_rate: float = Field(1e-3, gt=0)
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(32, ge=1)
    sequences_per_epoch: int | None = Field(
        None, ge=1, description="Training sequences drawn per epoch; null = the number of operational training windows."
    )
    skip_data: Literal["operational", "curriculum"] = Field(
        "curriculum",
        description="Months the linear model (and so the LSTM's frozen skip) and the model-error covariance are fitted on: "
        "the curriculum's final mixture (1 − p_max operational, p_max reanalysis) or the operational record. The skip "
        "carries every direction of the state and must keep y consistent with the decoded z, so it needs latent states "
        "the autoencoder represents: with curriculum.apply_to_autoencoder off, reanalysis states sit off the manifold "
        "and a mixture skip lets y and D(z) drift apart (docs/method.md, Forecast model); use operational there.",
    )
    ridge_alpha: float = Field(
        0.1,
        ge=0,
        description="Ridge penalty of the linear model, relative to the weighted per-sample Gram matrix of the standardised "
        "state (XᵀWX + αI, weights summing to 1); held-out skill on the demo-like data was flat for α in 0.003–1.",
    )
    validation_fraction: float = Field(0.15, gt=0, lt=1, description="Last fraction of each record held out.")
    patience: int = Field(
        10,
        ge=1,
        description="Early-stopping patience (epochs) on the held-out ENSO-index score, counted only once the rollout "
        "and curriculum ramps have ended (earlier epochs do not compete for the best).",
    )
    score_leads: tuple[int, int] = Field(
        (3, 12),
        description="Leads (first, last month) over which the held-out error of the ENSO indices (Niño 3 / Niño 4 of the "
        "observed SST boxes, two leading principal components of the observables) is averaged: the stopping score.",
    )
    seed: int = Field(0)
    noise: ModelNoiseSection = Field(default_factory=ModelNoiseSection)
    gate: GateSection = Field(default_factory=GateSection)

    @field_validator("score_leads")
    @classmethod
    def _ordered_score_leads(cls, leads: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= leads[0] <= leads[1]:
            raise ValueError(f"score_leads must be (first, last) with 1 <= first <= last, got {list(leads)}")
        return leads
