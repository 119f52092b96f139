"""Model error of a forecast model (``forecast.noise``), stored with the model: a constant covariance Q
(``noise_cov``) and, optionally, a state-dependent amplitude on its leading modes (the stochastic head).

* ``heldout_residuals``: Q = the covariance of one-step residuals on held-out months (training residuals
  underestimate it): right for one-month forecast error, but a free run with it is more variable than the data;
* ``fluctuation_dissipation``: Q = C − W C Wᵀ with C the training mixture's covariance and W the linear model (the
  LSTM's frozen skip): the discrete linear-inverse-model relation that makes the linear model's stationary
  covariance equal to C, i.e. Q calibrated on the climate the filter must reproduce, not on one-month error;
* the head (:func:`fit_noise_head`): log g_i² linear in the leading principal components of the state, fitted by
  the Gaussian likelihood of the one-step residuals along Q's leading eigenvectors, penalty chosen on held-out months,
  normalised so that the mean of g² over the training states is 1 (Q stays the average covariance). Why: a mean
  forecast cannot make skewness; in CF23 most of the asymmetry comes from forcing whose amplitude depends on the state.

Why the forecast must be stochastic at all: a deterministic forecast collapsed the filter's ensemble (docs/method.md,
Filter: "Stochastic forecast").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from .forecasters import LatentForecaster

log = logging.getLogger(__name__)

#: penalties (per month of data) on the head's state coefficients tried against the held-out likelihood
HEAD_PENALTIES = (1e-3, 1e-2, 1e-1, 1.0)


@torch.no_grad()
def one_step_pairs(model: LatentForecaster, x: np.ndarray, warmup: int, device) -> tuple[np.ndarray, np.ndarray]:
    """(residuals x_{t+1} − f(x_t), origins x_t) along a segment stepped teacher-forced with the state carried; the
    first ``warmup`` months dropped."""
    model.eval()
    xt = torch.as_tensor(x, device=device)
    state = model.initial_state(1, device, xt.dtype)
    residuals, origins = [], []
    for t in range(x.shape[0] - 1):
        pred, state = model.step(xt[t : t + 1], state)
        if t + 1 >= warmup:
            residuals.append((xt[t + 1 : t + 2] - pred)[0])
            origins.append(xt[t])
    if len(residuals) < 2:
        raise ValueError(
            f"a held-out segment of {x.shape[0]} months leaves fewer than 2 residuals after {warmup} warm-up months"
        )
    return torch.stack(residuals).double().cpu().numpy(), torch.stack(origins).double().cpu().numpy()


def one_step_residuals(model: LatentForecaster, x: np.ndarray, warmup: int, device) -> np.ndarray:
    """x_{t+1} − f(x_t) along a segment (:func:`one_step_pairs`)."""
    return one_step_pairs(model, x, warmup, device)[0]


def fluctuation_dissipation_covariance(
    weight: np.ndarray, segments: list[np.ndarray], segment_weights: list[float]
) -> tuple[np.ndarray, dict]:
    """Q = C − W C Wᵀ (standardised units) from the linear model W and the standardised training segments, C their
    weighted second moment (the standardisation removed the mixture's mean). Negative eigenvalues (W from a
    penalised fit, sampling error) are set to zero and reported."""
    total = float(sum(segment_weights))
    c = sum(
        (w / total) * (s.astype(np.float64).T @ s.astype(np.float64)) / s.shape[0]
        for s, w in zip(segments, segment_weights)
    )
    w_ = np.asarray(weight, np.float64)
    q = c - w_ @ c @ w_.T
    vals, vecs = np.linalg.eigh(0.5 * (q + q.T))
    clipped = vals < 0
    q = (vecs * np.clip(vals, 0, None)) @ vecs.T
    return q, {
        "negative_eigenvalues_clipped": int(clipped.sum()),
        "clipped_trace_fraction": float(-vals[clipped].sum() / np.abs(vals).sum()),
    }


def residual_covariance(residuals: list[np.ndarray], weights: list[float]) -> tuple[np.ndarray, dict]:
    """Weighted pool of per-record residual covariances (each about its own mean: a mean residual is a bias, not
    noise; its size is reported), and a summary."""
    total = float(sum(weights))
    cov = np.zeros((residuals[0].shape[1],) * 2)
    records = []
    for r, w in zip(residuals, weights):
        c = np.cov(r, rowvar=False)
        cov += (w / total) * c
        records.append(
            {
                "months": int(r.shape[0]),
                "weight": w / total,
                "trace": float(np.trace(c)),
                "mean_residual_norm": float(np.linalg.norm(r.mean(0))),
            }
        )
    return cov, {"trace": float(np.trace(cov)), "rank": int(np.linalg.matrix_rank(cov)), "records": records}


@dataclass(frozen=True)
class NoiseHead:
    """The fitted head: modes U (n, k) and predictors P (n, p) in standardised units, θ (k, p + 1), and a summary."""

    modes: np.ndarray
    predictors: np.ndarray
    coef: np.ndarray
    summary: dict


def fit_noise_head(
    q_standardised: np.ndarray,
    predictors: np.ndarray,
    train: list[tuple[np.ndarray, np.ndarray, float]],
    heldout: list[tuple[np.ndarray, np.ndarray, float]],
    n_modes: int,
) -> NoiseHead:
    """Fit log g_i² = θ_i0 + θ_i·(Pᵀx̃) to the residuals along the k leading eigenvectors of the standardised Q.

    ``train`` / ``heldout``: (residuals, origins, weight) per record, standardised units (residuals divided by the
    state std, origins standardised). The penalty on the state coefficients is the one of ``HEAD_PENALTIES`` with the
    best held-out likelihood; when no penalty beats the state-independent amplitude on held-out months, the
    coefficients are zero (g ≡ 1, the noise is N(0, Q)) and the summary says so.
    """
    vals, vecs = np.linalg.eigh(q_standardised)
    k = min(int(n_modes), int((vals > 0).sum()))
    modes = np.ascontiguousarray(vecs[:, ::-1][:, :k])

    def design(records):
        out = []
        for residuals, origins, weight in records:
            q = (residuals @ modes) ** 2  # (T, k)
            x = np.concatenate([np.ones((origins.shape[0], 1)), origins @ predictors], 1)
            out.append((torch.as_tensor(x), torch.as_tensor(q), float(weight)))
        return out

    tr, ho = design(train), design(heldout)

    def nll(theta, records):
        total = sum(w for _, _, w in records)
        return sum((w / total) * (0.5 * (x @ theta.T + q * torch.exp(-(x @ theta.T)))).mean() for x, q, w in records)

    def fit(penalty):
        theta0 = torch.zeros(k, predictors.shape[1] + 1, dtype=torch.float64)
        theta0[:, 0] = torch.log(sum((w * q.mean(0)) for _, q, w in tr) / sum(w for _, _, w in tr))
        if penalty is None:  # state-independent amplitude: the closed form above
            return theta0
        theta = theta0.clone().requires_grad_(True)
        opt = torch.optim.LBFGS([theta], max_iter=200, line_search_fn="strong_wolfe", tolerance_grad=1e-9)

        def closure():
            opt.zero_grad()
            loss = nll(theta, tr) * k + 0.5 * penalty * theta[:, 1:].square().sum()
            loss.backward()
            return loss

        opt.step(closure)
        return theta.detach()

    candidates = {"state_independent": fit(None), **{p: fit(p) for p in HEAD_PENALTIES}}
    scores = {key: float(nll(theta, ho)) for key, theta in candidates.items()}
    best = min(scores, key=scores.get)
    theta = candidates[best].clone()
    if best == "state_independent":
        theta[:, 1:] = 0
    # normalise: mean g² over the training states = 1 per mode, so Q stays the average covariance
    total = sum(w for _, _, w in tr)
    mean_g2 = sum((w / total) * torch.exp(x @ theta.T).mean(0) for x, _, w in tr)
    theta[:, 0] -= torch.log(mean_g2)
    g = torch.cat([torch.exp(0.5 * (x @ theta.T)) for x, _, _ in tr])
    summary = {
        "modes": k,
        "predictors": int(predictors.shape[1]),
        "chosen_penalty": best,
        "heldout_nll_per_mode_month": scores,
        "heldout_nll_gain_vs_state_independent": scores["state_independent"] - scores[best],
        "amplitude_5_50_95_percent": np.percentile(g.numpy(), [5, 50, 95], axis=0).tolist(),
        "mode_variance_fraction": float(vals[::-1][:k].sum() / vals[vals > 0].sum()),
    }
    log.info(
        "noise head: %d modes, penalty %s, held-out NLL gain %.4f per mode-month over a state-independent amplitude",
        k,
        best,
        summary["heldout_nll_gain_vs_state_independent"],
    )
    return NoiseHead(modes, predictors, theta.numpy(), summary)
