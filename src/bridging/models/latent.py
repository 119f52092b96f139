"""Latent stores: the operational model's and the reanalysis' records encoded by the operational model's autoencoder.

``RUN/latent/<model>/{operational,reanalysis}.zarr`` hold ``z`` (time, latent) = E(X) of the standardised anomaly
fields and ``y`` (time, obs) = the observables in physical anomaly units (°C, m), extracted from the same fields at
the pseudo-observation positions (same ``obs`` coordinates as the pseudo-observations). The augmented state the
forecast model and the filter work with is x = [z; y]. Both records are standardised with the *operational*
model's anomaly std (the autoencoder's fixed input scale; see :mod:`bridging.models.field_records`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import xarray as xr

from .. import cf
from ..atomic import write_zarr_atomic
from ..errors import ConfigError, InputDataError
from ..grid import TargetGrid
from ..observables import OBS_UNITS, OBS_UNITS_COMMENT
from ..settings import AutoencoderSection, config_hash
from ..stores import open_zarr_checked, provenance
from .conv_autoencoder import encode_array, load_autoencoder
from .field_records import load_field_record, read_observation_layout
from .training import Timer, prepare_torch

log = logging.getLogger(__name__)


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def open_latent_store(path: str | Path) -> xr.Dataset:
    """Open a latent store and check its form; errors name the path."""
    ds = open_zarr_checked(path, "latent store", ("z", "y"))
    for name, dims in (("z", ("time", "latent")), ("y", ("time", "obs"))):
        if set(ds[name].dims) != set(dims):
            raise InputDataError(path, f"{name} has dims {ds[name].dims}, expected {dims}")
    return ds


def latent_dataset(z: np.ndarray, y: np.ndarray, time: xr.DataArray, layout, attrs: dict) -> xr.Dataset:
    ds = xr.Dataset(
        {
            "z": (
                ("time", "latent"),
                z.astype(np.float32),
                {
                    "long_name": "latent state E(X) of the standardised anomaly fields",
                    "units": "1",
                    "comment": "latent k < n_obs is the coordinate designated to observable k by the correlation loss",
                },
            ),
            "y": (
                ("time", "obs"),
                y.astype(np.float32),
                {
                    "long_name": "observables at the pseudo-observation positions (anomalies)",
                    "comment": OBS_UNITS_COMMENT,
                    "units_by_variable": json.dumps({v: OBS_UNITS[v] for v in sorted(set(layout.variable))}),
                },
            ),
        },
        coords={"time": time, "latent": np.arange(z.shape[1]), **layout.coords()},
        attrs=attrs,
    )
    return ds


def encode_sources(
    autoencoder_checkpoint: str | Path,
    operational_store: str | Path,
    reanalysis_store: str | Path,
    pseudo_obs: str | Path,
    operational_out: str | Path,
    reanalysis_out: str | Path,
    *,
    autoencoder,
    compute,
    grid,
) -> dict[str, Path]:
    """Encode both records with the trained autoencoder and write the two latent stores (rule ``encode``)."""
    settings = AutoencoderSection.model_validate(autoencoder)
    device = prepare_torch(compute)
    ae = load_autoencoder(autoencoder_checkpoint, device)
    target_grid = TargetGrid.from_config(grid)
    if target_grid != ae.grid:
        raise ConfigError(
            f"grid {target_grid} differs from the grid the autoencoder {autoencoder_checkpoint} was trained on ({ae.grid}); retrain it"
        )
    layout = read_observation_layout(pseudo_obs)
    if layout != ae.layout:
        raise InputDataError(
            pseudo_obs,
            f"its observables differ from those the autoencoder {autoencoder_checkpoint} was trained with; retrain it",
        )
    digest = file_digest(autoencoder_checkpoint)
    settings_hash = config_hash({"autoencoder": settings.model_dump(mode="json"), "grid": repr(target_grid)})
    written = {}
    for kind, store, out in (
        ("operational", operational_store, operational_out),
        ("reanalysis", reanalysis_store, reanalysis_out),
    ):
        timer = Timer()
        record = load_field_record(store, grid=target_grid, layout=layout, field_std=ae.field_std)
        z = encode_array(ae, record.standardised, batch_size=settings.encode_batch_size, device=device)
        attrs = {
            "source_id": record.source_id,
            "source_kind": kind,
            "model": ae.metadata["source_id"],
            "autoencoder": str(autoencoder_checkpoint),
            "autoencoder_sha256": digest,
            "field_std": json.dumps(ae.field_std),
            "standardisation": "anomalies against the source's own monthly climatology / the operational model's anomaly std",
            "provenance": provenance([store, pseudo_obs, autoencoder_checkpoint], settings_hash),
            "config_hash": settings_hash,
            "title": f"{record.source_id} encoded by the autoencoder of {ae.metadata['source_id']}: latent states z "
            "and observables y",
        }
        ds = cf.complete(latent_dataset(z, record.observables, record.time, layout, attrs))
        written[kind] = write_zarr_atomic(ds, out, encoding=cf.time_encodings(ds))
        log.info("encoded %s (%d months) into %s in %.1f s", record.source_id, len(record), out, timer.seconds)
    return written
