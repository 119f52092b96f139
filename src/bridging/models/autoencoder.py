"""The physically-augmented autoencoder (seed, Mechanism 1).

A convolutional encoder E maps the standardised anomaly fields X (channels: SST, thermocline depth) on the target
grid to a latent vector z = E(X); the decoder D maps it back. The filter's augmented state is x = [z; y], with the
observables y extracted from the *same* fields at the pseudo-observation positions (``ObservationLayout``).

Loss (documented here, in the checkpoint and in the metrics JSON)::

    L = L_recon + λ · L_corr
    L_recon = Σ_ocean (D(E(X)) − X)² / (number of ocean values)          (standardised units, land excluded)
    L_corr  = −(1/K) Σ_k corr_batch(z_k, y_k),   k = 0 … K−1              (K = number of observables)

i.e. latent coordinate k is *designated* to observable k and the loss rewards their Pearson correlation over the
minibatch (method.md §6.2's "designated coordinates" form). We chose it over "mean over observables of the max |corr|
over latents" because it is smooth (a max is not), gives each observable a known latent partner, and makes the
value directly interpretable (−1: every designated latent is a perfect linear proxy of its observable). Since y is
itself a linear function of X here, a linear encoder layer can reach L_corr ≈ −1 without costing reconstruction,
so the value is *not* a tuning target (method.md, lessons §6): the metrics therefore also report what the filter
actually relies on — how well y is linearly recoverable from z (held-out R²), the cross-covariance norm ‖C‖, and
the mean over observables of the largest |corr| with any latent — for every run, so λ = 0 and λ > 0 can be
compared on equal terms.

Standardisation: anomalies against each source's own monthly climatology, divided by the *operational* model's
anomaly std for every source. One fixed scale keeps the encoder a single map from physical anomalies to latents,
so reanalysis amplitudes stay comparable (dividing the reanalysis by its own std would hide the operational
model's amplitude bias from the curriculum) and decoding multiplies back by the same numbers.

Land: the autoencoder's domain is the operational model's ocean. Inputs are 0 outside it (and where a source has
no data), the reconstruction loss counts only cells that are ocean in both the operational model and the sample's
source, and ``decode`` returns NaN over land. Odd grid sizes (41 × 161) are zero-padded to a multiple of
2^(number of blocks) before the strided convolutions and cropped back after the last transposed convolution.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn
from torch.nn import functional as F

from .. import stores
from ..errors import ConfigError, InputDataError
from ..grid import TargetGrid
from ..observables import ObservationLayout
from ..settings import AutoencoderSection, CurriculumSection
from .curriculum import OPERATIONAL, REANALYSIS, CurriculumSampler, Schedule, reanalysis_probability_schedule
from .training import (
    EarlyStopping,
    ResumeState,
    Timer,
    epoch_seed,
    fingerprint,
    load_checkpoint,
    plot_panels,
    prepare_torch,
    progress,
    resume_path_for,
    save_checkpoint,
    seed_torch,
    time_split,
    write_json,
)

log = logging.getLogger(__name__)

FIELD_NAMES = stores.FIELDS
CHECKPOINT_KIND = "autoencoder"
LOSS_DEFINITION = (
    "L = L_recon + lambda * L_corr; L_recon = mean over ocean cells and both fields of the squared error of the "
    "standardised anomalies; L_corr = -(1/K) sum_k corr_batch(z_k, y_k) with latent k designated to observable k"
)


# ============================================================================================== the network
class ConvAutoencoder(nn.Module):
    """Strided-convolution encoder → linear latent; mirrored decoder with transposed convolutions.

    ``encode(x)`` takes standardised anomalies (B, n_fields, n_lat, n_lon) (NaN allowed: treated as missing, i.e. 0)
    and returns (B, latent_dim); ``decode(z)`` returns standardised anomalies with NaN over land.
    """

    def __init__(self, grid_shape: tuple[int, int], latent_dim: int, channels: list[int], n_fields: int = 2, ocean_mask=None):
        super().__init__()
        n_lat, n_lon = (int(s) for s in grid_shape)
        self.grid_shape = (n_lat, n_lon)
        self.latent_dim = int(latent_dim)
        self.channels = [int(c) for c in channels]
        self.n_fields = int(n_fields)
        factor = 2 ** len(self.channels)
        padded = (math.ceil(n_lat / factor) * factor, math.ceil(n_lon / factor) * factor)
        extra_lat, extra_lon = padded[0] - n_lat, padded[1] - n_lon
        # (left, right, top, bottom): centre the domain in the padded frame.
        self.padding = (extra_lon // 2, extra_lon - extra_lon // 2, extra_lat // 2, extra_lat - extra_lat // 2)
        self.bottleneck = (self.channels[-1], padded[0] // factor, padded[1] // factor)

        layers: list[nn.Module] = []
        c_in = self.n_fields
        for c in self.channels:
            layers += [nn.Conv2d(c_in, c, kernel_size=3, stride=2, padding=1), nn.GELU()]
            c_in = c
        self.encoder = nn.Sequential(*layers)
        flat = int(np.prod(self.bottleneck))
        self.to_latent = nn.Linear(flat, self.latent_dim)
        self.from_latent = nn.Linear(self.latent_dim, flat)
        layers = []
        rev = self.channels[::-1]
        for i, c in enumerate(rev):
            c_out = rev[i + 1] if i + 1 < len(rev) else self.channels[0]
            # kernel 4 = 2 × stride: every output cell gets the same number of kernel taps (no checkerboard).
            layers += [nn.ConvTranspose2d(c, c_out, kernel_size=4, stride=2, padding=1), nn.GELU()]
        layers.append(nn.Conv2d(self.channels[0], self.n_fields, kernel_size=3, padding=1))
        self.decoder = nn.Sequential(*layers)
        mask = torch.ones(self.grid_shape, dtype=torch.bool) if ocean_mask is None else torch.as_tensor(np.asarray(ocean_mask, bool))
        if tuple(mask.shape) != self.grid_shape:
            raise ValueError(f"ocean mask shape {tuple(mask.shape)} differs from the grid {self.grid_shape}")
        self.register_buffer("ocean_mask", mask)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.where(self.ocean_mask & torch.isfinite(x), x, torch.zeros((), dtype=x.dtype, device=x.device))
        h = self.encoder(F.pad(x, self.padding))
        return self.to_latent(h.flatten(1))

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's output on every cell (land included): what the loss sees."""
        h = F.gelu(self.from_latent(z)).view(-1, *self.bottleneck)
        out = self.decoder(h)
        left, _, top, _ = self.padding
        return out[..., top : top + self.grid_shape[0], left : left + self.grid_shape[1]]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode_raw(z).masked_fill(~self.ocean_mask, float("nan"))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode_raw(z), z


# ============================================================================================== losses and metrics
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


def linear_recoverability(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray, alpha: float = 0.1) -> float:
    """Mean over observables of the R² of a ridge regression y ≈ A z + c fitted on training data, scored on test data.

    This is what the filter's linear update needs (corrections of y reaching z through a linear cross-covariance),
    independent of which latent coordinates carry the information. ``alpha`` is relative to the per-sample Gram
    matrix of the standardised latents; held-out R² on the demo-like data was flat for alpha in 0.01–1 (0.001 began
    to overfit the 43-year reanalysis).
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


# ============================================================================================== data
@dataclass
class FieldRecord:
    """One source's fields on the target grid, ready for the autoencoder."""

    path: Path
    source_id: str
    standardised: np.ndarray  # (time, n_fields, n_lat, n_lon) float32; 0 where the source has no ocean data
    ocean: np.ndarray  # (n_lat, n_lon) bool: the source's ocean mask
    observables: np.ndarray  # (time, n_obs) float32, physical anomaly units (°C, m)
    field_std: dict[str, float]  # the scale that standardised the anomalies (the operational model's)
    time: xr.DataArray

    def __len__(self) -> int:
        return self.standardised.shape[0]


def check_store_grid(ds: xr.Dataset, grid: TargetGrid, path) -> None:
    for name, expected in (("lat", grid.lat), ("lon", grid.lon)):
        got = np.asarray(ds[name].values, float)
        if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-4):
            raise InputDataError(
                path,
                f"{name} ({got.size} values, {got.min() if got.size else 'n/a'}…{got.max() if got.size else 'n/a'}) is not the "
                f"configured target grid ({expected.size} values, {expected[0]}…{expected[-1]}); re-run ingestion with this grid",
            )


def read_observation_layout(path: str | Path) -> ObservationLayout:
    """The observable positions stored on the ``obs`` dimension of the pseudo-observation (or latent) store."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(path, "pseudo-observation store does not exist")
    try:
        ds = xr.open_zarr(path, consolidated=False, decode_times=False)
    except Exception as err:
        raise InputDataError(path, f"cannot open as a zarr store ({type(err).__name__}: {err})") from None
    missing = [c for c in ("obs_variable", "obs_lat_min", "obs_lat_max", "obs_lon_min", "obs_lon_max") if c not in ds.variables]
    if missing:
        raise InputDataError(path, f"lacks the observable coordinates {missing}")
    layout = ObservationLayout.from_dataset(ds)
    unknown = sorted(set(layout.variable) - set(FIELD_NAMES))
    if unknown:
        raise InputDataError(path, f"observables of variables {unknown} cannot be extracted from the fields {list(FIELD_NAMES)}")
    if layout.size == 0:
        raise InputDataError(path, "has no observables")
    return layout


def load_field_record(path: str | Path, *, grid: TargetGrid, layout: ObservationLayout, field_std: dict[str, float] | None = None) -> FieldRecord:
    """Read a source store: standardised anomalies (by ``field_std``, default the store's own) and observables y."""
    path = Path(path)
    ds = stores.open_store(path)
    if "member" in ds["sst"].dims:
        raise InputDataError(path, "has a member dimension; the autoencoder trains on single-realization sources")
    check_store_grid(ds, grid, path)
    if field_std is None:
        field_std = {f: float(ds[f"{f}_anomaly_std"]) for f in FIELD_NAMES}
    bad = {f: s for f, s in field_std.items() if not (np.isfinite(s) and s > 0)}
    if bad:
        raise InputDataError(path, f"anomaly std must be positive and finite, got {bad}")
    ocean = np.asarray(ds["ocean_mask"].values, bool)
    if not ocean.any():
        raise InputDataError(path, "ocean_mask has no ocean cell")
    anomalies = {f: stores.field_anomalies(ds, f).transpose("time", "lat", "lon").values.astype(np.float32) for f in FIELD_NAMES}
    standardised = np.stack([anomalies[f] / np.float32(field_std[f]) for f in FIELD_NAMES], axis=1)
    standardised = np.where(ocean & np.isfinite(standardised), standardised, np.float32(0)).astype(np.float32)
    try:
        observables = layout.extract(anomalies, grid).astype(np.float32)
    except ValueError as err:
        raise InputDataError(path, f"cannot extract the observables: {err}") from None
    if not np.isfinite(observables).all():
        raise InputDataError(path, "observables contain NaN: an observable cell has missing data at some time")
    return FieldRecord(path, str(ds.attrs.get("source_id", path.stem)), standardised, ocean, observables, dict(field_std), ds["time"].load())


# ============================================================================================== encode / decode helpers
@torch.no_grad()
def encode_array(model: ConvAutoencoder, fields: np.ndarray, *, batch_size: int = 256, device=None) -> np.ndarray:
    """z for standardised fields (n, n_fields, n_lat, n_lon) in batches; returns (n, latent_dim) float32."""
    device = device or next(model.parameters()).device
    out = np.empty((fields.shape[0], model.latent_dim), np.float32)
    for start in range(0, fields.shape[0], batch_size):
        batch = torch.as_tensor(fields[start : start + batch_size], device=device)
        out[start : start + batch.shape[0]] = model.encode(batch).cpu().numpy()
    return out


@torch.no_grad()
def decode_array(model: ConvAutoencoder, z: np.ndarray, *, batch_size: int = 256, device=None) -> np.ndarray:
    """Standardised fields (n, n_fields, n_lat, n_lon), NaN over land, for latents (n, latent_dim)."""
    device = device or next(model.parameters()).device
    out = np.empty((z.shape[0], model.n_fields, *model.grid_shape), np.float32)
    for start in range(0, z.shape[0], batch_size):
        batch = torch.as_tensor(np.asarray(z[start : start + batch_size], np.float32), device=device)
        out[start : start + batch.shape[0]] = model.decode(batch).cpu().numpy()
    return out


@torch.no_grad()
def evaluate(model: ConvAutoencoder, fields: np.ndarray, observables: np.ndarray, loss_mask: np.ndarray, *, batch_size: int, device) -> tuple[dict, np.ndarray]:
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
        "explained_variance_by_field": {f: float(1.0 - se_sum[i] / var_sum[i]) if var_sum[i] > 0 else None for i, f in enumerate(FIELD_NAMES)},
        **stats,
    }, z


def _with_physical_errors(metrics: dict, field_std: dict[str, float]) -> dict:
    units = {"sst": "degC", "thermocline_depth": "m"}
    metrics["recon_rmse_physical"] = {
        f: {"value": math.sqrt(metrics["recon_mse_by_field"][f]) * field_std[f], "units": units[f]} for f in FIELD_NAMES
    }
    return metrics


# ============================================================================================== loading
def load_autoencoder(path: str | Path, device="cpu") -> ConvAutoencoder:
    """The trained autoencoder in eval mode, gradients off; metadata (field_std, grid, observables, metrics) attached.

    ``ae.encode(x_std)`` / ``ae.decode(z)`` as documented in docs/architecture.md.
    """
    payload = load_checkpoint(path, kind=CHECKPOINT_KIND, device=device)
    meta = payload["metadata"]
    try:
        model = ConvAutoencoder(tuple(meta["grid_shape"]), meta["latent_dim"], meta["channels"], meta["n_fields"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError) as err:
        raise InputDataError(path, f"autoencoder checkpoint does not match its network ({err})") from None
    model.to(device).eval().requires_grad_(False)
    model.metadata = meta
    model.field_names = tuple(meta["field_names"])
    model.field_std = {k: float(v) for k, v in meta["field_std"].items()}
    model.layout = ObservationLayout(**{k: tuple(v) for k, v in meta["observables"].items()})
    model.grid = TargetGrid(**meta["grid"])
    return model


def _layout_dict(layout: ObservationLayout) -> dict:
    return {k: list(getattr(layout, k)) for k in ("variable", "lat_min", "lat_max", "lon_min", "lon_max")}


# ============================================================================================== training
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

    op = load_field_record(operational_store, grid=target_grid, layout=layout)
    rean = load_field_record(reanalysis_store, grid=target_grid, layout=layout, field_std=op.field_std)
    op_split = time_split(len(op), settings.validation_fraction, min_train=settings.batch_size, min_validation=2, what=str(op.path))
    rean_split = time_split(len(rean), settings.validation_fraction, min_train=2, min_validation=2, what=str(rean.path))
    # Loss masks: the autoencoder's domain is the operational ocean; a reanalysis sample also lacks its own land cells.
    op_mask = op.ocean
    rean_mask = op.ocean & rean.ocean
    log.info(
        "autoencoder for %s: %d training / %d held-out months; reanalysis %s: %d / %d; %d observables; device %s",
        op.source_id, op_split.n_train, op_split.n_validation, rean.source_id, rean_split.n_train, rean_split.n_validation,
        layout.size, device,
    )

    schedule = reanalysis_probability_schedule(cur, settings.epochs) if cur.apply_to_autoencoder else Schedule(0.0)
    sampler = CurriculumSampler(schedule, op_split.n_train, rean_split.n_train, op_split.n_train, settings.seed)
    val_weight_rean = cur.p_max if cur.apply_to_autoencoder else 0.0

    seed_torch(settings.seed)
    model = ConvAutoencoder(target_grid.shape, settings.latent_dim, settings.channels, len(FIELD_NAMES), op.ocean).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    stopper = EarlyStopping(settings.patience)
    history: list[dict] = []
    best_state = copy.deepcopy(model.state_dict())
    start_epoch = 0

    train_fields = {
        OPERATIONAL: torch.as_tensor(op.standardised[op_split.train]),
        REANALYSIS: torch.as_tensor(rean.standardised[rean_split.train]),
    }
    train_obs = {OPERATIONAL: torch.as_tensor(op.observables[op_split.train]), REANALYSIS: torch.as_tensor(rean.observables[rean_split.train])}
    masks = torch.stack([torch.as_tensor(op_mask), torch.as_tensor(rean_mask)]).to(device=device, dtype=torch.float32)

    resume = ResumeState(
        resume_path_for(checkpoint_out),
        fingerprint(
            {"autoencoder": settings.model_dump(), "curriculum": cur.model_dump(), "grid": asdict(target_grid), "device": device.type},
            [op.standardised, rean.standardised, op.observables],
        ),
    )
    saved = resume.load()
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        best_state = saved["best_model"]
        stopper.load_state_dict(saved["early_stopping"])
        history = list(saved["history"])
        start_epoch = int(saved["epoch"]) + 1

    for epoch in range(start_epoch, settings.epochs):
        if stopper.should_stop:
            break
        epoch_timer = Timer()
        model.train()
        seed_torch(epoch_seed(settings.seed, epoch))
        draw = sampler.draw(epoch)
        n_batches = len(draw.source) // settings.batch_size  # full batches only: L_corr is a batch correlation
        sums = {"recon": 0.0, "corr": 0.0}
        z_seen, y_seen = [], []
        for b in progress(range(n_batches), total=n_batches, desc=f"autoencoder epoch {epoch + 1}/{settings.epochs}", logger=log):
            sl = slice(b * settings.batch_size, (b + 1) * settings.batch_size)
            source = torch.as_tensor(draw.source[sl], dtype=torch.long)
            index = torch.as_tensor(draw.index[sl])
            x = torch.empty((len(index), *train_fields[OPERATIONAL].shape[1:]))
            y = torch.empty((len(index), layout.size))
            for s in (OPERATIONAL, REANALYSIS):
                sel = source == s
                if sel.any():
                    x[sel] = train_fields[s][index[sel]]
                    y[sel] = train_obs[s][index[sel]]
            x, y = x.to(device), y.to(device)
            recon, z = model(x)
            recon_loss = masked_mse(recon, x, masks[source.to(device)][:, None])
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
        record = {
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
        for name, rec, split, mask in (
            ("heldout_operational", op, op_split, op_mask),
            ("heldout_reanalysis", rean, rean_split, rean_mask),
        ):
            metrics, _ = evaluate(
                model, rec.standardised[split.validation], rec.observables[split.validation], mask,
                batch_size=settings.encode_batch_size, device=device,
            )
            metrics["total_loss"] = metrics["recon_loss"] + settings.lambda_corr * metrics["corr_loss"]
            record[name] = {k: metrics[k] for k in ("recon_loss", "corr_loss", "cross_cov_norm", "total_loss")}
        score = (1 - val_weight_rean) * record["heldout_operational"]["total_loss"] + val_weight_rean * record["heldout_reanalysis"]["total_loss"]
        record["early_stopping_score"] = score
        record["seconds"] = epoch_timer.seconds
        if stopper.update(score, epoch):
            best_state = copy.deepcopy(model.state_dict())
        history.append(record)
        log.info(
            "epoch %d: train L_recon %.4g L_corr %.3f | held-out L_recon %.4g L_corr %.3f ||C|| %.3g | reanalysis L_recon %.4g | p=%.2f | %.1f s",
            epoch + 1, record["train"]["recon_loss"], record["train"]["corr_loss"], record["heldout_operational"]["recon_loss"],
            record["heldout_operational"]["corr_loss"], record["heldout_operational"]["cross_cov_norm"],
            record["heldout_reanalysis"]["recon_loss"], draw.p_reanalysis, record["seconds"],
        )
        resume.save(
            {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "best_model": best_state,
                "early_stopping": stopper.state_dict(),
                "history": history,
            }
        )

    model.load_state_dict(best_state)
    model.eval()
    final = {}
    latents = {}
    for name, rec, sl, mask in (
        ("operational_train", op, op_split.train, op_mask),
        ("operational_heldout", op, op_split.validation, op_mask),
        ("reanalysis_train", rean, rean_split.train, rean_mask),
        ("reanalysis_heldout", rean, rean_split.validation, rean_mask),
        ("reanalysis_all", rean, slice(None), rean_mask),
    ):
        metrics, z = evaluate(model, rec.standardised[sl], rec.observables[sl], mask, batch_size=settings.encode_batch_size, device=device)
        final[name] = _with_physical_errors(metrics, op.field_std)
        latents[name] = (z, rec.observables[sl])
    for name in final:
        # Fitted on the same source's training months: in-sample for *_train, held-out otherwise.
        z_fit, y_fit = latents["operational_train" if name.startswith("operational") else "reanalysis_train"]
        z_eval, y_eval = latents[name]
        final[name]["y_from_z_r2"] = linear_recoverability(z_fit, y_fit, z_eval, y_eval)

    seconds = timer.seconds
    epochs_run = len(history)
    metadata = {
        "source_id": op.source_id,
        "grid_shape": list(target_grid.shape),
        "grid": {k: float(v) for k, v in asdict(target_grid).items()},
        "latent_dim": settings.latent_dim,
        "channels": settings.channels,
        "n_fields": len(FIELD_NAMES),
        "field_names": list(FIELD_NAMES),
        "field_std": op.field_std,
        "observables": _layout_dict(layout),
        "loss_definition": LOSS_DEFINITION,
        "lambda_corr": settings.lambda_corr,
        "curriculum_applied": cur.apply_to_autoencoder,
        "best_epoch": stopper.best_epoch,
        "heldout_operational": final["operational_heldout"],
    }
    save_checkpoint(checkpoint_out, kind=CHECKPOINT_KIND, state_dict=model.state_dict(), metadata=metadata)
    record = {
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
            "operational": {"path": str(op.path), "months": len(op), "train_months": op_split.n_train, "heldout_months": op_split.n_validation},
            "reanalysis": {"path": str(rean.path), "months": len(rean), "train_months": rean_split.n_train, "heldout_months": rean_split.n_validation},
            "n_observables": layout.size,
            "field_std": op.field_std,
        },
        "history": history,
        "best_epoch": stopper.best_epoch,
        "epochs_run": epochs_run,
        "stopped_early": epochs_run < settings.epochs,
        "final": final,
        "timing": {"seconds": seconds, "epochs_per_second": epochs_run / seconds if seconds > 0 else None, "device": device.type},
    }
    write_json(metrics_out, record)
    _plot_autoencoder_curves(curves_out, record)
    resume.clear()
    log.info(
        "autoencoder for %s: best epoch %d; held-out L_recon %.4g (SST RMSE %.3f degC, thermocline RMSE %.2f m), L_corr %.3f, y-from-z R2 %.3f; %.0f s",
        op.source_id, stopper.best_epoch + 1, final["operational_heldout"]["recon_loss"],
        final["operational_heldout"]["recon_rmse_physical"]["sst"]["value"],
        final["operational_heldout"]["recon_rmse_physical"]["thermocline_depth"]["value"],
        final["operational_heldout"]["corr_loss"], final["operational_heldout"]["y_from_z_r2"], seconds,
    )
    return record


def _plot_autoencoder_curves(path, record: dict) -> None:
    h = record["history"]
    epochs = [r["epoch"] + 1 for r in h]

    def series(key):
        return {
            "train (drawn samples)": (epochs, [r["train"][key] for r in h]),
            "held-out operational": (epochs, [r["heldout_operational"][key] for r in h]),
            "held-out reanalysis": (epochs, [r["heldout_reanalysis"][key] for r in h]),
        }

    panels = [
        {"title": "L_recon (standardised, ocean only)", "ylabel": "MSE", "series": series("recon_loss"), "logy": True},
        {"title": "L_corr (designated latents)", "ylabel": "−mean corr", "series": series("corr_loss")},
        {"title": "cross-covariance norm ‖C‖", "ylabel": "‖cov(z, y/σ_y)‖_F", "series": series("cross_cov_norm")},
        {"title": "curriculum", "ylabel": "probability", "series": {"p_e (reanalysis)": (epochs, [r["p_reanalysis"] for r in h]), "share drawn": (epochs, [r["reanalysis_share"] for r in h])}},
    ]
    best = record["best_epoch"] + 1
    for p in panels[:3]:
        p["title"] += f" (best epoch {best})"
    plot_panels(path, panels, title=f"Autoencoder {record['model']}: λ = {record['loss']['lambda_corr']}")
