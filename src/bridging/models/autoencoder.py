"""The physically-augmented autoencoder (rule ``train_autoencoder``): its training stage, and the public interface of
the autoencoder.

The network, loading and batch encoding live in :mod:`.conv_autoencoder`, the loss and metrics in
:mod:`.autoencoder_metrics`, the training data in :mod:`.field_records`; the names the other stages use are
re-exported here (``load_autoencoder``, ``encode_array``, ``decode_array``, ``load_field_record``, ...). The filter's
augmented state is x = [z; y] with z = E(X) and the observables y extracted from the *same* fields at the
pseudo-observation positions (``ObservationLayout``).

Training: on the operational model's record and, with ``curriculum.apply_to_autoencoder``, on reanalysis fields mixed
in with the curriculum's probability; the reconstruction loss counts only cells that are ocean in both the
operational model and the sample's source; early stopping on the held-out loss (for the curriculum, weighted toward
the reanalysis by p_max).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..grid import TargetGrid
from ..observables import ObservationLayout
from ..settings import AutoencoderSection, CurriculumSection
from .autoencoder_metrics import (
    LOSS_DEFINITION,
    correlation_loss,
    designated_correlations,
    evaluate,
    latent_observable_statistics,
    linear_recoverability,
    masked_mse,
    with_physical_errors,
)
from .conv_autoencoder import (
    CHECKPOINT_KIND,
    FIELD_NAMES,
    ConvAutoencoder,
    decode_array,
    encode_array,
    load_autoencoder,
)
from .curriculum import OPERATIONAL, REANALYSIS, CurriculumSampler, Schedule, reanalysis_probability_schedule
from .field_records import FieldRecord, check_store_grid, load_field_record, read_observation_layout
from .figures import plot_autoencoder_curves
from .training import (
    EarlyStopping,
    EpochLoop,
    Timer,
    TimeSplit,
    epoch_seed,
    fingerprint,
    prepare_torch,
    progress,
    save_checkpoint,
    seed_torch,
    time_split,
    training_checkpoint,
    write_json,
)

__all__ = [
    "CHECKPOINT_KIND", "FIELD_NAMES", "LOSS_DEFINITION", "ConvAutoencoder", "FieldRecord", "check_store_grid",
    "correlation_loss", "decode_array", "designated_correlations", "encode_array", "evaluate",
    "latent_observable_statistics", "linear_recoverability", "load_autoencoder", "load_field_record", "masked_mse",
    "read_observation_layout", "train_autoencoder",
]  # fmt: skip

log = logging.getLogger(__name__)


def train_autoencoder(
    operational_store: str | Path,
    reanalysis_store: str | Path,
    pseudo_obs: str | Path,
    checkpoint_out: str | Path,
    metrics_out: str | Path,
    curves_out: str | Path,
    *,
    autoencoder,
    curriculum,
    compute,
    grid,
) -> dict:
    """Train the physically-augmented autoencoder of one operational model (rule ``train_autoencoder``).

    Trains on the operational model's record (and, with ``curriculum.apply_to_autoencoder``, on reanalysis fields
    mixed in with the curriculum's probability), early-stops on the held-out loss, and writes the checkpoint, the
    metrics JSON (per-epoch and final L_recon, L_corr, ‖C‖ on training and held-out data of both sources) and the
    training curves. Returns the metrics record.
    """
    settings = AutoencoderSection.model_validate(autoencoder)
    cur = CurriculumSection.model_validate(curriculum)
    target_grid = TargetGrid.from_config(grid)
    layout = read_observation_layout(pseudo_obs)
    if layout.size > settings.latent_dim:
        raise ConfigError(
            f"autoencoder.latent_dim ({settings.latent_dim}) must be at least the number of observables ({layout.size}): "
            "each observable has a designated latent coordinate"
        )
    device = prepare_torch(compute)
    timer = Timer()
    data = TrainingData.read(operational_store, reanalysis_store, target_grid, layout, settings)
    log.info(
        "autoencoder for %s: %d training / %d held-out months; reanalysis %s: %d / %d; %d observables; device %s",
        data.op.source_id,
        data.op_split.n_train,
        data.op_split.n_validation,
        data.rean.source_id,
        data.rean_split.n_train,
        data.rean_split.n_validation,
        layout.size,
        device,
    )

    schedule = reanalysis_probability_schedule(cur, settings.epochs) if cur.apply_to_autoencoder else Schedule(0.0)
    sampler = CurriculumSampler(
        schedule, data.op_split.n_train, data.rean_split.n_train, data.op_split.n_train, settings.seed
    )
    seed_torch(settings.seed)
    model = ConvAutoencoder(
        target_grid.shape, settings.latent_dim, settings.channels, len(FIELD_NAMES), data.op.ocean
    ).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    batches = _Batches(data, device)
    run_id = fingerprint(
        {
            "autoencoder": settings.model_dump(),
            "curriculum": cur.model_dump(),
            "grid": asdict(target_grid),
            "device": device.type,
        },
        [data.op.standardised, data.rean.standardised, data.op.observables],
    )
    loop = EpochLoop(model, optimizer, EarlyStopping(settings.patience), training_checkpoint(checkpoint_out, run_id))
    loop.resume()
    for epoch in loop.epochs(settings.epochs):
        epoch_timer = Timer()
        record = _train_epoch(model, optimizer, batches, sampler.draw(epoch), settings, epoch)
        record.update(_heldout_losses(model, data, settings, device))
        rean_weight = cur.p_max if cur.apply_to_autoencoder else 0.0
        record["early_stopping_score"] = (1 - rean_weight) * record["heldout_operational"][
            "total_loss"
        ] + rean_weight * record["heldout_reanalysis"]["total_loss"]
        record["seconds"] = epoch_timer.seconds
        loop.end_epoch(epoch, record, record["early_stopping_score"])
        _log_epoch(record, epoch)

    model = loop.finish()
    final = final_metrics(model, data, settings, device)
    save_checkpoint(
        checkpoint_out,
        kind=CHECKPOINT_KIND,
        state_dict=model.state_dict(),
        metadata=_checkpoint_metadata(data, settings, cur, target_grid, loop.stopper.best_epoch, final),
    )
    record = _metrics_record(data, settings, cur, loop, final, seconds=timer.seconds, device=device)
    write_json(metrics_out, record)
    plot_autoencoder_curves(curves_out, record)
    loop.checkpoint.clear()
    heldout = final["operational_heldout"]
    log.info(
        "autoencoder for %s: best epoch %d; held-out L_recon %.4g (SST RMSE %.3f degC, thermocline RMSE %.2f m), L_corr %.3f, y-from-z R2 %.3f; %.0f s",
        data.op.source_id,
        loop.stopper.best_epoch + 1,
        heldout["recon_loss"],
        heldout["recon_rmse_physical"]["sst"]["value"],
        heldout["recon_rmse_physical"]["thermocline_depth"]["value"],
        heldout["corr_loss"],
        heldout["y_from_z_r2"],
        record["timing"]["seconds"],
    )
    return record


# --------------------------------------------------------------------------------------------------------------------
# Data


@dataclass
class TrainingData:
    """Both sources' records, their time splits and loss masks: the autoencoder's domain is the operational ocean;
    a reanalysis sample also lacks its own land cells."""

    op: FieldRecord
    rean: FieldRecord
    op_split: TimeSplit
    rean_split: TimeSplit
    layout: ObservationLayout

    @classmethod
    def read(
        cls,
        operational_store,
        reanalysis_store,
        grid: TargetGrid,
        layout: ObservationLayout,
        settings: AutoencoderSection,
    ) -> TrainingData:
        op = load_field_record(operational_store, grid=grid, layout=layout)
        rean = load_field_record(reanalysis_store, grid=grid, layout=layout, field_std=op.field_std)
        op_split = time_split(
            len(op), settings.validation_fraction, min_train=settings.batch_size, min_validation=2, what=str(op.path)
        )
        rean_split = time_split(
            len(rean), settings.validation_fraction, min_train=2, min_validation=2, what=str(rean.path)
        )
        return cls(op, rean, op_split, rean_split, layout)

    @property
    def op_mask(self) -> np.ndarray:
        return self.op.ocean

    @property
    def rean_mask(self) -> np.ndarray:
        return self.op.ocean & self.rean.ocean

    def sets(self):
        """(name, record, months, loss mask) of every set the final metrics are reported on."""
        op, rean, ops, rs = self.op, self.rean, self.op_split, self.rean_split
        return (
            ("operational_train", op, ops.train, self.op_mask),
            ("operational_heldout", op, ops.validation, self.op_mask),
            ("reanalysis_train", rean, rs.train, self.rean_mask),
            ("reanalysis_heldout", rean, rs.validation, self.rean_mask),
            ("reanalysis_all", rean, slice(None), self.rean_mask),
        )


class _Batches:
    """The training months of both sources as tensors, and the batches of a curriculum draw."""

    def __init__(self, data: TrainingData, device):
        self.fields = {
            OPERATIONAL: torch.as_tensor(data.op.standardised[data.op_split.train]),
            REANALYSIS: torch.as_tensor(data.rean.standardised[data.rean_split.train]),
        }
        self.obs = {
            OPERATIONAL: torch.as_tensor(data.op.observables[data.op_split.train]),
            REANALYSIS: torch.as_tensor(data.rean.observables[data.rean_split.train]),
        }
        self.masks = torch.stack([torch.as_tensor(data.op_mask), torch.as_tensor(data.rean_mask)]).to(
            device=device, dtype=torch.float32
        )
        self.n_obs, self.device = data.layout.size, device

    def batch(self, source_ids: np.ndarray, indices: np.ndarray):
        """(x, y, loss mask) of one batch on the device; rows in the draw's order."""
        source = torch.as_tensor(source_ids, dtype=torch.long)
        index = torch.as_tensor(indices)
        x = torch.empty((len(index), *self.fields[OPERATIONAL].shape[1:]))
        y = torch.empty((len(index), self.n_obs))
        for s in (OPERATIONAL, REANALYSIS):
            sel = source == s
            if sel.any():
                x[sel] = self.fields[s][index[sel]]
                y[sel] = self.obs[s][index[sel]]
        return x.to(self.device), y.to(self.device), self.masks[source.to(self.device)][:, None]


# --------------------------------------------------------------------------------------------------------------------
# One epoch


def _train_epoch(model, optimizer, batches: _Batches, draw, settings: AutoencoderSection, epoch: int) -> dict:
    """One pass over the curriculum's draw (full batches only: L_corr is a batch correlation); the epoch record."""
    model.train()
    seed_torch(epoch_seed(settings.seed, epoch))
    n_batches = len(draw.source) // settings.batch_size
    sums = {"recon": 0.0, "corr": 0.0}
    z_seen, y_seen = [], []
    for b in progress(
        range(n_batches), total=n_batches, desc=f"autoencoder epoch {epoch + 1}/{settings.epochs}", logger=log
    ):
        sl = slice(b * settings.batch_size, (b + 1) * settings.batch_size)
        x, y, mask = batches.batch(draw.source[sl], draw.index[sl])
        recon, z = model(x)
        recon_loss = masked_mse(recon, x, mask)
        corr_loss = correlation_loss(z, y)
        loss = recon_loss + settings.lambda_corr * corr_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sums["recon"] += recon_loss.item()
        sums["corr"] += corr_loss.item()
        z_seen.append(z.detach().cpu().numpy())
        y_seen.append(y.cpu().numpy())
    train_stats = latent_observable_statistics(np.concatenate(z_seen), np.concatenate(y_seen))
    return {
        "epoch": epoch,
        "p_reanalysis": draw.p_reanalysis,
        "reanalysis_share": draw.reanalysis_share,
        "train": {
            "recon_loss": sums["recon"] / n_batches,
            "corr_loss_batch_mean": sums["corr"] / n_batches,
            "corr_loss": train_stats["corr_loss"],
            "cross_cov_norm": train_stats["cross_cov_norm"],
        },
    }


def _heldout_losses(model, data: TrainingData, settings: AutoencoderSection, device) -> dict:
    out = {}
    for name, rec, split, mask in (
        ("heldout_operational", data.op, data.op_split, data.op_mask),
        ("heldout_reanalysis", data.rean, data.rean_split, data.rean_mask),
    ):
        metrics, _ = evaluate(
            model,
            rec.standardised[split.validation],
            rec.observables[split.validation],
            mask,
            batch_size=settings.encode_batch_size,
            device=device,
        )
        metrics["total_loss"] = metrics["recon_loss"] + settings.lambda_corr * metrics["corr_loss"]
        out[name] = {k: metrics[k] for k in ("recon_loss", "corr_loss", "cross_cov_norm", "total_loss")}
    return out


def _log_epoch(record: dict, epoch: int) -> None:
    train, heldout, rean = record["train"], record["heldout_operational"], record["heldout_reanalysis"]
    log.info(
        "epoch %d: train L_recon %.4g L_corr %.3f | held-out L_recon %.4g L_corr %.3f ||C|| %.3g | reanalysis L_recon %.4g | p=%.2f | %.1f s",
        epoch + 1,
        train["recon_loss"],
        train["corr_loss"],
        heldout["recon_loss"],
        heldout["corr_loss"],
        heldout["cross_cov_norm"],
        rean["recon_loss"],
        record["p_reanalysis"],
        record["seconds"],
    )


# --------------------------------------------------------------------------------------------------------------------
# The trained model: metrics, checkpoint, metrics record


def final_metrics(model, data: TrainingData, settings: AutoencoderSection, device) -> dict:
    """Losses and latent–observable metrics of the trained model on every set, with the y-from-z R² (fitted on the
    same source's training months: in-sample for *_train, held-out otherwise)."""
    final, latents = {}, {}
    for name, rec, sl, mask in data.sets():
        metrics, z = evaluate(
            model, rec.standardised[sl], rec.observables[sl], mask, batch_size=settings.encode_batch_size, device=device
        )
        final[name] = with_physical_errors(metrics, data.op.field_std)
        latents[name] = (z, rec.observables[sl])
    for name in final:
        z_fit, y_fit = latents["operational_train" if name.startswith("operational") else "reanalysis_train"]
        z_eval, y_eval = latents[name]
        final[name]["y_from_z_r2"] = linear_recoverability(z_fit, y_fit, z_eval, y_eval)
    return final


def _layout_dict(layout: ObservationLayout) -> dict:
    return {k: list(getattr(layout, k)) for k in ("variable", "lat_min", "lat_max", "lon_min", "lon_max")}


def _checkpoint_metadata(data: TrainingData, settings, cur, grid: TargetGrid, best_epoch: int, final: dict) -> dict:
    return {
        "source_id": data.op.source_id,
        "grid_shape": list(grid.shape),
        "grid": {k: float(v) for k, v in asdict(grid).items()},
        "latent_dim": settings.latent_dim,
        "channels": settings.channels,
        "n_fields": len(FIELD_NAMES),
        "field_names": list(FIELD_NAMES),
        "field_std": data.op.field_std,
        "observables": _layout_dict(data.layout),
        "loss_definition": LOSS_DEFINITION,
        "lambda_corr": settings.lambda_corr,
        "curriculum_applied": cur.apply_to_autoencoder,
        "best_epoch": best_epoch,
        "heldout_operational": final["operational_heldout"],
    }


def _metrics_record(data: TrainingData, settings, cur, loop: EpochLoop, final: dict, *, seconds: float, device) -> dict:
    op, rean, epochs_run = data.op, data.rean, len(loop.history)
    return {
        "model": op.source_id,
        "loss": {
            "definition": LOSS_DEFINITION,
            "corr_form": "designated: latent k <-> observable k, Pearson correlation over the minibatch (held-out: over the whole set)",
            "lambda_corr": settings.lambda_corr,
            "cross_cov_norm": "Frobenius norm of cov(z, y / std(y)) (z in latent units)",
            "y_from_z_r2": "mean R^2 over observables of a ridge regression of y on z fitted on the same source's training "
            "months (held-out for *_heldout; in-sample for *_train)",
        },
        "settings": {"autoencoder": settings.model_dump(), "curriculum": cur.model_dump()},
        "data": {
            "operational": {
                "path": str(op.path),
                "months": len(op),
                "train_months": data.op_split.n_train,
                "heldout_months": data.op_split.n_validation,
            },
            "reanalysis": {
                "path": str(rean.path),
                "months": len(rean),
                "train_months": data.rean_split.n_train,
                "heldout_months": data.rean_split.n_validation,
            },
            "n_observables": data.layout.size,
            "field_std": op.field_std,
        },
        "history": loop.history,
        "best_epoch": loop.stopper.best_epoch,
        "epochs_run": epochs_run,
        "stopped_early": epochs_run < settings.epochs,
        "final": final,
        "timing": {
            "seconds": seconds,
            "epochs_per_second": epochs_run / seconds if seconds > 0 else None,
            "device": device.type,
        },
    }
