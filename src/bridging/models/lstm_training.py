"""Training of the LSTM correction of the forecast model.

Windows of ``teacher_forcing_months`` true months (one-step predictions, teacher-forced), then a rollout over k months
fed with the model's own predictions (backpropagated through), k ramping from 1 to ``rollout_max`` over the first
``rollout_ramp_fraction`` of the epochs; the loss is the MSE of the standardised state over all predicted months.
Input noise on the LSTM inputs, dropout, AdamW weight decay, gradient clipping, and early stopping on the held-out
multi-step error (:func:`multistep_rmse`). Training sequences come from the curriculum: each from the reanalysis
latent record with probability p_e, else from the operational one.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import nn

from ..resume import ResumeCheckpoint
from ..settings import CurriculumSection, ForecastSection
from .curriculum import OPERATIONAL, REANALYSIS, CurriculumSampler, reanalysis_probability_schedule, rollout_schedule
from .forecasters import LatentForecaster, LSTMForecaster
from .gate import forecast_starts, rollout
from .training import EarlyStopping, EpochLoop, Timer, epoch_seed, progress, seed_torch

log = logging.getLogger(__name__)

GRADIENT_CLIP_NORM = 1.0


@torch.no_grad()
def multistep_rmse(model: LatentForecaster, x: np.ndarray, warmup: int, max_lead: int, device) -> np.ndarray:
    """RMSE of the standardised state at leads 1..max_lead over every start of a held-out segment x (T, n)."""
    starts = forecast_starts(x.shape[0], warmup, max_lead)
    if starts.size == 0:
        raise ValueError(
            f"a held-out segment of {x.shape[0]} months is too short for {warmup} warm-up months and {max_lead} leads"
        )
    xt = torch.as_tensor(x, device=device)
    warm = xt[torch.as_tensor(starts[:, None] - warmup + 1 + np.arange(warmup)[None, :], device=device)]
    pred = rollout(model, warm, max_lead)
    truth = xt[torch.as_tensor(starts[:, None] + 1 + np.arange(max_lead)[None, :], device=device)]
    err = (model.standardise(pred) - model.standardise(truth)).square().mean((0, 2)).sqrt()
    return err.cpu().numpy()


def train_lstm(
    model: LSTMForecaster,
    op_train: np.ndarray,
    rean_train: np.ndarray | None,
    validation: list[tuple[np.ndarray, float]],
    settings: ForecastSection,
    curriculum: CurriculumSection,
    device,
    checkpoint: ResumeCheckpoint,
) -> tuple[LSTMForecaster, list[dict], EarlyStopping, float]:
    """Train the LSTM correction in place; returns it at its best epoch (epoch −1: untrained, i.e. the linear skip),
    the per-epoch history, the early-stopping record and the initial model's held-out score.

    Training windows come as standardised arrays; held-out segments (``validation``: (x, weight)) in state units.
    """
    windows = _Windows(op_train, rean_train, settings, curriculum)
    k_schedule = rollout_schedule(settings.rollout_max, settings.rollout_ramp_fraction, settings.epochs)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    loop = EpochLoop(model, optimizer, EarlyStopping(settings.patience), checkpoint, extra={"initial_score": None})

    def heldout_score() -> tuple[float, list[np.ndarray]]:
        scores = [
            multistep_rmse(model, x, settings.teacher_forcing_months, settings.rollout_max, device)
            for x, _ in validation
        ]
        return float(sum(w * s.mean() for (_, w), s in zip(validation, scores)) / sum(w for _, w in validation)), scores

    if not loop.resume():
        # Epoch "-1" is the untrained model, i.e. exactly the linear skip: an LSTM that never beats it on the held-out
        # multi-step error is returned as that linear model rather than as its least bad overfitted epoch.
        loop.extra["initial_score"], _ = heldout_score()
        loop.stopper.update(loop.extra["initial_score"], -1)
        log.info(
            "forecast: held-out mean RMSE of the initial model (= the linear skip) %.4f", loop.extra["initial_score"]
        )

    for epoch in loop.epochs(settings.epochs):
        timer = Timer()
        model.train()
        seed_torch(epoch_seed(settings.seed, epoch))
        k = k_schedule.int_value(epoch)
        draw = windows.sampler.draw(epoch)
        n_batches = math.ceil(len(draw.source) / settings.batch_size)
        total = 0.0
        for b in progress(
            range(n_batches), total=n_batches, desc=f"forecast epoch {epoch + 1}/{settings.epochs} (k={k})", logger=log
        ):
            sl = slice(b * settings.batch_size, (b + 1) * settings.batch_size)
            batch = windows.batch(draw.source[sl], draw.index[sl], model.n_state).to(device)
            loss = _rollout_loss(model, batch, k, settings)
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
        loop.end_epoch(epoch, record, score)
        log.info(
            "forecast epoch %d: k=%d p=%.2f train loss %.4f | held-out mean RMSE (leads 1-%d) %.4f | %.1f s",
            epoch + 1,
            k,
            draw.p_reanalysis,
            record["train_loss"],
            settings.rollout_max,
            score,
            record["seconds"],
        )
    return loop.finish(), loop.history, loop.stopper, float(loop.extra["initial_score"])


class _Windows:
    """Training windows (teacher-forced months, then the rollout months) drawn by the curriculum from both records."""

    def __init__(
        self,
        op_train: np.ndarray,
        rean_train: np.ndarray | None,
        settings: ForecastSection,
        curriculum: CurriculumSection,
    ):
        self.length = settings.teacher_forcing_months + settings.rollout_max + 1
        n_op = op_train.shape[0] - self.length + 1
        n_rean = 0 if rean_train is None else rean_train.shape[0] - self.length + 1
        if n_op < 1:
            raise ValueError(
                f"the operational training record ({op_train.shape[0]} months) is shorter than one training "
                f"window ({self.length} months)"
            )
        p_schedule = reanalysis_probability_schedule(curriculum, settings.epochs)
        if n_rean < 1 and p_schedule.value(settings.epochs) > 0:
            raise ValueError(
                f"the reanalysis training record is shorter than one training window ({self.length} months)"
            )
        self.sampler = CurriculumSampler(
            p_schedule, n_op, max(n_rean, 0), settings.sequences_per_epoch or n_op, settings.seed
        )
        self.sources = {
            OPERATIONAL: torch.as_tensor(op_train),
            REANALYSIS: torch.as_tensor(rean_train if rean_train is not None else op_train[:0]),
        }

    def batch(self, source_ids: np.ndarray, starts: np.ndarray, n_state: int) -> torch.Tensor:
        """(batch, window, n_state) windows starting at ``starts`` of the sources ``source_ids``."""
        batch = torch.empty((len(starts), self.length, n_state))
        for s in (OPERATIONAL, REANALYSIS):
            sel = source_ids == s
            if sel.any():
                batch[torch.as_tensor(sel)] = self.sources[s][
                    torch.as_tensor(starts[sel][:, None] + np.arange(self.length)[None, :])
                ]
        return batch


def _rollout_loss(model: LSTMForecaster, batch: torch.Tensor, k: int, settings: ForecastSection) -> torch.Tensor:
    """MSE of the standardised state over the teacher-forced months and a k-month rollout on the model's own
    (noisy) predictions."""
    teacher = settings.teacher_forcing_months
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
    return (all_preds - batch[:, 1 : teacher + k + 1]).square().mean()
