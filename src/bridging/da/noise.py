"""Model noise of the filter's stochastic forecast: Gaussian noise with the forecast model's covariance Q
(``noise_cov``, scaled by ``da.model_noise_scale``), drawn through a factor L with L Lᵀ = Q, and the adaptive
amplitude that answers the innovations (``da.adaptive_noise``).

Why the forecast is stochastic: with a deterministic forecast the ensemble collapsed even with inflation
(docs/method.md, Filter: "Stochastic forecast"). Why adaptive: with a constant noise the filter is over-dispersive in
quiet decades and too tight in active ones (docs/method.md, Filter: "Adaptive model noise").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputDataError


def noise_factor(noise_cov, *, path=None) -> torch.Tensor:
    """A float64 factor L with L Lᵀ = noise_cov: Cholesky, or a scaled eigenbasis when noise_cov is only semi-definite
    (a residual covariance estimated from fewer months than state entries is singular)."""
    q = torch.as_tensor(np.asarray(noise_cov), dtype=torch.float64)
    if q.dim() != 2 or q.shape[0] != q.shape[1]:
        raise InputDataError(path, f"noise_cov must be a square matrix, got shape {tuple(q.shape)}")
    if not bool(torch.isfinite(q).all()):
        raise InputDataError(path, "noise_cov contains NaN/Inf")
    q = 0.5 * (q + q.T)
    factor, info = torch.linalg.cholesky_ex(q)
    if int(info) == 0:
        return factor
    vals, vecs = torch.linalg.eigh(q)
    scale = float(vals.abs().max()) or 1.0
    if float(vals[0]) < -1e-8 * scale:
        raise InputDataError(
            path, f"noise_cov is not positive semi-definite (smallest eigenvalue {float(vals[0]):.3g})"
        )
    return vecs * vals.clamp_min(0).sqrt()


@dataclass(frozen=True)
class NoiseSplit:
    """The model-noise covariance Q of x = [z; y] split into the observables' noise and the latent noise they do not
    explain: y_n = L_y ξ_y, z_n = A y_n + L_e ξ_e with A = Q_zy Q_yy⁻¹ and L_e L_eᵀ = Q_zz − A Q_yz (the conditional
    covariance), so that [z_n; y_n] ~ N(0, Q) exactly.

    Why: the adaptive noise factor should answer the innovations, which see only the observables and the latent
    directions they explain; the latent directions the observables do not see carry the operational model's own
    variability (the detail the bridge must keep), and their noise keeps its estimated amplitude.
    """

    gain: torch.Tensor  # A (n_latent, n_obs)
    latent_factor: torch.Tensor  # L_e (n_latent, n_latent)
    obs_factor: torch.Tensor  # L_y (n_obs, n_obs)

    @classmethod
    def from_covariance(cls, noise_cov, n_latent: int, *, device, dtype) -> NoiseSplit:
        q = torch.as_tensor(np.asarray(noise_cov), dtype=torch.float64)
        q = 0.5 * (q + q.T)
        q_zz, q_zy, q_yy = q[:n_latent, :n_latent], q[:n_latent, n_latent:], q[n_latent:, n_latent:]
        # a pseudo-inverse: a covariance estimated from a short record may be singular in the observable block
        gain = q_zy @ torch.linalg.pinv(q_yy, hermitian=True)
        conditional = q_zz - gain @ q_zy.T

        def sqrt_psd(c):
            vals, vecs = torch.linalg.eigh(0.5 * (c + c.T))
            return vecs * vals.clamp_min(0).sqrt()

        to = dict(device=device, dtype=dtype)
        return cls(gain.to(**to), sqrt_psd(conditional).to(**to), sqrt_psd(q_yy).to(**to))


def adaptive_noise_draw(
    xi: torch.Tensor, split: NoiseSplit, std_scale: torch.Tensor, factor: torch.Tensor
) -> torch.Tensor:
    """Model noise (B, N, n) from standard normals ``xi`` (B, N, n): the observables' noise (and the latent noise it
    explains) scaled by std_scale·factor per experiment, the unexplained latent noise by std_scale only."""
    n_latent = split.latent_factor.shape[0]
    y_noise = (xi[..., n_latent:] @ split.obs_factor.mT) * (std_scale * factor)[:, None, None]
    z_noise = y_noise @ split.gain.mT + (xi[..., :n_latent] @ split.latent_factor.mT) * std_scale[:, None, None]
    return torch.cat([z_noise, y_noise], dim=-1)


@dataclass(frozen=True)
class AdaptiveNoise:
    """Settings of the online model-noise amplitude (``DASection.adaptive_noise``)."""

    timescale_months: int
    min_factor: float
    max_factor: float

    def update(self, adapt: torch.Tensor, d2: torch.Tensor, s2: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """One month of adaptation. ``adapt`` (B, 3) = [factor f on the model-noise std, running mean of d², running
        mean of spread² + R]; d2, s2, r (B,) are this month's mean standardised squared innovation, forecast spread²
        and observation-error variance.

        The running means (e-folding ``timescale_months``) estimate E[d²] and E[spread² + R]; f takes a slow
        multiplicative step toward their ratio being 1: log f += ½ log(E[d²] / E[spread² + R]) / timescale. Ratios of
        running means, not running means of monthly ratios: d² over strongly correlated observables is heavy-tailed,
        so the mean of log ratios settles where the ratio of sums is 2–3. The spread answers f at once, the small gain
        keeps the loop stable.
        """
        w = 1.0 / self.timescale_months
        factor, run_d2, run_p = adapt.unbind(-1)
        first = torch.isnan(run_d2)
        run_d2 = torch.where(first, d2, (1 - w) * run_d2 + w * d2)
        run_p = torch.where(first, s2 + r, (1 - w) * run_p + w * (s2 + r))
        tiny = torch.finfo(d2.dtype).tiny
        log_ratio = torch.log(run_d2.clamp_min(tiny) / run_p.clamp_min(tiny))
        factor = (factor * torch.exp(0.5 * w * log_ratio)).clamp(self.min_factor, self.max_factor)
        return torch.stack([factor, run_d2, run_p], dim=-1)
