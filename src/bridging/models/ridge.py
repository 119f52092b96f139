"""The parts of the forecast model fitted in closed form on the standardised state: the ridge regression (the linear
model and the LSTM's frozen skip), the moments of a weighted mixture of records (the standardisation), and the
leading principal directions (the LSTM's subspace)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def principal_basis(segments: list[np.ndarray], k: int | None, weights: list[float] | None = None) -> np.ndarray | None:
    """(n, k) leading principal directions of standardised segments (weighted like the ridge), or None for k=None."""
    if k is None:
        return None
    n = segments[0].shape[1]
    k = min(int(k), n)
    weights = weights or [float(s.shape[0]) for s in segments]
    total = float(sum(weights))
    means = [np.asarray(s, np.float64).mean(0) for s in segments]
    mean = sum((w / total) * m for m, w in zip(means, weights))
    # The mixture's covariance: each record's own covariance plus the spread of the record means.
    cov = sum(
        (w / total) * (np.cov(np.asarray(s, np.float64), rowvar=False) + np.outer(m - mean, m - mean))
        for s, m, w in zip(segments, means, weights)
    )
    evals, evecs = np.linalg.eigh(cov)
    return np.ascontiguousarray(evecs[:, ::-1][:, :k])


@dataclass
class RidgeFit:
    weight: np.ndarray  # (n, n), standardised units
    bias: np.ndarray  # (n,)
    spectral_radius: float
    train_rmse: float


def fit_ridge(segments: list[np.ndarray], alpha: float, weights: list[float] | None = None) -> RidgeFit:
    """Weighted ridge regression xs_{t+1} = W xs_t + b over consecutive months of standardised segments (T_i, n).

    Segment i contributes total weight ``weights[i]`` (default: equal per month pair), spread evenly over its month
    pairs, so a short record can carry a prescribed share (the curriculum's p_max). The penalty is relative to the
    weighted per-sample Gram matrix (XᵀWX + αI with W summing to 1), so α means the same whatever the record
    lengths; float64 throughout.
    """
    pairs = [(np.asarray(s[:-1], np.float64), np.asarray(s[1:], np.float64)) for s in segments]
    counts = [p[0].shape[0] for p in pairs]
    if weights is None:
        weights = [float(c) for c in counts]
    if any(c < 1 for c, w in zip(counts, weights) if w > 0) or sum(counts) < 2:
        raise ValueError("ridge regression needs at least one month pair in every weighted segment and two in all")
    total = float(sum(w for w in weights))
    inputs = np.concatenate([p[0] for p in pairs])
    targets = np.concatenate([p[1] for p in pairs])
    sample_w = np.concatenate([np.full(c, w / total / max(c, 1)) for c, w in zip(counts, weights)])
    x_mean, y_mean = sample_w @ inputs, sample_w @ targets
    xc, yc = inputs - x_mean, targets - y_mean
    gram = (xc * sample_w[:, None]).T @ xc
    weight = np.linalg.solve(gram + alpha * np.eye(gram.shape[0]), (xc * sample_w[:, None]).T @ yc).T
    bias = y_mean - weight @ x_mean
    resid = targets - inputs @ weight.T - bias
    radius = float(np.max(np.abs(np.linalg.eigvals(weight))))
    return RidgeFit(weight, bias, radius, float(np.sqrt(sample_w @ np.mean(resid**2, axis=1))))


def mixture_moments(segments: list[np.ndarray], weights: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of a weighted mixture of records (T_i, n): each record carries its weight, whatever its length."""
    total = float(sum(weights))
    means = [np.asarray(s, np.float64).mean(0) for s in segments]
    mean = sum((w / total) * m for m, w in zip(means, weights))
    var = sum(
        (w / total) * (np.asarray(s, np.float64).var(0) + (m - mean) ** 2) for s, m, w in zip(segments, means, weights)
    )
    return mean, np.sqrt(var)
