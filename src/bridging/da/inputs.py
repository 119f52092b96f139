"""What the filter stage starts from: its input files read and checked, the trained models, the autoencoder hooks
the cycle calls (re-encoding, decoded observables) and the initial ensemble.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError, InputDataError
from ..grid import TargetGrid
from ..idealized.pseudo_obs import open_pseudo_obs
from ..models.conv_autoencoder import load_autoencoder
from ..models.forecasters import ensure_gate_passed, load_forecast_model
from ..observables import ObservationLayout
from ..stores import FIELDS, field_anomalies, open_store, open_zarr_checked
from .sources import ObservationVector, observation_vector
from .statistics import consistency_from_moments

log = logging.getLogger(__name__)

# Rows per decoder/encoder call (re-encoding, consistency checks): bounds activation memory at B·N = 16·50 members.
AUTOENCODER_ROWS = 512
# Re-encoding that moves training states by more than this fraction of their spread jolts members by far more than a
# typical analysis spread (a few % of the climatological spread): warn.
REENCODE_CHANGE_WARN = 0.1


@dataclass
class StageInputs:
    """What the filter reads from files, checked for consistency."""

    training: np.ndarray  # (T_train, n) [z; y] of the operational latent store
    n_latent: int
    observations: np.ndarray  # (T, m + k): the state's observables, then the hierarchy's derived rows
    obs_error_variance: np.ndarray  # (m + k,)
    observable_std: np.ndarray  # (m + k,) std over the training record (of y, then of the derived rows)
    time: np.ndarray  # (T,) cftime
    layout: ObservationLayout  # of the m + k observation rows
    ocean_mask: np.ndarray
    anomaly_std: dict[str, float]
    grid: TargetGrid
    pseudo_obs_attrs: dict
    obs_model: tuple[str, ...] = ()  # the idealized model of each observation row
    derived: np.ndarray | None = None  # (k, m) the derived rows on y (bridging.da.sources), None without others
    calibration: list[dict] = field(default_factory=list)  # β and R² of each derived row

    @property
    def n_state(self) -> int:
        return self.training.shape[1]

    @property
    def n_observables(self) -> int:
        """m: the observables the state holds (the first m observation rows)."""
        return self.training.shape[1] - self.n_latent

    @property
    def months(self) -> int:
        return self.observations.shape[0]


def read_inputs(
    latent_store, pseudo_obs, operational_store, grid_cfg, months: int | None, others: Mapping[str, str] | None = None
) -> StageInputs:
    """The filter's inputs; ``others`` (model → pseudo-observation store) adds the hierarchy's derived rows."""
    lat_ds = open_zarr_checked(latent_store, "latent store", ["z", "y", "obs_variable", "obs_lat_min"])
    obs_ds = open_pseudo_obs(pseudo_obs)
    layout = ObservationLayout.from_dataset(obs_ds)
    if not layout.same_nodes(ObservationLayout.from_dataset(lat_ds)):
        raise InputDataError(
            [pseudo_obs, latent_store], "the observables of the pseudo-observations and of the latent store differ"
        )
    z = np.asarray(lat_ds["z"].transpose("time", ...).values, dtype=np.float64)
    y = np.asarray(lat_ds["y"].transpose("time", "obs").values, dtype=np.float64)
    if not (np.isfinite(z).all() and np.isfinite(y).all()):
        raise InputDataError(latent_store, "z or y contains NaN/Inf")
    T = obs_ds.sizes["time"]
    if months is not None:
        if months > T:
            raise ConfigError(f"da.months = {months} exceeds the {T} months of {pseudo_obs}")
        T = months
    op = open_store(operational_store)
    missing = [f"{f}_anomaly_std" for f in FIELDS if f"{f}_anomaly_std" not in op]
    if missing:
        raise InputDataError(operational_store, f"not a store with anomaly std: missing {missing}")
    grid = TargetGrid.from_config(grid_cfg)
    if tuple(op["ocean_mask"].shape) != grid.shape:
        raise InputDataError(
            operational_store, f"ocean_mask has shape {op['ocean_mask'].shape}, the grid is {grid.shape}"
        )
    ysd = y.std(0)
    if not (ysd > 0).all():
        raise InputDataError(latent_store, f"observables {np.flatnonzero(ysd == 0).tolist()} are constant in y")
    vector = _observation_vector(obs_ds, pseudo_obs, others or {}, layout, op, grid)
    if vector.derived is not None:
        ysd = np.concatenate([ysd, (y @ vector.derived.T).std(0)])
    return StageInputs(
        training=np.concatenate([z, y], axis=1),
        n_latent=z.shape[1],
        observations=vector.observations[:T],
        obs_error_variance=vector.obs_error_variance,
        observable_std=ysd,
        time=obs_ds["time"].values[:T],
        layout=vector.layout,
        ocean_mask=np.asarray(op["ocean_mask"].values).astype(bool),
        anomaly_std={f: float(op[f"{f}_anomaly_std"]) for f in FIELDS},
        grid=grid,
        pseudo_obs_attrs=dict(obs_ds.attrs),
        obs_model=vector.model,
        derived=vector.derived,
        calibration=vector.calibration,
    )


def _observation_vector(obs_ds, pseudo_obs, others: Mapping[str, str], layout, op, grid) -> ObservationVector:
    """The primary pseudo-observations and those of the hierarchy's other models (β from the operational fields)."""
    stores = {name: open_pseudo_obs(path) for name, path in others.items()}
    anomalies = {f: field_anomalies(op, f).values for f in FIELDS} if stores else None
    return observation_vector(
        obs_ds,
        stores,
        state=layout,
        anomalies=anomalies,
        grid=grid,
        paths={"primary": str(pseudo_obs), **{k: str(v) for k, v in others.items()}},
    )


# --------------------------------------------------------------------------------------------------------------------
# Models


def load_models(forecast_path, autoencoder_path, device):
    """The trained forecast model and autoencoder (bridging.models; checkpoints load with weights_only=True)."""
    return load_forecast_model(forecast_path, device), load_autoencoder(autoencoder_path, device)


def checked_models(fm, ae, inputs: StageInputs, *, dtype, allow_failed_gate: bool, forecast_path, latent_store):
    """The models ready for the cycle: the forecast model passed its gate (or the failure is allowed), both run in
    the filter's dtype, and the forecast model's state is the latent store's [z; y]."""
    # A model whose free run is not stable lets the latent block drift off the autoencoder's manifold in the cycle.
    ensure_gate_passed(fm, allow_failed=allow_failed_gate, path=forecast_path)
    fm, ae = _as_model_dtype(fm, dtype), _as_model_dtype(ae, dtype)
    if int(fm.n_state) != inputs.n_state:
        raise InputDataError(
            [forecast_path, latent_store],
            f"the forecast model's state has {fm.n_state} entries, the latent store's [z; y] has {inputs.n_state}",
        )
    return fm, ae


def _as_model_dtype(model, dtype):
    """Models run in the filter's dtype (float64 runs exist for testing); modules are cast, other objects kept."""
    if isinstance(model, torch.nn.Module):
        model = model.to(dtype)
        model.eval()
    return model


# --------------------------------------------------------------------------------------------------------------------
# The autoencoder in the cycle


def in_chunks(fn: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
    """``fn`` applied to at most ``AUTOENCODER_ROWS`` rows at a time."""
    if rows.shape[0] <= AUTOENCODER_ROWS:
        return fn(rows)
    return torch.cat([fn(rows[i : i + AUTOENCODER_ROWS]) for i in range(0, rows.shape[0], AUTOENCODER_ROWS)])


def autoencoder_hooks(ae, *, layout, grid, ocean_mask, anomaly_std: Mapping[str, float], device, dtype):
    """(reencode, decoded_observables) closures over the autoencoder (channels in ``stores.FIELDS`` order).

    The decoder may return NaN (or anything) over land; land is set to 0 before re-encoding (the encoder's inputs
    are 0 outside the ocean) and carries zero weight in the extraction (the layout's observation operator). Decoded
    observables are de-standardised with the operational store's anomaly std per field, so they are in the physical
    units of y. Re-encoding runs in chunks of ``AUTOENCODER_ROWS`` rows.
    """
    names = tuple(getattr(ae, "field_names", FIELDS))
    if names != FIELDS:
        raise ValueError(f"the autoencoder's channels are {names}, the filter expects {FIELDS}")
    ocean = torch.as_tensor(np.asarray(ocean_mask, dtype=bool), device=device)
    op = torch.as_tensor(layout.operator(grid, ocean_mask, FIELDS), dtype=dtype, device=device)
    unit = torch.as_tensor([float(anomaly_std[v]) for v in layout.variable], dtype=dtype, device=device)

    def ocean_only(fields: torch.Tensor) -> torch.Tensor:
        return torch.where(ocean, fields, torch.zeros((), dtype=fields.dtype, device=fields.device))

    def reencode(z: torch.Tensor) -> torch.Tensor:
        return in_chunks(lambda rows: ae.encode(ocean_only(ae.decode(rows))), z)

    def decoded_observables(z: torch.Tensor) -> torch.Tensor:
        return (ocean_only(ae.decode(z).to(dtype)).flatten(1) @ op.mT) * unit

    return reencode, decoded_observables


def autoencoder_check(reencode, decoded_observables, inputs: StageInputs, *, device, dtype, sample: int = 256) -> dict:
    """How well the autoencoder supports the filter, on training months (logged and written to the statistics):

    * ``training_consistency_*``: decoded fields at the observation points vs y on the training record — the
      ceiling of the filter's consistency diagnostic (an imperfect autoencoder cannot reach 1 even without DA);
    * ``reencode_relative_change``: ‖E(D(z)) − z‖ / ‖z − z̄‖: how far one re-encoding moves a training state. Near 0
      the re-encoding is a projection onto the manifold; otherwise it jolts every member each month by far more than
      the analysis spread (docs/method.md, Filter: "Re-encoding off by default").
    """
    rows = np.linspace(0, inputs.training.shape[0] - 1, min(sample, inputs.training.shape[0])).astype(int)
    z = torch.as_tensor(inputs.training[rows, : inputs.n_latent], dtype=dtype, device=device)
    std = inputs.observable_std[: inputs.n_observables]
    y = inputs.training[rows, inputs.n_latent :] / std
    with torch.inference_mode():
        decoded = in_chunks(decoded_observables, z).double().cpu().numpy() / std
        moved = reencode(z).double().cpu().numpy()
    zc = inputs.training[rows, : inputs.n_latent]
    moments = np.array([decoded.sum(), y.sum(), (decoded**2).sum(), (y**2).sum(), (decoded * y).sum()])
    corr, slope = consistency_from_moments(moments, decoded.size)
    return {
        "training_consistency_correlation": float(corr),
        "training_consistency_slope": float(slope),
        "reencode_relative_change": float(np.linalg.norm(moved - zc) / np.linalg.norm(zc - zc.mean(0))),
        "training_months_checked": int(rows.size),
    }


def log_autoencoder_check(check: dict, *, reencoding: bool) -> None:
    log.info(
        "autoencoder on %d training months: decoded-vs-y consistency corr %.3f slope %.3f; one re-encoding moves "
        "z by %.2f of its spread",
        check["training_months_checked"],
        check["training_consistency_correlation"],
        check["training_consistency_slope"],
        check["reencode_relative_change"],
    )
    if reencoding and check["reencode_relative_change"] > REENCODE_CHANGE_WARN:
        log.warning(
            "da.reencode is on but E(D(z)) moves training states by %.2f of their spread: re-encoding will "
            "jolt every member each month (it collapsed the ensemble in such a case); consider reencode: false",
            check["reencode_relative_change"],
        )


# --------------------------------------------------------------------------------------------------------------------
# The initial ensemble


def initial_members(
    training: np.ndarray, n_members: int, *, warmup: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random training months as initial members: (months (N,), history (N, warmup, n), states (N, n)).

    Months are drawn without replacement when the record allows it; each member's ``warmup`` preceding months are
    returned to spin up the forecast model's recurrent state.
    """
    T = training.shape[0]
    candidates = np.arange(warmup, T)
    if candidates.size == 0:
        raise ConfigError(f"da.init_warmup_months = {warmup} leaves no training month to start from ({T} months)")
    rng = np.random.default_rng(seed)
    months = rng.choice(candidates, size=n_members, replace=n_members > candidates.size)
    history = (
        np.stack([training[t - warmup : t] for t in months]) if warmup else np.zeros((n_members, 0, training.shape[1]))
    )
    return months, history, training[months]


def spin_up(forecaster, history: torch.Tensor, n_experiments: int):
    """The recurrent state after feeding each member's history (N, W, n), repeated for every experiment."""
    N, W, n = history.shape
    rows = history.unsqueeze(0).expand(n_experiments, N, W, n).reshape(n_experiments * N, W, n)
    state = forecaster.initial_state(n_experiments * N, history.device, history.dtype)
    if state is None:
        return None
    with torch.inference_mode():
        for w in range(W):
            _, state = forecaster.step(rows[:, w], state)
    return state
