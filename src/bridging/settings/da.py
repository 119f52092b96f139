"""The latent ensemble Kalman filter run and decoding of its output."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Section


class LocalizationSection(Section):
    enabled: bool = Field(True, description="Gaspari–Cohn localization; off is right when N exceeds the number of observables.")
    obs_halfwidth_deg: float = Field(30.0, gt=0, description="GC half-width c between observables, in degrees of longitude.")
    latent_halfwidth: float = Field(0.45, gt=0, description="GC half-width on d = 1 − |corr| between latent variables and observables.")


class DASection(Section):
    method: Literal["stochastic", "etkf"] = Field("stochastic", description="Analysis variant.")
    ensemble_size: int = Field(50, ge=2)
    inflation: float = Field(1.09, ge=1.0, description="Multiplicative inflation of the forecast anomalies.")
    localization: LocalizationSection = Field(default_factory=LocalizationSection)
    model_noise_scale: float = Field(1.0, ge=0, description="Factor on the stored model-error covariance added each forecast.")
    reencode: bool = Field(True, description="Re-encode each analysis member through the autoencoder, z ← E(D(z)).")
    months: int | None = Field(None, ge=1, description="Length of the run; null = the whole pseudo-observation record.")
    dtype: Literal["float32", "float64"] = Field("float32")
    seed: int = Field(0)


class DecodeSection(Section):
    n_realizations: int = Field(5, ge=1, description="Analysis members decoded as the bridging model's realizations.")
    batch_size: int = Field(256, ge=1)
