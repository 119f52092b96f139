"""The latent forecast model: advances the augmented state x = [z; y] by one month (the filter's forecast step).

Two models share one interface (docs/architecture.md)::

    state = fm.initial_state(batch, device, dtype)   # recurrent state (LSTM) or None (linear)
    x_next, state = fm.step(x, state)                # x: (batch, n_state) in state units; deterministic mean forecast
    fm.noise_cov                                     # model-error covariance (state units) of held-out one-step residuals

* ``LinearForecaster``: ridge regression x_{t+1} = W x_t + b on the standardised state, fitted on the operational
  training months (``forecast.skip_data``; or on both records weighted as the curriculum ends, 1 − p_max
  operational and p_max reanalysis). The baseline, and the alternative the filter may use (``forecast.kind: linear``).
* ``LSTMForecaster``: x_{t+1} = W x_t + b + U·Linear(Dropout(LSTM(Uᵀx̃_t))) with W, b that same ridge solution,
  *frozen*, the output layer initialised to zero, so training starts exactly at the linear model, and U the
  leading principal components of the training state (``forecast.lstm_subspace``; the correction's subspace). Why this
  form (method.md, "A recipe that made the LSTM stable"): a residual head x_{t+1} = x_t + f is an integrator with
  no pull-back once a free run leaves the training range, and every such LSTM diverged within 100 years whatever
  the regularisation; the frozen stable linear skip provides the pull-back and the LSTM only adds a bounded
  correction (|tanh| ≤ 1 times a weight-decayed head). Never give a free-running model an identity skip.

LSTM training: windows of ``teacher_forcing_months`` true months (one-step predictions, teacher-forced), then a
rollout over k months fed with the model's own predictions (backpropagated through), k ramping from 1 to
``rollout_max`` over the first ``rollout_ramp_fraction`` of the epochs; the loss is the MSE of the standardised
state over all predicted months. Input noise on the LSTM inputs, dropout, AdamW weight decay, gradient clipping,
and early stopping on the held-out multi-step error. Training sequences come from the curriculum: each from the
reanalysis latent record with probability p_e, else from the operational one.

Model error: the forecast must be stochastic (method.md, lessons §2: a deterministic forecast collapsed the filter).
``noise_cov`` is the covariance of one-step residuals on *held-out* months (training residuals underestimate it) of
the records the skip is fitted on (``forecast.skip_data``: the operational record, or both with the curriculum's
final weights 1 − p_max, p_max).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn

from ..errors import GateFailedError, InputDataError
from ..settings import CurriculumSection, ForecastSection
from .curriculum import OPERATIONAL, REANALYSIS, CurriculumSampler, reanalysis_probability_schedule, rollout_schedule
from .gate import forecast_starts, rollout
from .training import (
    EarlyStopping,
    ResumeState,
    Timer,
    epoch_seed,
    fingerprint,
    load_checkpoint,
    prepare_torch,
    progress,
    resume_path_for,
    save_checkpoint,
    seed_torch,
    time_split,
)

log = logging.getLogger(__name__)

CHECKPOINT_KIND = "forecast"
GRADIENT_CLIP_NORM = 1.0


# ============================================================================================== models
class LatentForecaster(nn.Module):
    """Common part: the state standardisation (training mean/std), model-error covariance and gate record."""

    kind = "base"

    def __init__(self, state_mean, state_std, noise_cov=None, n_latent: int | None = None):
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

    def sample_noise(self, n: int, generator: torch.Generator | None = None, factor: torch.Tensor | None = None) -> torch.Tensor:
        """n draws of model error ~ N(0, noise_cov), state units."""
        factor = self.noise_factor() if factor is None else factor
        xi = torch.randn(n, factor.shape[1], generator=generator, dtype=factor.dtype, device=factor.device)
        return xi @ factor.T


class LinearForecaster(LatentForecaster):
    """x_{t+1} = W x_t + b on the standardised state (the ridge solution)."""

    kind = "linear"

    def __init__(self, state_mean, state_std, weight, bias, noise_cov=None, n_latent=None):
        super().__init__(state_mean, state_std, noise_cov, n_latent)
        self.register_buffer("weight", torch.as_tensor(np.asarray(weight), dtype=torch.float32))
        self.register_buffer("bias", torch.as_tensor(np.asarray(bias), dtype=torch.float32))

    def step_standardised(self, xs, state=None, lstm_input=None):
        return xs @ self.weight.T + self.bias, None


class LSTMForecaster(LatentForecaster):
    """x_{t+1} = W x_t + b + U·Linear(Dropout(LSTM(Uᵀx̃_t))): frozen ridge skip plus a zero-initialised LSTM correction.

    U (n_state × k, orthonormal columns, frozen) spans the leading k principal components of the standardised
    training state; ``basis=None`` means U = I (the LSTM sees and corrects the whole state). Why a subspace: with
    the full 613-dimensional state as input, the LSTM's input weights alone outnumber the training months' degrees
    of freedom, and on the demo-like data every epoch fitted noise in the many weak latent directions (held-out
    multi-step error rose from the first epoch on); the predictable dynamics live in the leading components, and
    the linear skip already carries the rest.
    """

    kind = "lstm"

    def __init__(self, state_mean, state_std, skip_weight, skip_bias, hidden: int, layers: int = 1, dropout: float = 0.1,
                 noise_cov=None, n_latent=None, basis=None):
        super().__init__(state_mean, state_std, noise_cov, n_latent)
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
        self.lstm = nn.LSTM(k, self.hidden, self.layers, batch_first=True, dropout=self.dropout_p if self.layers > 1 else 0.0)
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
    cov = sum((w / total) * (np.cov(np.asarray(s, np.float64), rowvar=False) + np.outer(m - mean, m - mean))
              for s, m, w in zip(segments, means, weights))
    evals, evecs = np.linalg.eigh(cov)
    return np.ascontiguousarray(evecs[:, ::-1][:, :k])


# ============================================================================================== ridge
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
    var = sum((w / total) * (np.asarray(s, np.float64).var(0) + (m - mean) ** 2) for s, m, w in zip(segments, means, weights))
    return mean, np.sqrt(var)


# ============================================================================================== data
@dataclass
class LatentRecord:
    """One latent store as the augmented state x = [z; y] (state units)."""

    path: Path
    source_id: str
    x: np.ndarray  # (time, n_state) float32
    n_latent: int
    obs_coords: dict
    time: xr.DataArray

    @property
    def n_state(self) -> int:
        return self.x.shape[1]


def load_latent_record(path: str | Path) -> LatentRecord:
    from .latent import open_latent_store

    ds = open_latent_store(path)
    z = ds["z"].transpose("time", "latent").values.astype(np.float32)
    y = ds["y"].transpose("time", "obs").values.astype(np.float32)
    x = np.concatenate([z, y], axis=1)
    if not np.isfinite(x).all():
        raise InputDataError(path, "z or y contain NaN/inf")
    obs = {c: ds[c].values for c in ds["y"].coords if c.startswith("obs_")}
    return LatentRecord(Path(path), str(ds.attrs.get("source_id", Path(path).stem)), x, z.shape[1], obs, ds["time"])


# ============================================================================================== evaluation helpers
@torch.no_grad()
def multistep_rmse(model: LatentForecaster, x: np.ndarray, warmup: int, max_lead: int, device) -> np.ndarray:
    """RMSE of the standardised state at leads 1..max_lead over every start of a held-out segment x (T, n)."""
    starts = forecast_starts(x.shape[0], warmup, max_lead)
    if starts.size == 0:
        raise ValueError(f"a held-out segment of {x.shape[0]} months is too short for {warmup} warm-up months and {max_lead} leads")
    xt = torch.as_tensor(x, device=device)
    warm = xt[torch.as_tensor(starts[:, None] - warmup + 1 + np.arange(warmup)[None, :], device=device)]
    pred = rollout(model, warm, max_lead)
    truth = xt[torch.as_tensor(starts[:, None] + 1 + np.arange(max_lead)[None, :], device=device)]
    err = (model.standardise(pred) - model.standardise(truth)).square().mean((0, 2)).sqrt()
    return err.cpu().numpy()


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
        raise ValueError(f"a held-out segment of {x.shape[0]} months leaves fewer than 2 residuals after {warmup} warm-up months")
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
        records.append({"months": int(r.shape[0]), "weight": w / total, "trace": float(np.trace(c)),
                        "mean_residual_norm": float(np.linalg.norm(r.mean(0)))})
    return cov, {"trace": float(np.trace(cov)), "rank": int(np.linalg.matrix_rank(cov)), "records": records}


# ============================================================================================== LSTM training
def train_lstm(
    model: LSTMForecaster,
    op_train: np.ndarray,
    rean_train: np.ndarray | None,
    validation: list[tuple[np.ndarray, float]],
    settings: ForecastSection,
    curriculum: CurriculumSection,
    device,
    resume: ResumeState,
) -> tuple[LSTMForecaster, list[dict], EarlyStopping, float]:
    """Train the LSTM correction in place; returns it at its best epoch (epoch −1: untrained, i.e. the linear skip),
    the per-epoch history, the early-stopping record and the initial model's held-out score.

    Training windows come as standardised arrays; held-out segments (``validation``: (x, weight)) in state units.
    """
    teacher = settings.teacher_forcing_months
    window = teacher + settings.rollout_max + 1
    n_op = op_train.shape[0] - window + 1
    n_rean = 0 if rean_train is None else rean_train.shape[0] - window + 1
    if n_op < 1:
        raise ValueError(f"the operational training record ({op_train.shape[0]} months) is shorter than one training window ({window} months)")
    p_schedule = reanalysis_probability_schedule(curriculum, settings.epochs)
    if n_rean < 1 and p_schedule.value(settings.epochs) > 0:
        raise ValueError(f"the reanalysis training record is shorter than one training window ({window} months)")
    k_schedule = rollout_schedule(settings.rollout_max, settings.rollout_ramp_fraction, settings.epochs)
    sampler = CurriculumSampler(p_schedule, n_op, max(n_rean, 0), settings.sequences_per_epoch or n_op, settings.seed)
    sources = {OPERATIONAL: torch.as_tensor(op_train), REANALYSIS: torch.as_tensor(rean_train if rean_train is not None else op_train[:0])}

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    stopper = EarlyStopping(settings.patience)
    history: list[dict] = []
    best_state = copy.deepcopy(model.state_dict())
    start_epoch = 0

    def heldout_score() -> tuple[float, list[np.ndarray]]:
        scores = [multistep_rmse(model, x, teacher, settings.rollout_max, device) for x, _ in validation]
        return float(sum(w * s.mean() for (_, w), s in zip(validation, scores)) / sum(w for _, w in validation)), scores

    saved = resume.load()
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        best_state = saved["best_model"]
        stopper.load_state_dict(saved["early_stopping"])
        history = list(saved["history"])
        start_epoch = int(saved["epoch"]) + 1
        initial_score = float(saved["initial_score"])
    else:
        # Epoch "-1" is the untrained model, i.e. exactly the linear skip: an LSTM that never beats it on the held-out
        # multi-step error is returned as that linear model rather than as its least bad overfitted epoch.
        initial_score, _ = heldout_score()
        stopper.update(initial_score, -1)
        log.info("forecast: held-out mean RMSE of the initial model (= the linear skip) %.4f", initial_score)

    for epoch in range(start_epoch, settings.epochs):
        if stopper.should_stop:
            break
        timer = Timer()
        model.train()
        seed_torch(epoch_seed(settings.seed, epoch))
        k = k_schedule.int_value(epoch)
        draw = sampler.draw(epoch)
        n_batches = math.ceil(len(draw.source) / settings.batch_size)
        total = 0.0
        for b in progress(range(n_batches), total=n_batches, desc=f"forecast epoch {epoch + 1}/{settings.epochs} (k={k})", logger=log):
            sl = slice(b * settings.batch_size, (b + 1) * settings.batch_size)
            src, idx = draw.source[sl], draw.index[sl]
            batch = torch.empty((len(idx), window, model.n_state))
            for s in (OPERATIONAL, REANALYSIS):
                sel = src == s
                if sel.any():
                    batch[torch.as_tensor(sel)] = sources[s][torch.as_tensor(idx[sel][:, None] + np.arange(window)[None, :])]
            batch = batch.to(device)
            inputs = batch[:, :teacher]
            noisy = inputs + settings.input_noise * torch.randn_like(inputs)
            preds, state = model.sequence_standardised(inputs, noisy, None)
            prev = preds[:, -1]
            rolled = []
            for _ in range(k):
                noisy_prev = prev + settings.input_noise * torch.randn_like(prev)
                prev, state = model.step_standardised(prev, state, noisy_prev)
                rolled.append(prev)
            all_preds = torch.cat([preds, torch.stack(rolled, 1)], 1)
            loss = (all_preds - batch[:, 1 : teacher + k + 1]).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, GRADIENT_CLIP_NORM)
            optimizer.step()
            total += loss.item()
        score, scores = heldout_score()
        record = {
            "epoch": epoch,
            "rollout_k": k,
            "p_reanalysis": draw.p_reanalysis,
            "reanalysis_share": draw.reanalysis_share,
            "train_loss": total / n_batches,
            "heldout_rmse_by_lead": [s.tolist() for s in scores],
            "heldout_score": score,
            "seconds": timer.seconds,
        }
        if stopper.update(score, epoch):
            best_state = copy.deepcopy(model.state_dict())
        history.append(record)
        log.info("forecast epoch %d: k=%d p=%.2f train loss %.4f | held-out mean RMSE (leads 1-%d) %.4f | %.1f s",
                 epoch + 1, k, draw.p_reanalysis, record["train_loss"], settings.rollout_max, score, record["seconds"])
        resume.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "best_model": best_state,
                     "early_stopping": stopper.state_dict(), "history": history, "initial_score": initial_score})
    model.load_state_dict(best_state)
    model.eval()
    return model, history, stopper, initial_score


# ============================================================================================== loading / gate enforcement
def _metadata(model: LatentForecaster, extra: dict) -> dict:
    meta = {"kind": model.kind, "n_state": model.n_state, "n_latent": model.n_latent, "gate_passed": model.gate_passed, "gate_report": model.gate_report}
    if isinstance(model, LSTMForecaster):
        meta.update(hidden=model.hidden, layers=model.layers, dropout=model.dropout_p, subspace_dim=model.subspace_dim)
    meta.update(extra)
    return meta


def save_forecast_model(path: str | Path, model: LatentForecaster, extra_metadata: dict | None = None) -> Path:
    return save_checkpoint(path, kind=CHECKPOINT_KIND, state_dict=model.state_dict(), metadata=_metadata(model, extra_metadata or {}))


def load_forecast_model(path: str | Path, device="cpu") -> LatentForecaster:
    """The trained forecast model in eval mode with ``gate_passed``/``gate_report`` (the filter checks them:
    :func:`ensure_gate_passed`)."""
    payload = load_checkpoint(path, kind=CHECKPOINT_KIND, device="cpu")
    meta, sd = payload["metadata"], payload["state_dict"]
    try:
        common = dict(state_mean=sd["state_mean"], state_std=sd["state_std"], noise_cov=sd["noise_cov"], n_latent=meta["n_latent"])
        if meta["kind"] == "linear":
            model = LinearForecaster(weight=sd["weight"], bias=sd["bias"], **common)
        elif meta["kind"] == "lstm":
            model = LSTMForecaster(skip_weight=sd["skip_weight"], skip_bias=sd["skip_bias"], hidden=meta["hidden"],
                                   layers=meta["layers"], dropout=meta["dropout"], basis=sd["basis"], **common)
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


# ============================================================================================== the stage
def _same_observables(a: LatentRecord, b: LatentRecord) -> bool:
    if a.n_latent != b.n_latent or set(a.obs_coords) != set(b.obs_coords):
        return False
    return all(np.array_equal(np.asarray(a.obs_coords[k]), np.asarray(b.obs_coords[k])) for k in a.obs_coords)


def build_gate_data(autoencoder_checkpoint, operational_store, reanalysis_store, op: LatentRecord, rean: LatentRecord,
                    op_split, rean_split, reanalysis_weight: float, grid, warmup: int, device, *, state_mean, state_std):
    """The operational held-out months (latent + true fields), the free run's warm-up and the reference Niño std."""
    from ..grid import TargetGrid
    from .autoencoder import decode_array, load_autoencoder, load_field_record
    from .gate import NINO_BOXES, GateData, box_indices, index_weights

    ae = load_autoencoder(autoencoder_checkpoint, device)
    target_grid = TargetGrid.from_config(grid)
    records = {}
    for name, store, latent in (("operational", operational_store, op), ("reanalysis", reanalysis_store, rean)):
        if ae.latent_dim != latent.n_latent:
            raise InputDataError(latent.path, f"has {latent.n_latent} latents but the autoencoder {autoencoder_checkpoint} has {ae.latent_dim}; re-encode")
        records[name] = load_field_record(store, grid=target_grid, layout=ae.layout, field_std=ae.field_std)
        if len(records[name]) != latent.x.shape[0]:
            raise InputDataError(latent.path, f"has {latent.x.shape[0]} months but the store {store} has {len(records[name])}; re-encode")
    ae_mask = np.asarray(ae.ocean_mask.cpu().numpy(), bool)
    sst = list(ae.field_names).index("sst")
    variances = {}
    for name, split in (("operational", op_split), ("reanalysis", rean_split)):
        # Indices over cells that are ocean in the autoencoder's domain and in the source.
        mask = ae_mask & records[name].ocean
        train_sst = records[name].standardised[split.train, sst] * ae.field_std["sst"]
        indices = box_indices(train_sst, index_weights(target_grid, mask))
        variances[name] = {box: float(indices[:, i].var()) for i, box in enumerate(NINO_BOXES)}
    w = float(reanalysis_weight)
    reference = {box: float(np.sqrt((1 - w) * variances["operational"][box] + w * variances["reanalysis"][box])) for box in NINO_BOXES}
    op_mask = ae_mask & records["operational"].ocean
    # The same indices from the decoded *true* latents: separates an autoencoder that loses ENSO amplitude from a
    # forecast model that does.
    decoded = decode_array(ae, op.x[op_split.train, : op.n_latent], device=device)[:, sst] * ae.field_std["sst"]
    decoded_indices = box_indices(decoded, index_weights(target_grid, op_mask))
    details = {
        "definition": "sqrt((1 - p_max) * var_operational + p_max * var_reanalysis), training months, true fields",
        "p_max": w,
        "std_by_source": {name: {box: float(np.sqrt(v)) for box, v in var.items()} for name, var in variances.items()},
        "decoded_operational_std": {box: float(decoded_indices[:, i].std()) for i, box in enumerate(NINO_BOXES)},
    }
    layout = ae.layout

    def observe(fields_std: np.ndarray) -> np.ndarray:
        physical = {name: np.where(op_mask, fields_std[:, c] * ae.field_std[name], np.nan) for c, name in enumerate(ae.field_names)}
        return layout.extract(physical, target_grid)

    return GateData(
        observe=observe,
        x_heldout=op.x[op_split.validation],
        fields_heldout=records["operational"].standardised[op_split.validation],
        x_warmup=op.x[op_split.n_train - warmup : op_split.n_train],
        reference_index_std=reference,
        decode=lambda z: decode_array(ae, z, device=device),
        field_names=tuple(ae.field_names),
        field_std=dict(ae.field_std),
        ocean_mask=op_mask,
        grid=target_grid,
        n_latent=op.n_latent,
        state_mean=np.asarray(state_mean, np.float64),
        state_std=np.asarray(state_std, np.float64),
        warmup_months=warmup,
        x_heldout_reanalysis=rean.x[rean_split.validation] if w > 0 else None,
        reference_details=details,
    )


def train_forecast(
    latent_operational: str | Path,
    latent_reanalysis: str | Path,
    autoencoder_checkpoint: str | Path,
    operational_store: str | Path,
    reanalysis_store: str | Path,
    checkpoint_out: str | Path,
    metrics_out: str | Path,
    curves_out: str | Path,
    gate_figure_out: str | Path,
    *,
    forecast,
    curriculum,
    compute,
    grid,
) -> dict:
    """Fit the linear model, train the LSTM (when ``forecast.kind`` is lstm), gate both, save the chosen one.

    Writes the checkpoint (with ``noise_cov``, ``gate_passed`` and the gate report), the metrics JSON (training
    history, ridge fit, noise summary, both models' gate reports and skill tables) and two figures (training curves;
    skill against lead and the free runs). Returns the metrics record.
    """
    from .gate import plot_gate, run_gate
    from .training import write_json

    settings = ForecastSection.model_validate(forecast)
    cur = CurriculumSection.model_validate(curriculum)
    device = prepare_torch(compute)
    timer = Timer()
    op = load_latent_record(latent_operational)
    rean = load_latent_record(latent_reanalysis)
    if not _same_observables(op, rean):
        raise InputDataError([latent_operational, latent_reanalysis], "the two latent stores differ in latent size or observables; re-encode both")
    teacher = settings.teacher_forcing_months
    window = teacher + settings.rollout_max + 1
    min_val = teacher + max(settings.rollout_max, max(settings.gate.leads)) + 1
    op_split = time_split(op.x.shape[0], settings.validation_fraction, min_train=window, min_validation=min_val, what=str(op.path))
    use_rean = cur.p_max > 0 or cur.p_start > 0
    rean_split = time_split(rean.x.shape[0], settings.validation_fraction, min_train=window if use_rean else 1,
                            min_validation=min_val if use_rean else 1, what=str(rean.path))

    # Everything is fitted on the curriculum's final mixture (1 − p_max operational, p_max reanalysis), the data the
    # LSTM ends up trained on: the standardisation, the linear skip and the LSTM's subspace. Standardising by the
    # operational months alone would give latents the operational record hardly uses (but the reanalysis does) a
    # tiny scale, and free runs would reach tens of "standard deviations" in them.
    raw_segments, seg_weights = [op.x[op_split.train]], [1.0 - cur.p_max]
    if use_rean and cur.p_max > 0:
        raw_segments.append(rean.x[rean_split.train])
        seg_weights.append(cur.p_max)
    mean, std = mixture_moments(raw_segments, seg_weights)
    if not np.all(std > 0):
        raise InputDataError(op.path, f"{int(np.sum(std <= 0))} state components are constant over the training months")
    standardise = lambda x: ((x - mean) / std).astype(np.float32)  # noqa: E731
    xs_op, xs_rean = standardise(op.x), standardise(rean.x)
    segments = [standardise(x) for x in raw_segments]
    # The linear skip: on the operational months (default) or on the curriculum mixture (forecast.skip_data). The
    # skip carries every direction of the state, so it must keep y consistent with the decoded z: fitted on latent
    # states the autoencoder represents (settings/models.py, skip_data, has the measurements).
    skip_segments, skip_weights = (segments, seg_weights) if settings.skip_data == "curriculum" else (segments[:1], [1.0])
    ridge = fit_ridge(skip_segments, settings.ridge_alpha, skip_weights)
    log.info("ridge fit on %d + %d months (weights %s): spectral radius %.3f, training RMSE %.3f", op_split.n_train,
             rean_split.n_train if len(skip_segments) > 1 else 0, skip_weights, ridge.spectral_radius, ridge.train_rmse)
    linear = LinearForecaster(mean, std, ridge.weight, ridge.bias, n_latent=op.n_latent).to(device)

    weights = [(op.x[op_split.validation], 1.0 - cur.p_max), (rean.x[rean_split.validation], cur.p_max)]
    validation = [(x, w) for x, w in weights if w > 0]

    # Model error from the held-out months of the records the skip is fitted on: residuals on reanalysis months that
    # the autoencoder represents off its manifold have observable errors no latent error matches (DEMO-CESM2: noise
    # std of y 2.6 vs 1.4), and noisy forecasts then lose y–z consistency (24-month consistency 0.48 vs 0.95).
    noise_validation = validation if settings.skip_data == "curriculum" else validation[:1]

    def attach_noise(model: LatentForecaster) -> dict:
        residuals = [one_step_residuals(model, x, teacher, device) for x, _ in noise_validation]
        cov, summary = residual_covariance(residuals, [w for _, w in noise_validation])
        model.noise_cov.copy_(torch.as_tensor(cov, dtype=model.noise_cov.dtype))
        return summary

    models = {"linear": linear}
    noise = {"linear": attach_noise(linear)}
    history, stopper, initial_score = [], None, None
    if settings.kind == "lstm":
        seed_torch(settings.seed)
        basis = principal_basis(segments, settings.lstm_subspace, seg_weights)
        lstm = LSTMForecaster(mean, std, ridge.weight, ridge.bias, settings.hidden, settings.layers, settings.dropout,
                              n_latent=op.n_latent, basis=basis).to(device)
        resume = ResumeState(
            resume_path_for(checkpoint_out),
            fingerprint({"forecast": settings.model_dump(exclude={"gate"}), "curriculum": cur.model_dump(), "device": device.type},
                        [op.x, rean.x]),
        )
        lstm, history, stopper, initial_score = train_lstm(
            lstm, xs_op[op_split.train], xs_rean[rean_split.train] if use_rean else None, validation, settings, cur, device, resume
        )
        models["lstm"] = lstm
        noise["lstm"] = attach_noise(lstm)
        if stopper.best_epoch < 0:
            log.warning("no LSTM epoch beat the frozen linear skip on the held-out multi-step error (%.4f); the saved LSTM "
                        "is that linear model (zero correction). forecast.kind: linear gives the same model without training",
                        initial_score)

    gate_data = build_gate_data(autoencoder_checkpoint, operational_store, reanalysis_store, op, rean, op_split, rean_split,
                                cur.p_max, grid, teacher, device, state_mean=mean, state_std=std)
    reports = {}
    for name in reversed(list(models)):  # the chosen model first, so its report carries the baselines
        baselines = {"linear": linear} if name != "linear" else {}
        reports[name] = run_gate(models[name], gate_data, settings.gate, baselines=baselines)
        models[name].gate_passed = reports[name]["passed"]
        models[name].gate_report = reports[name]
    chosen = models[settings.kind]
    extra = {
        "source_id": op.source_id,
        "latent_stores": [str(latent_operational), str(latent_reanalysis)],
        "obs_coords": {k: np.asarray(v).tolist() for k, v in op.obs_coords.items()},
        "ridge": {"alpha": settings.ridge_alpha, "data": settings.skip_data, "spectral_radius": ridge.spectral_radius,
                  "train_rmse": ridge.train_rmse},
        "noise": noise[settings.kind],
    }
    if stopper is not None:
        extra["best_epoch"] = stopper.best_epoch
    save_forecast_model(checkpoint_out, chosen, extra)

    seconds = timer.seconds
    record = {
        "model": op.source_id,
        "kind": settings.kind,
        "gate_passed": chosen.gate_passed,
        "gate": reports[settings.kind],
        "gate_other_models": {k: v for k, v in reports.items() if k != settings.kind},
        "settings": {"forecast": settings.model_dump(), "curriculum": cur.model_dump()},
        "data": {
            "operational": {"path": str(op.path), "months": op.x.shape[0], "train_months": op_split.n_train, "heldout_months": op_split.n_validation},
            "reanalysis": {"path": str(rean.path), "months": rean.x.shape[0], "train_months": rean_split.n_train,
                           "heldout_months": rean_split.n_validation, "used_for_training": use_rean},
            "n_state": op.n_state,
            "n_latent": op.n_latent,
        },
        "ridge": extra["ridge"],
        "noise": noise,
        "history": history,
        "best_epoch": None if stopper is None else stopper.best_epoch,
        "best_epoch_note": "0-based; -1 = no epoch beat the untrained model, which is exactly the linear skip",
        "initial_heldout_score": initial_score,
        "best_heldout_score": None if stopper is None else stopper.best,
        "epochs_run": len(history),
        "stopped_early": bool(history) and len(history) < settings.epochs,
        "timing": {"seconds": seconds, "epochs_per_second": len(history) / seconds if history else None, "device": device.type},
    }
    write_json(metrics_out, record)
    _plot_forecast_curves(curves_out, record)
    plot_gate(gate_figure_out, reports, title=f"Forecast gate {op.source_id}: {settings.kind} "
              f"({'passed' if chosen.gate_passed else 'FAILED'})")
    if settings.kind == "lstm":
        resume.clear()
    log.info("forecast model %s (%s): gate %s in %.0f s", op.source_id, settings.kind, "passed" if chosen.gate_passed else "FAILED", seconds)
    return record


def _plot_forecast_curves(path, record: dict) -> None:
    from .training import plot_panels

    h = record["history"]
    gate = record["gate"]["skill"]
    leads = gate["leads"]
    panels = []
    if h:
        epochs = [r["epoch"] + 1 for r in h]
        panels += [
            {"title": "training loss (standardised MSE)", "series": {"train": (epochs, [r["train_loss"] for r in h])}, "logy": True},
            {"title": f"held-out mean RMSE, leads 1–{len(h[0]['heldout_rmse_by_lead'][0])} (best epoch {record['best_epoch'] + 1}; 0 = initial)",
             "series": {"held-out": (epochs, [r["heldout_score"] for r in h])},
             "hlines": [(record["initial_heldout_score"], "initial model = linear skip")]},
            {"title": "curriculum", "ylabel": "", "series": {
                "p_e (reanalysis)": (epochs, [r["p_reanalysis"] for r in h]),
                "rollout k / max": (epochs, [r["rollout_k"] / record["settings"]["forecast"]["rollout_max"] for r in h])}},
        ]
    panels.append({"title": "held-out latent RMSE by lead", "xlabel": "lead (months)",
                   "series": {(record["kind"] if k == "model" else k): (leads, v) for k, v in gate["latent_rmse"].items()}})
    plot_panels(path, panels, title=f"Forecast model {record['model']} ({record['kind']})")
