"""Decode the filter's latent ensemble into full SST and thermocline-depth fields: the bridging model (and its control).

The bridging model's realizations are individual analysis members, not the ensemble mean: the mean damps every mode
the observations do not constrain, a member keeps the operational model's own variability (docs/method.md,
Filter: "Realizations are members"). The decoded ensemble mean, D(z̄), is stored beside them as a summary
(``<field>_ensemble_mean``).

Fields are the decoder's standardised anomalies × the operational store's ``<field>_anomaly_std`` + its monthly
climatology, NaN where the operational store has land, written as a store in the project's form with a ``member``
dimension (``stores.build_store``, the operational model's climatology and anomaly std). Decoding runs one time chunk
at a time inside the store write, so memory stays at one chunk whatever the record length.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as dsa
import numpy as np
import torch
import xarray as xr

from ..errors import ConfigError, InputDataError
from ..models.conv_autoencoder import load_autoencoder
from ..runtime import resolve_device
from ..settings import DecodeSection, config_hash
from ..stores import FIELD_ATTRS, FIELDS, build_store, open_store, open_zarr_checked, provenance, write_store
from ..timeaxis import year_month

log = logging.getLogger(__name__)

SOURCE_KINDS = {"assimilation": "bridging", "free_run": "free_run"}


def decode_filter_store(
    output: str | Path,
    *,
    assimilation: str | Path,
    autoencoder: str | Path,
    operational_store: str | Path,
    decode: DecodeSection | Mapping,
    model_name: str,
    device: str = "auto",
    experiment: int = 0,
) -> Path:
    """Decode ``decode.n_realizations`` members and the ensemble mean of one experiment into a source store."""
    decode = DecodeSection.model_validate(decode)
    dev = resolve_device(device)
    fs = _open_filter_store(assimilation, experiment, decode.n_realizations)
    target = OperationalFields.read(operational_store)
    ae = load_autoencoder(autoencoder, dev)
    if isinstance(ae, torch.nn.Module):
        ae.eval()
    R, n_latent = decode.n_realizations, int(fs.attrs["n_latent"])
    decoder = ChunkDecoder(
        ae,
        target,
        members=fs["members"].isel(experiment=experiment, member=slice(0, R))[..., :n_latent],  # (time, member, latent)
        mean=fs["ensemble_mean"].isel(experiment=experiment)[..., :n_latent],  # (time, latent)
        months=year_month(fs["time"])[1],
        batch_size=decode.batch_size,
        time_chunk=decode.time_chunk,
        device=dev,
        autoencoder_path=autoencoder,
    )
    source_kind = SOURCE_KINDS[str(fs.attrs["kind"])]
    ds = build_store(
        decoder.lazy_fields(fs["time"]),
        source_id=f"{source_kind}_{model_name}",
        source_kind=source_kind,
        climatology_period=_climatology_period(target.store),
        climatology={f: target.store[f"{f}_climatology"] for f in FIELDS},
        anomaly_std={f: float(target.store[f"{f}_anomaly_std"]) for f in FIELDS},
        climatology_source=f"the operational model {model_name}'s store {Path(operational_store).name} (its years "
        f"{target.store.attrs.get('climatology_period', '?')}); this store's own time axis is the pseudo-observation "
        "record's model years",
        provenance_json=provenance(
            [assimilation, autoencoder, operational_store],
            config_hash({"decode": decode.model_dump(mode="json"), "experiment": experiment}),
            stage="decode",
            filter_config_hash=json.loads(fs.attrs.get("provenance", "{}")).get("config_hash"),
            decode=decode.model_dump(mode="json"),
            experiment=experiment,
        ),
        extra_attrs={
            "operational_model": model_name,
            "realizations": f"analysis members 0–{R - 1} of experiment {experiment} of {Path(assimilation).name}",
            "filter_kind": str(fs.attrs["kind"]),
        },
    )
    # Land is where the operational model has land, by construction; no need to scan the decoded fields for it.
    ds["ocean_mask"] = target.store["ocean_mask"].astype("int8")
    for name, field in decoder.lazy_ensemble_means(fs["time"]).items():
        ds[name] = field
    # One decode per time chunk, shared by every variable, one chunk in memory at a time, torch on this thread.
    with dask.config.set(scheduler="synchronous"):
        return write_store(ds, output, time_chunk=decoder.chunk)


# --------------------------------------------------------------------------------------------------------------------
# Inputs


def _open_filter_store(path, experiment: int, n_realizations: int) -> xr.Dataset:
    """The filter store, checked: its kind, the experiment and enough members."""
    ds = open_zarr_checked(path, "assimilation store", ("members", "ensemble_mean"))
    if "n_latent" not in ds.attrs:
        raise InputDataError(path, "not an assimilation store: missing attribute n_latent")
    kind = str(ds.attrs.get("kind", ""))
    if kind not in SOURCE_KINDS:
        raise InputDataError(path, f"attribute kind = {kind!r}, expected one of {sorted(SOURCE_KINDS)}")
    if not 0 <= experiment < ds.sizes["experiment"]:
        raise ConfigError(f"experiment {experiment} does not exist in {path} ({ds.sizes['experiment']} experiments)")
    if n_realizations > ds.sizes["member"]:
        raise ConfigError(
            f"decode.n_realizations = {n_realizations} exceeds the {ds.sizes['member']} members in {path}"
        )
    return ds


@dataclass
class OperationalFields:
    """What decoded anomalies become full fields with: the operational store's ocean, anomaly std and climatology."""

    path: Path
    store: xr.Dataset
    ocean: np.ndarray  # (lat, lon) bool
    std: np.ndarray  # (F,) float32
    climatology: np.ndarray  # (F, 12, lat, lon) float32

    @classmethod
    def read(cls, path) -> OperationalFields:
        op = open_store(path)
        std = np.array([float(op[f"{f}_anomaly_std"]) for f in FIELDS], dtype=np.float32)
        clim = np.stack([op[f"{f}_climatology"].transpose("month", "lat", "lon").values for f in FIELDS]).astype(
            np.float32
        )
        if clim.shape[1] != 12:
            raise InputDataError(path, f"climatology has {clim.shape[1]} months, expected 12")
        return cls(Path(path), op, np.asarray(op["ocean_mask"].values).astype(bool), std, clim)

    @property
    def shape(self) -> tuple[int, int]:
        return self.ocean.shape


def _climatology_period(op: xr.Dataset) -> tuple[int, int] | None:
    text = str(op.attrs.get("climatology_period", ""))
    try:
        first, last = (int(v) for v in text.split("-"))
    except ValueError:
        return None
    return first, last


# --------------------------------------------------------------------------------------------------------------------
# Decoding


def model_dtype(model, default=torch.float32) -> torch.dtype:
    """The floating dtype of a module's parameters or buffers (what its inputs must be)."""
    if isinstance(model, torch.nn.Module):
        for t in (*model.parameters(), *model.buffers()):
            if t.is_floating_point():
                return t.dtype
    return default


def decode_latent(ae, z: np.ndarray, *, batch_size: int, device) -> np.ndarray:
    """Decoder output (K, n_fields, n_lat, n_lon) standardised anomalies for latent vectors z (K, n_latent)."""
    dtype = model_dtype(ae)
    out = []
    with torch.inference_mode():
        for i in range(0, z.shape[0], batch_size):
            zt = torch.as_tensor(z[i : i + batch_size], dtype=dtype, device=device)
            out.append(ae.decode(zt).to("cpu", torch.float32).numpy())
    if not out:
        raise ValueError("nothing to decode")
    return np.concatenate(out)


class ChunkDecoder:
    """Full fields of the realizations and of the ensemble mean, decoded one time chunk at a time inside the store
    write: every variable of a chunk comes from one (delayed) decode."""

    def __init__(
        self,
        ae,
        target: OperationalFields,
        *,
        members: xr.DataArray,
        mean: xr.DataArray,
        months: np.ndarray,
        batch_size: int,
        time_chunk: int,
        device,
        autoencoder_path,
    ):
        self.ae, self.target, self.members, self.mean, self.months = ae, target, members, mean, months
        self.batch_size, self.device, self.autoencoder_path = batch_size, device, autoencoder_path
        self.n_time, self.n_members, self.n_latent = members.sizes["time"], members.sizes["member"], mean.shape[-1]
        self.chunk = min(time_chunk, self.n_time)
        self.blocks = [
            dask.delayed(self.chunk_fields, pure=False)(t0, min(t0 + self.chunk, self.n_time))
            for t0 in range(0, self.n_time, self.chunk)
        ]

    def full_fields(self, z: np.ndarray, month_idx: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
        """(F, *lead, lat, lon) full fields from latent (prod(lead), n_latent) rows; lead ends with time."""
        (n_lat, n_lon), F = self.target.shape, len(FIELDS)
        anomalies = decode_latent(self.ae, z, batch_size=self.batch_size, device=self.device)
        if anomalies.shape[1:] != (F, n_lat, n_lon):
            raise InputDataError(
                self.autoencoder_path, f"decoder output {anomalies.shape[1:]} does not match ({F}, {n_lat}, {n_lon})"
            )
        anomalies = anomalies.reshape(*lead, F, n_lat, n_lon)
        anomalies = np.moveaxis(anomalies, -3, 0)  # (F, *lead, lat, lon)
        climatology = self.target.climatology[:, month_idx - 1].reshape(
            F, *([1] * (len(lead) - 1)), len(month_idx), n_lat, n_lon
        )
        fields = anomalies * self.target.std.reshape(-1, *([1] * (len(lead) + 2))) + climatology
        return np.where(self.target.ocean, fields, np.float32(np.nan)).astype(np.float32)

    def chunk_fields(self, t0: int, t1: int) -> dict[str, np.ndarray]:
        z_members = np.asarray(
            self.members.isel(time=slice(t0, t1)).transpose("member", "time", ...).values
        )  # (R, t, n_l)
        z_mean = np.asarray(self.mean.isel(time=slice(t0, t1)).values)  # (t, n_l)
        mi = self.months[t0:t1]
        realizations = self.full_fields(z_members.reshape(-1, self.n_latent), mi, (self.n_members, t1 - t0))
        summary = self.full_fields(z_mean, mi, (t1 - t0,))
        log.info("decoded months %d–%d", t0, t1 - 1)
        out = {}
        for c, f in enumerate(FIELDS):
            out[f] = realizations[c]
            out[f"{f}_ensemble_mean"] = summary[c]
        return out

    def stacked(self, name: str, member_dim: bool) -> dsa.Array:
        n_lat, n_lon = self.target.shape
        parts = []
        for i, blk in enumerate(self.blocks):
            nt = min(self.chunk, self.n_time - i * self.chunk)
            shape = (self.n_members, nt, n_lat, n_lon) if member_dim else (nt, n_lat, n_lon)
            parts.append(dsa.from_delayed(dask.delayed(lambda d, key=name: d[key])(blk), shape=shape, dtype=np.float32))
        return dsa.concatenate(parts, axis=1 if member_dim else 0)

    def lazy_fields(self, time: xr.DataArray) -> dict[str, xr.DataArray]:
        """The realizations of each field on (member, time, lat, lon)."""
        coords = {
            "member": np.arange(self.n_members),
            "time": time,
            "lat": self.target.store["lat"].values,
            "lon": self.target.store["lon"].values,
        }
        return {
            f: xr.DataArray(self.stacked(f, True), dims=("member", "time", "lat", "lon"), coords=coords) for f in FIELDS
        }

    def lazy_ensemble_means(self, time: xr.DataArray) -> dict[str, xr.DataArray]:
        """``<field>_ensemble_mean`` on (time, lat, lon): the decoded ensemble mean D(z̄), a summary."""
        coords = {"time": time, "lat": self.target.store["lat"].values, "lon": self.target.store["lon"].values}
        return {
            f"{f}_ensemble_mean": xr.DataArray(
                self.stacked(f"{f}_ensemble_mean", False),
                dims=("time", "lat", "lon"),
                coords=coords,
                attrs={
                    **FIELD_ATTRS[f],
                    "long_name": f"{FIELD_ATTRS[f]['long_name']}, decoded ensemble mean D(mean z) (a summary, not a realization)",
                },
            )
            for f in FIELDS
        }
