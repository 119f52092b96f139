"""Model error of a forecast model: the covariance of its one-step residuals on held-out months (training residuals
underestimate it), stored with the model as ``noise_cov``.

Why the forecast must be stochastic: a deterministic forecast collapsed the filter's ensemble (docs/method.md,
Filter: "Stochastic forecast").
"""

from __future__ import annotations

import numpy as np
import torch

from .forecasters import LatentForecaster


@torch.no_grad()
def one_step_residuals(model: LatentForecaster, x: np.ndarray, warmup: int, device) -> np.ndarray:
    """x_{t+1} − f(x_t) along a segment stepped teacher-forced with the state carried; first ``warmup`` months dropped."""
    model.eval()
    xt = torch.as_tensor(x, device=device)
    state = model.initial_state(1, device, xt.dtype)
    residuals = []
    for t in range(x.shape[0] - 1):
        pred, state = model.step(xt[t : t + 1], state)
        if t + 1 >= warmup:
            residuals.append((xt[t + 1 : t + 2] - pred)[0])
    if len(residuals) < 2:
        raise ValueError(
            f"a held-out segment of {x.shape[0]} months leaves fewer than 2 residuals after {warmup} warm-up months"
        )
    return torch.stack(residuals).double().cpu().numpy()


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
