"""Latent models: the physically-augmented autoencoder, the curriculum, and the latent forecast model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Section


class CurriculumSection(Section):
    """Probability that a training sample comes from the reanalysis: linear from p_start to p_max by ramp_end_epoch."""

    p_start: float = Field(0.0, ge=0, le=1, description="p_0 at epoch 0.")
    p_max: float = Field(0.6, ge=0, le=1, description="p_max, reached at ramp_end_epoch and kept after.")
    ramp_end_epoch: int | None = Field(None, ge=1, description="e_f; null = half of the training epochs.")
    apply_to_autoencoder: bool = Field(False, description="Drive the autoencoder's training with the same schedule.")


class AutoencoderSection(Section):
    latent_dim: int = Field(501, ge=1, description="Number of latent variables n_l.")
    channels: list[int] = Field([32, 64, 128, 256], description="Channels of the convolutional blocks (stride 2 each).")
    lambda_corr: float = Field(0.1, ge=0, description="Weight λ of the correlation loss.")
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    validation_fraction: float = Field(0.15, gt=0, lt=1, description="Last fraction of the record held out.")
    patience: int = Field(8, ge=1, description="Early-stopping patience (epochs) on held-out loss.")
    seed: int = Field(0)


class GateSection(Section):
    free_run_years: int = Field(100, ge=1, description="Length of the noisy free run of the gate.")
    std_tolerance: float = Field(0.3, gt=0, description="Decoded Niño 3 / Niño 4 std must stay within this fraction of the training data's.")
    allow_failed: bool = Field(False, description="Let the assimilation use a model that failed its gate (explicit override).")


class ForecastSection(Section):
    kind: Literal["lstm", "linear"] = Field("lstm", description="Forecast model used by the filter.")
    hidden: int = Field(256, ge=1)
    layers: int = Field(1, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    teacher_forcing_months: int = Field(12, ge=1, description="Teacher-forced warm-up months before the rollout.")
    rollout_max: int = Field(12, ge=1, description="Rollout length k reached by the end of the ramp.")
    rollout_ramp_fraction: float = Field(0.6, gt=0, le=1, description="Fraction of training over which k ramps 1 → rollout_max.")
    input_noise: float = Field(0.1, ge=0, description="Std of noise added to the standardised inputs while training.")
    weight_decay: float = Field(0.1, ge=0)
    learning_rate: float = Field(1e-3, gt=0)
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(32, ge=1)
    ridge_alpha: float = Field(1.0, ge=0, description="Ridge penalty of the linear model (standardised units).")
    validation_fraction: float = Field(0.15, gt=0, lt=1)
    patience: int = Field(10, ge=1)
    seed: int = Field(0)
    gate: GateSection = Field(default_factory=GateSection)
