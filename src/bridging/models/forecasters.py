"""The latent forecast models: they advance the augmented state x = [z; y] by one month (the filter's forecast step).

Two models share one interface (docs/architecture.md)::

    state = fm.initial_state(batch, device, dtype)   # recurrent state (LSTM) or None (linear)
    x_next, state = fm.step(x, state)                # x: (batch, n_state) in state units; deterministic mean forecast
    fm.noise_cov                                     # model-error covariance Q (state units), :mod:`.model_error`
    fm.modulate_noise(noise, x)                      # the noise drawn from Q, scaled by the state-dependent head

* ``LinearForecaster``: ridge regression x_{t+1} = W x_t + b on the standardised state (:mod:`.ridge`). The baseline,
  and the alternative the filter may use (``forecast.kind: linear``).
* ``LSTMForecaster``: x_{t+1} = W x_t + b + U·Linear(Dropout(LSTM(Uᵀx̃_t))) with W, b that same ridge solution,
  *frozen*, the output layer initialised to zero, so training starts exactly at the linear model, and U the
  leading principal components of the training state (``forecast.lstm_subspace``; the correction's subspace). Why
  this form (docs/method.md, Forecast model): a residual head x_{t+1} = x_t + f is an integrator with no pull-back
  once a free run leaves the training range; the frozen stable linear skip provides the pull-back and the LSTM only
  adds a bounded correction (|tanh| ≤ 1 times a weight-decayed head). Never give a free-running model an identity
  skip.

Checkpoints hold the state dict and JSON-able metadata (kind, sizes, the gate record) and load with
``weights_only=True``; the filter refuses a model that failed its gate (:func:`ensure_gate_passed`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import GateFailedError, InputDataError
from .training import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

CHECKPOINT_KIND = "forecast"


#: bounds of the state-dependent noise amplitude g (a factor on the noise std of a mode)
NOISE_AMPLITUDE_RANGE = (0.1, 10.0)


class LatentForecaster(nn.Module):
    """Common part: the state standardisation (training mean/std), the model error and the gate record.

    Model error: ξ_t = M(x_t) L η, η ~ N(0, I), L Lᵀ = ``noise_cov`` = Q, x_t the state the forecast starts from.
    M(x) = I + U diag(g(x) − 1) Uᵀ (standardised units) scales the noise along the k leading eigenvectors U of Q by
    g_i(x) = exp(½ (θ_i0 + θ_i·Pᵀx̃)), P the leading principal components of the state: the stochastic head
    (:func:`.model_error.fit_noise_head`). With k = 0 (no head) the noise is N(0, Q).
    """

    kind = "base"

    def __init__(
        self,
        state_mean,
        state_std,
        noise_cov=None,
        n_latent: int | None = None,
        noise_modes=None,
        noise_predictors=None,
        noise_coef=None,
    ):
        super().__init__()
        mean = torch.as_tensor(np.asarray(state_mean), dtype=torch.float32)
        std = torch.as_tensor(np.asarray(state_std), dtype=torch.float32)
        if mean.ndim != 1 or mean.shape != std.shape:
            raise ValueError("state_mean and state_std must be vectors of the same length")
        if not torch.all(std > 0):
            raise ValueError("state_std must be positive (a constant state component cannot be standardised)")
        n = mean.shape[0]
        self.register_buffer("state_mean", mean)
        self.register_buffer("state_std", std)
        cov = torch.zeros(n, n) if noise_cov is None else torch.as_tensor(np.asarray(noise_cov), dtype=torch.float32)
        self.register_buffer("noise_cov", cov)
        self.register_buffer("noise_modes", torch.zeros(n, 0))  # U (n, k)
        self.register_buffer("noise_predictors", torch.zeros(n, 0))  # P (n, p)
        self.register_buffer("noise_coef", torch.zeros(0, 1))  # θ (k, p + 1)
        if noise_modes is not None:
            self.set_noise_head(noise_modes, noise_predictors, noise_coef)
        self.n_latent = n_latent
        self.gate_passed: bool | None = None
        self.gate_report: dict = {}

    @property
    def n_state(self) -> int:
        return int(self.state_mean.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        return self.state_mean.dtype

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.state_mean) / self.state_std

    def unstandardise(self, xs: torch.Tensor) -> torch.Tensor:
        return xs * self.state_std + self.state_mean

    def initial_state(self, batch: int, device=None, dtype=None):
        return None

    def step_standardised(self, xs: torch.Tensor, state, lstm_input: torch.Tensor | None = None):
        raise NotImplementedError

    def step(self, x: torch.Tensor, state=None):
        """One month ahead, deterministic mean forecast, in state units; returns (x_next, state)."""
        xs = self.standardise(x.to(self.dtype))
        if state is not None:
            state = tuple(s.to(self.dtype) for s in state)
        xs_next, state = self.step_standardised(xs, state)
        if state is not None:
            state = tuple(s.to(x.dtype) for s in state)
        return self.unstandardise(xs_next).to(x.dtype), state

    def noise_factor(self) -> torch.Tensor:
        """L with L Lᵀ = noise_cov (symmetric square root; works for the rank-deficient covariances of short records)."""
        cov = self.noise_cov.double()
        evals, evecs = torch.linalg.eigh(0.5 * (cov + cov.T))
        return (evecs * evals.clamp_min(0).sqrt()).to(self.dtype)

    def sample_noise(
        self, n: int, generator: torch.Generator | None = None, factor: torch.Tensor | None = None
    ) -> torch.Tensor:
        """n draws of model error ~ N(0, noise_cov), state units (before :meth:`modulate_noise`)."""
        factor = self.noise_factor() if factor is None else factor
        xi = torch.randn(n, factor.shape[1], generator=generator, dtype=factor.dtype, device=factor.device)
        return xi @ factor.T

    def set_noise_head(self, modes, predictors, coef) -> None:
        """Install the stochastic head: modes U (n, k), predictors P (n, p), coefficients θ (k, p + 1)."""
        to = dict(dtype=self.dtype, device=self.state_mean.device)
        modes, predictors, coef = (torch.as_tensor(np.ascontiguousarray(a), **to) for a in (modes, predictors, coef))
        n = self.n_state
        if modes.ndim != 2 or modes.shape[0] != n or predictors.ndim != 2 or predictors.shape[0] != n:
            raise ValueError(f"noise modes and predictors must have {n} rows")
        if tuple(coef.shape) != (modes.shape[1], predictors.shape[1] + 1):
            raise ValueError(f"noise coefficients must be (k, p + 1), got {tuple(coef.shape)}")
        self.noise_modes, self.noise_predictors, self.noise_coef = modes, predictors, coef

    @property
    def has_noise_head(self) -> bool:
        return self.noise_modes.shape[1] > 0

    def noise_amplitude(self, x: torch.Tensor) -> torch.Tensor:
        """g(x) (batch, k): the head's factor on the noise std of each mode at the states x (state units)."""
        features = self.standardise(x.to(self.dtype)) @ self.noise_predictors
        log_var = self.noise_coef[:, 0] + features @ self.noise_coef[:, 1:].T
        return torch.exp(0.5 * log_var).clamp(*NOISE_AMPLITUDE_RANGE)

    def modulate_noise(self, noise: torch.Tensor, origin: torch.Tensor) -> torch.Tensor:
        """M(x) ξ for noise ξ (batch, n) drawn from Q and the states x = ``origin`` the forecasts start from."""
        if not self.has_noise_head:
            return noise
        xi = noise.to(self.dtype) / self.state_std
        along = xi @ self.noise_modes
        xi = xi + (along * (self.noise_amplitude(origin) - 1)) @ self.noise_modes.T
        return (xi * self.state_std).to(noise.dtype)


class LinearForecaster(LatentForecaster):
    """x_{t+1} = W x_t + b on the standardised state (the ridge solution)."""

    kind = "linear"

    def __init__(self, state_mean, state_std, weight, bias, noise_cov=None, n_latent=None, **noise_head):
        super().__init__(state_mean, state_std, noise_cov, n_latent, **noise_head)
        self.register_buffer("weight", torch.as_tensor(np.asarray(weight), dtype=torch.float32))
        self.register_buffer("bias", torch.as_tensor(np.asarray(bias), dtype=torch.float32))

    def step_standardised(self, xs, state=None, lstm_input=None):
        return xs @ self.weight.T + self.bias, None


class LSTMForecaster(LatentForecaster):
    """x_{t+1} = W x_t + b + U·Linear(Dropout(LSTM(Uᵀx̃_t))): frozen ridge skip plus a zero-initialised LSTM correction.

    U (n_state × k, orthonormal columns, frozen) spans the leading k principal components of the standardised
    training state; ``basis=None`` means U = I (the LSTM sees and corrects the whole state). Why a subspace: with the
    whole state as input the LSTM's input weights alone outnumber the training months' degrees of freedom and it fits
    noise in the many weak latent directions (docs/method.md, Forecast model); the predictable dynamics live in the
    leading components, and the linear skip already carries the rest.
    """

    kind = "lstm"

    def __init__(
        self,
        state_mean,
        state_std,
        skip_weight,
        skip_bias,
        hidden: int,
        layers: int = 1,
        dropout: float = 0.1,
        noise_cov=None,
        n_latent=None,
        basis=None,
        **noise_head,
    ):
        super().__init__(state_mean, state_std, noise_cov, n_latent, **noise_head)
        n = self.n_state
        # Buffers, not parameters: the skip and the subspace are frozen by construction, not by an optimizer setting.
        self.register_buffer("skip_weight", torch.as_tensor(np.asarray(skip_weight), dtype=torch.float32))
        self.register_buffer("skip_bias", torch.as_tensor(np.asarray(skip_bias), dtype=torch.float32))
        basis = torch.eye(n) if basis is None else torch.as_tensor(np.asarray(basis), dtype=torch.float32)
        if basis.ndim != 2 or basis.shape[0] != n or basis.shape[1] > n:
            raise ValueError(f"basis must be (n_state, k) with k <= n_state = {n}, got {tuple(basis.shape)}")
        self.register_buffer("basis", basis)
        k = basis.shape[1]
        self.hidden, self.layers, self.dropout_p = int(hidden), int(layers), float(dropout)
        self.lstm = nn.LSTM(
            k, self.hidden, self.layers, batch_first=True, dropout=self.dropout_p if self.layers > 1 else 0.0
        )
        self.dropout = nn.Dropout(self.dropout_p)
        self.head = nn.Linear(self.hidden, k)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def subspace_dim(self) -> int:
        return int(self.basis.shape[1])

    def initial_state(self, batch: int, device=None, dtype=None):
        device = device if device is not None else self.state_mean.device
        dtype = dtype or self.dtype
        zeros = torch.zeros(self.layers, batch, self.hidden, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def skip(self, xs: torch.Tensor) -> torch.Tensor:
        return xs @ self.skip_weight.T + self.skip_bias

    def correction(self, lstm_out: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(lstm_out)) @ self.basis.T

    def step_standardised(self, xs, state=None, lstm_input=None):
        if state is None:
            state = self.initial_state(xs.shape[0], xs.device, xs.dtype)
        out, state = self.lstm(((xs if lstm_input is None else lstm_input) @ self.basis)[:, None, :], state)
        return self.skip(xs) + self.correction(out[:, 0]), state

    def sequence_standardised(self, xs_seq: torch.Tensor, lstm_input: torch.Tensor, state=None):
        """Teacher-forced one-step predictions for a whole window (B, T, n) in one LSTM call."""
        out, state = self.lstm(lstm_input @ self.basis, state)
        return self.skip(xs_seq) + self.correction(out), state


def _metadata(model: LatentForecaster, extra: dict) -> dict:
    meta = {
        "kind": model.kind,
        "n_state": model.n_state,
        "n_latent": model.n_latent,
        "gate_passed": model.gate_passed,
        "gate_report": model.gate_report,
    }
    if isinstance(model, LSTMForecaster):
        meta.update(hidden=model.hidden, layers=model.layers, dropout=model.dropout_p, subspace_dim=model.subspace_dim)
    meta.update(extra)
    return meta


def save_forecast_model(path: str | Path, model: LatentForecaster, extra_metadata: dict | None = None) -> Path:
    return save_checkpoint(
        path, kind=CHECKPOINT_KIND, state_dict=model.state_dict(), metadata=_metadata(model, extra_metadata or {})
    )


def load_forecast_model(path: str | Path, device="cpu") -> LatentForecaster:
    """The trained forecast model in eval mode with ``gate_passed``/``gate_report`` (the filter checks them:
    :func:`ensure_gate_passed`)."""
    payload = load_checkpoint(path, kind=CHECKPOINT_KIND, device="cpu")
    meta, sd = payload["metadata"], payload["state_dict"]
    try:
        common = dict(
            state_mean=sd["state_mean"],
            state_std=sd["state_std"],
            noise_cov=sd["noise_cov"],
            n_latent=meta["n_latent"],
            noise_modes=sd["noise_modes"],
            noise_predictors=sd["noise_predictors"],
            noise_coef=sd["noise_coef"],
        )
        if meta["kind"] == "linear":
            model = LinearForecaster(weight=sd["weight"], bias=sd["bias"], **common)
        elif meta["kind"] == "lstm":
            model = LSTMForecaster(
                skip_weight=sd["skip_weight"],
                skip_bias=sd["skip_bias"],
                hidden=meta["hidden"],
                layers=meta["layers"],
                dropout=meta["dropout"],
                basis=sd["basis"],
                **common,
            )
        else:
            raise KeyError(f"unknown kind {meta['kind']!r}")
        model.load_state_dict(sd)
    except (KeyError, RuntimeError, ValueError) as err:
        raise InputDataError(path, f"forecast checkpoint does not match its model ({err})") from None
    model.gate_passed = meta.get("gate_passed")
    model.gate_report = meta.get("gate_report") or {}
    model.metadata = meta
    return model.to(device).eval().requires_grad_(False)


def ensure_gate_passed(model: LatentForecaster, *, allow_failed: bool, path: str | Path | None = None) -> None:
    """Refuse a model that failed (or never ran) its gate unless ``forecast.gate.allow_failed`` overrides it."""
    if model.gate_passed:
        return
    reasons = model.gate_report.get("failures") or ["no gate record"]
    message = f"{path or 'forecast model'}: failed its quality gate ({'; '.join(reasons)})"
    if allow_failed:
        log.warning("%s; used anyway because forecast.gate.allow_failed is set", message)
        return
    raise GateFailedError(message + "; fix the model or set forecast.gate.allow_failed: true to use it anyway")
