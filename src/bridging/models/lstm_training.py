"""Training of the LSTM correction of the forecast model.

Windows of ``teacher_forcing_months`` true months (one-step predictions, teacher-forced), then a rollout over k months
fed with the model's own predictions (backpropagated through), k ramping from 1 to ``rollout_max`` over the first
``rollout_ramp_fraction`` of the epochs; the loss is the MSE of the standardised state over all predicted months.
Input noise on the LSTM inputs, dropout, AdamW weight decay, gradient clipping. Training sequences come from the
curriculum: each from the reanalysis latent record with probability p_e, else from the operational one.

Model selection: the held-out score is the error of ENSO indices at leads 3–12 (:mod:`.enso_score`) on each source's
held-out months, relative to the linear skip's, and an epoch is scored by its WORST source: a mixture-weighted mean
let a gain on the reanalysis' months (weight p_max = 0.6) hide a loss on the operational model's, the record the
filter runs from (DEMO-GFDL-CM4: −11 % and +15 %, docs/method.md, Forecast model). Early stopping counts, and
epochs compete with the linear skip (epoch −1, score 1), only once both ramps (rollout length and curriculum) have
reached their final values: an epoch trained on short rollouts of operational-heavy data is not the model the filter
runs, and stopping before the ramps end (as patience counted from epoch −1 did) never trains it.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import nn

from ..resume import ResumeCheckpoint
from ..settings import CurriculumSection, ForecastSection
from .curriculum import (
    OPERATIONAL,
    REANALYSIS,
    CurriculumSampler,
    ramps_end_epoch,
    reanalysis_probability_schedule,
    rollout_schedule,
)
from .enso_score import EnsoIndices, lead_window_score
from .forecasters import LatentForecaster, LSTMForecaster
from .gate import forecast_starts, rollout
from .training import EarlyStopping, EpochLoop, Timer, epoch_seed, progress, seed_torch

log = logging.getLogger(__name__)

GRADIENT_CLIP_NORM = 1.0


@torch.no_grad()
def heldout_errors(
    model: LatentForecaster, x: np.ndarray, warmup: int, max_lead: int, device, indices: EnsoIndices
) -> tuple[np.ndarray, np.ndarray]:
    """Errors of rollouts from every start of a held-out segment x (T, n), state units: the RMSE of the standardised
    state (max_lead,) and of the indices (max_lead, n_indices), by lead."""
    starts = forecast_starts(x.shape[0], warmup, max_lead)
    if starts.size == 0:
        raise ValueError(
            f"a held-out segment of {x.shape[0]} months is too short for {warmup} warm-up months and {max_lead} leads"
        )
    xt = torch.as_tensor(x, device=device)
    warm = xt[torch.as_tensor(starts[:, None] - warmup + 1 + np.arange(warmup)[None, :], device=device)]
    pred = model.standardise(rollout(model, warm, max_lead))
    truth = model.standardise(xt[torch.as_tensor(starts[:, None] + 1 + np.arange(max_lead)[None, :], device=device)])
    state_rmse = (pred - truth).square().mean((0, 2)).sqrt().cpu().numpy()
    return state_rmse, indices.rmse_by_lead(pred.cpu().numpy(), truth.cpu().numpy())


def train_lstm(
    model: LSTMForecaster,
    op_train: np.ndarray,
    rean_train: np.ndarray | None,
    validation: list[tuple[np.ndarray, float]],
    settings: ForecastSection,
    curriculum: CurriculumSection,
    device,
    checkpoint: ResumeCheckpoint,
    indices: EnsoIndices,
) -> tuple[LSTMForecaster, list[dict], EarlyStopping, list[float]]:
    """Train the LSTM correction in place; returns it at its best epoch (epoch −1: untrained, i.e. the linear skip),
    the per-epoch history, the early-stopping record and the initial model's held-out index error per source.

    Training windows come as standardised arrays; held-out segments (``validation``: (x, weight)) in state units; the
    score is the worst source's index error over ``settings.score_leads`` relative to the linear skip's.
    """
    windows = _Windows(op_train, rean_train, settings, curriculum)
    k_schedule = rollout_schedule(settings.rollout_max, settings.rollout_ramp_fraction, settings.epochs)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    stopper = EarlyStopping(settings.patience, start_epoch=ramps_end_epoch(settings, curriculum))
    loop = EpochLoop(model, optimizer, stopper, checkpoint, extra={"initial_scores": None})
    max_lead = max(settings.rollout_max, settings.score_leads[1])

    def heldout_scores() -> tuple[list[float], list[tuple[np.ndarray, np.ndarray]]]:
        errors = [
            heldout_errors(model, x, settings.teacher_forcing_months, max_lead, device, indices) for x, _ in validation
        ]
        return [lead_window_score(index_rmse, settings.score_leads) for _, index_rmse in errors], errors

    if not loop.resume():
        # Epoch "-1" is the untrained model, i.e. exactly the linear skip: an LSTM that never beats it on the held-out
        # multi-step error is returned as that linear model rather than as its least bad overfitted epoch.
        loop.extra["initial_scores"], _ = heldout_scores()
        loop.stopper.update(1.0, -1)
        log.info(
            "forecast: held-out ENSO-index error of the initial model (= the linear skip) by source %s; early "
            "stopping counts from epoch %d (ramps end)",
            [round(v, 4) for v in loop.extra["initial_scores"]],
            loop.stopper.start_epoch + 1,
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
        by_source, errors = heldout_scores()
        score = max(s / s0 for s, s0 in zip(by_source, loop.extra["initial_scores"]))
        record = {
            "epoch": epoch,
            "rollout_k": k,
            "p_reanalysis": draw.p_reanalysis,
            "reanalysis_share": draw.reanalysis_share,
            "train_loss": total / n_batches,
            "heldout_rmse_by_lead": [state.tolist() for state, _ in errors],
            "heldout_index_rmse_by_lead": [index.tolist() for _, index in errors],
            "heldout_index_error_by_source": by_source,
            "heldout_score": score,
            "counted_for_stopping": epoch >= loop.stopper.start_epoch,
            "seconds": timer.seconds,
        }
        loop.end_epoch(epoch, record, score)
        log.info(
            "forecast epoch %d: k=%d p=%.2f train loss %.4f | held-out ENSO-index error / linear's, worst source "
            "(leads %d-%d) %.4f | %.1f s",
            epoch + 1,
            k,
            draw.p_reanalysis,
            record["train_loss"],
            *settings.score_leads,
            score,
            record["seconds"],
        )
    return loop.finish(), loop.history, loop.stopper, [float(v) for v in loop.extra["initial_scores"]]


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
