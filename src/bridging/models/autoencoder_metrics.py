"""The autoencoder's loss and the metrics that say what the filter can rely on.

Loss (documented here, in the checkpoint and in the metrics JSON)::

    L = L_recon + λ · L_corr
    L_recon = Σ_ocean (D(E(X)) − X)² / (number of ocean values)          (standardised units, land excluded)
    L_corr  = −(1/K) Σ_k corr_batch(z_k, y_k),   k = 0 … K−1              (K = number of observables)

i.e. latent coordinate k is *designated* to observable k and the loss rewards their Pearson correlation over the
minibatch (the "designated coordinates" form, docs/method.md, Autoencoder). We chose it over "mean over
observables of the max |corr| over latents" because it is smooth (a max is not), gives each observable a known
latent partner, and makes the value directly interpretable (−1: every designated latent is a perfect linear proxy
of its observable). Since y is itself a linear function of X here, a linear encoder layer can reach L_corr ≈ −1
without costing reconstruction, so the value is *not* a tuning target (docs/method.md, Autoencoder): the metrics
therefore also report what the filter actually relies on — how well y is linearly recoverable from z (held-out
R²), the cross-covariance norm ‖C‖, and the mean over observables of the largest |corr| with any latent — for
every run, so λ = 0 and λ > 0 can be compared on equal terms.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .conv_autoencoder import FIELD_NAMES, ConvAutoencoder, encode_array

LOSS_DEFINITION = (
    "L = L_recon + lambda * L_corr; L_recon = mean over ocean cells and both fields of the squared error of the "
    "standardised anomalies; L_corr = -(1/K) sum_k corr_batch(z_k, y_k) with latent k designated to observable k"
)


def masked_mse(recon: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the cells where ``weight`` (broadcastable to recon, 0/1) is 1."""
    se = (recon - target).square() * weight
    return se.sum() / weight.expand_as(se).sum().clamp_min(1.0)


def designated_correlations(z: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation over the batch between latent k and observable k, for k < n_obs: shape (n_obs,)."""
    n_obs = y.shape[1]
    zc = z[:, :n_obs] - z[:, :n_obs].mean(0)
    yc = y - y.mean(0)
    return (zc * yc).sum(0) / torch.sqrt(zc.square().sum(0) * yc.square().sum(0) + eps)


def correlation_loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -designated_correlations(z, y).mean()


def latent_observable_statistics(z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """How the latent space relates to the observables on one data set (numpy, float64).

    * ``corr_loss``: L_corr over the whole set (not per batch);
    * ``mean_max_abs_corr``: mean over observables of the largest |corr| with any latent (form-independent);
    * ``cross_cov_norm``: Frobenius norm ‖C‖ of C = cov(z, y / std(y)) (z in latent units; y per observable
      standardised so SST and thermocline observables weigh alike);
    * ``rms_cross_corr``: RMS of the latent–observable correlation matrix.
    """
    z = np.asarray(z, np.float64)
    y = np.asarray(y, np.float64)
    zc = z - z.mean(0)
    yc = y - y.mean(0)
    n = max(z.shape[0] - 1, 1)
    z_std = np.sqrt((zc**2).sum(0) / n)
    y_std = np.sqrt((yc**2).sum(0) / n)
    cov = zc.T @ (yc / np.where(y_std > 0, y_std, 1.0)) / n
    corr = cov / np.where(z_std > 0, z_std, np.inf)[:, None]
    k = y.shape[1]
    return {
        "corr_loss": float(-np.mean(np.diag(corr[:k, :k]))),
        "mean_max_abs_corr": float(np.mean(np.max(np.abs(corr), axis=0))),
        "cross_cov_norm": float(np.linalg.norm(cov)),
        "rms_cross_corr": float(np.sqrt(np.mean(corr**2))),
    }


def linear_recoverability(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, alpha: float = 0.1
) -> float:
    """Mean over observables of the R² of a ridge regression y ≈ A z + c fitted on training data, scored on test data.

    This is what the filter's linear update needs (corrections of y reaching z through a linear cross-covariance),
    independent of which latent coordinates carry the information. ``alpha`` is relative to the per-sample Gram
    matrix of the standardised latents (the default α: docs/method.md, Autoencoder).
    """
    zt = np.asarray(z_train, np.float64)
    mu, sd = zt.mean(0), zt.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    a = (zt - mu) / sd
    yt = np.asarray(y_train, np.float64)
    y_mu = yt.mean(0)
    gram = a.T @ a / a.shape[0]
    coef = np.linalg.solve(gram + alpha * np.eye(gram.shape[0]), a.T @ (yt - y_mu) / a.shape[0])
    pred = ((np.asarray(z_test, np.float64) - mu) / sd) @ coef + y_mu
    y_test = np.asarray(y_test, np.float64)
    resid = ((y_test - pred) ** 2).sum(0)
    total = ((y_test - y_test.mean(0)) ** 2).sum(0)
    return float(np.mean(1.0 - resid / np.where(total > 0, total, np.inf)))


@torch.no_grad()
def evaluate(
    model: ConvAutoencoder,
    fields: np.ndarray,
    observables: np.ndarray,
    loss_mask: np.ndarray,
    *,
    batch_size: int,
    device,
) -> tuple[dict, np.ndarray]:
    """Held-out losses over a whole set: L_recon, L_corr (over the set, not per batch), ‖C‖ and per-field errors."""
    model.eval()
    z = encode_array(model, fields, batch_size=batch_size, device=device)
    weight = torch.as_tensor(loss_mask, dtype=torch.float32, device=device)[None, None]
    se_sum = np.zeros(model.n_fields)
    var_sum = np.zeros(model.n_fields)
    for start in range(0, fields.shape[0], batch_size):
        target = torch.as_tensor(fields[start : start + batch_size], device=device)
        recon = model.decode_raw(torch.as_tensor(z[start : start + batch_size], device=device))
        se_sum += ((recon - target).square() * weight).sum((0, 2, 3)).double().cpu().numpy()
        var_sum += (target.square() * weight).sum((0, 2, 3)).double().cpu().numpy()
    n_values = float(loss_mask.sum()) * fields.shape[0]
    stats = latent_observable_statistics(z, observables)
    return {
        "recon_loss": float(se_sum.sum() / (n_values * model.n_fields)),
        "recon_mse_by_field": {f: float(se_sum[i] / n_values) for i, f in enumerate(FIELD_NAMES)},
        # Anomalies have ~zero mean, so the mean square is the variance the decoder has to explain.
        "explained_variance_by_field": {
            f: float(1.0 - se_sum[i] / var_sum[i]) if var_sum[i] > 0 else None for i, f in enumerate(FIELD_NAMES)
        },
        **stats,
    }, z


def with_physical_errors(metrics: dict, field_std: dict[str, float]) -> dict:
    units = {"sst": "degC", "thermocline_depth": "m"}
    metrics["recon_rmse_physical"] = {
        f: {"value": math.sqrt(metrics["recon_mse_by_field"][f]) * field_std[f], "units": units[f]} for f in FIELD_NAMES
    }
    return metrics
