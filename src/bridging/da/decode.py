"""Decode the filter's latent ensemble into full SST and thermocline-depth fields: the bridging model (and its control).

The bridging model's realizations are individual analysis members, not the ensemble mean: the mean damps every mode
the observations do not constrain (the prototype's mean kept ~42 % of the off-equatorial variability that ENSO does not
explain, a member 90–96 %). The decoded ensemble mean, D(z̄), is stored beside them as a summary
(``<field>_ensemble_mean``).

Fields are the decoder's standardised anomalies × the operational store's ``<field>_anomaly_std`` + its monthly
climatology, NaN where the operational store has land, written as a store in the project's form with a ``member``
dimension (``stores.build_store``, the operational model's climatology and anomaly std). Decoding runs one time chunk
at a time inside the store write, so memory stays at one chunk whatever the record length.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import xarray as xr

from ..errors import ConfigError, InputDataError
from ..settings import DecodeSection
from ..stores import FIELD_ATTRS, FIELDS, build_store, open_store, open_zarr_checked, provenance, write_store
from ..timeaxis import year_month

log = logging.getLogger(__name__)

SOURCE_KINDS = {"assimilation": "bridging", "free_run": "free_run"}


def load_autoencoder_model(path, device):
    from ..models.autoencoder import load_autoencoder

    return load_autoencoder(path, device)


def _open_filter_store(path) -> xr.Dataset:
    ds = open_zarr_checked(path, "assimilation store", ("members", "ensemble_mean"))
    if "n_latent" not in ds.attrs:
        raise InputDataError(path, "not an assimilation store: missing attribute n_latent")
    return ds


def _climatology_period(op: xr.Dataset) -> tuple[int, int] | None:
    text = str(op.attrs.get("climatology_period", ""))
    try:
        first, last = (int(v) for v in text.split("-"))
    except ValueError:
        return None
    return first, last


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
    import dask
    import dask.array as dsa

    from ..runtime import resolve_device

    decode = DecodeSection.model_validate(decode)
    dev = resolve_device(device)
    fs = _open_filter_store(assimilation)
    kind = str(fs.attrs.get("kind", ""))
    if kind not in SOURCE_KINDS:
        raise InputDataError(assimilation, f"attribute kind = {kind!r}, expected one of {sorted(SOURCE_KINDS)}")
    source_kind = SOURCE_KINDS[kind]
    if not 0 <= experiment < fs.sizes["experiment"]:
        raise ConfigError(f"experiment {experiment} does not exist in {assimilation} ({fs.sizes['experiment']} experiments)")
    n_latent = int(fs.attrs["n_latent"])
    n_members = fs.sizes["member"]
    R = decode.n_realizations
    if R > n_members:
        raise ConfigError(f"decode.n_realizations = {R} exceeds the {n_members} members in {assimilation}")
    op = open_store(operational_store)
    ocean = np.asarray(op["ocean_mask"].values).astype(bool)
    lat, lon = op["lat"].values, op["lon"].values
    n_lat, n_lon = ocean.shape
    std = np.array([float(op[f"{f}_anomaly_std"]) for f in FIELDS], dtype=np.float32)
    clim = np.stack([op[f"{f}_climatology"].transpose("month", "lat", "lon").values for f in FIELDS]).astype(np.float32)
    if clim.shape[1] != 12:
        raise InputDataError(operational_store, f"climatology has {clim.shape[1]} months, expected 12")

    ae = load_autoencoder_model(autoencoder, dev)
    if isinstance(ae, torch.nn.Module):
        ae.eval()
    members = fs["members"].isel(experiment=experiment, member=slice(0, R))[..., :n_latent]  # (time, member, latent)
    mean = fs["ensemble_mean"].isel(experiment=experiment)[..., :n_latent]  # (time, latent)
    time = fs["time"]
    _, months = year_month(time)
    T = time.size
    chunk = min(decode.time_chunk, T)

    def full_fields(z: np.ndarray, month_idx: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
        """(F, *lead, lat, lon) full fields from latent (prod(lead), n_latent) rows; lead ends with time."""
        anomalies = decode_latent(ae, z, batch_size=decode.batch_size, device=dev)
        if anomalies.shape[1:] != (len(FIELDS), n_lat, n_lon):
            raise InputDataError(autoencoder, f"decoder output {anomalies.shape[1:]} does not match ({len(FIELDS)}, {n_lat}, {n_lon})")
        anomalies = anomalies.reshape(*lead, len(FIELDS), n_lat, n_lon)
        anomalies = np.moveaxis(anomalies, -3, 0)  # (F, *lead, lat, lon)
        climatology = clim[:, month_idx - 1].reshape(len(FIELDS), *([1] * (len(lead) - 1)), len(month_idx), n_lat, n_lon)
        fields = anomalies * std.reshape(-1, *([1] * (len(lead) + 2))) + climatology
        return np.where(ocean, fields, np.float32(np.nan)).astype(np.float32)

    def chunk_fields(t0: int, t1: int) -> dict[str, np.ndarray]:
        z_members = np.asarray(members.isel(time=slice(t0, t1)).transpose("member", "time", ...).values)  # (R, t, n_l)
        z_mean = np.asarray(mean.isel(time=slice(t0, t1)).values)  # (t, n_l)
        mi = months[t0:t1]
        realizations = full_fields(z_members.reshape(-1, n_latent), mi, (R, t1 - t0))
        summary = full_fields(z_mean, mi, (t1 - t0,))
        log.info("decoded months %d–%d", t0, t1 - 1)
        out = {}
        for c, f in enumerate(FIELDS):
            out[f] = realizations[c]
            out[f"{f}_ensemble_mean"] = summary[c]
        return out

    blocks = [dask.delayed(chunk_fields, pure=False)(t0, min(t0 + chunk, T)) for t0 in range(0, T, chunk)]

    def stacked(name: str, member_dim: bool) -> dsa.Array:
        parts = []
        for i, blk in enumerate(blocks):
            nt = min(chunk, T - i * chunk)
            shape = (R, nt, n_lat, n_lon) if member_dim else (nt, n_lat, n_lon)
            parts.append(dsa.from_delayed(dask.delayed(lambda d, key=name: d[key])(blk), shape=shape, dtype=np.float32))
        return dsa.concatenate(parts, axis=1 if member_dim else 0)

    coords = {"member": np.arange(R), "time": time, "lat": lat, "lon": lon}
    fields = {f: xr.DataArray(stacked(f, True), dims=("member", "time", "lat", "lon"), coords=coords) for f in FIELDS}
    prov = provenance(
        [assimilation, autoencoder, operational_store],
        None,
        stage="decode",
        decode=decode.model_dump(mode="json"),
        experiment=experiment,
    )
    ds = build_store(
        fields,
        source_id=f"{source_kind}_{model_name}",
        source_kind=source_kind,
        climatology_period=_climatology_period(op),
        climatology={f: op[f"{f}_climatology"] for f in FIELDS},
        anomaly_std={f: float(op[f"{f}_anomaly_std"]) for f in FIELDS},
        provenance_json=prov,
        extra_attrs={
            "operational_model": model_name,
            "realizations": f"analysis members 0–{R - 1} of experiment {experiment} of {Path(assimilation).name}",
            "filter_kind": kind,
        },
    )
    # Land is where the operational model has land, by construction; no need to scan the decoded fields for it.
    ds["ocean_mask"] = op["ocean_mask"].astype("int8")
    for f in FIELDS:
        ds[f"{f}_ensemble_mean"] = xr.DataArray(
            stacked(f"{f}_ensemble_mean", False),
            dims=("time", "lat", "lon"),
            coords={"time": time, "lat": lat, "lon": lon},
            attrs={**FIELD_ATTRS[f], "long_name": f"{FIELD_ATTRS[f]['long_name']}, decoded ensemble mean D(mean z) (a summary, not a realization)"},
        )
    # One decode per time chunk, shared by every variable, one chunk in memory at a time, torch on this thread.
    with dask.config.set(scheduler="synchronous"):
        return write_store(ds, output, time_chunk=chunk)
