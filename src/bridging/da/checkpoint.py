"""The resumable output of a filter run: the output store built block by block in a hidden sidecar folder beside
the output, with the filter state saved after each block.

Every ``da.checkpoint_months`` months the finished block is written into the partial store and the filter state
(members, recurrent state, RNG state, month, adaptive noise) is saved beside it (:mod:`bridging.resume`). Re-running
after a kill resumes from there when the inputs, settings and code are unchanged (bit-identical to an uninterrupted
run on the same device); the final store is moved into place only at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import dask.array as dsa
import numpy as np
import torch
import xarray as xr

from .. import __version__, cf
from ..atomic import atomic_output, consolidate, variable_length_strings, zarr_write_options
from ..observables import OBS_UNITS_COMMENT, ObservationLayout
from ..provenance import code_hash
from ..resume import ResumeCheckpoint
from .cycle import BlockResult, FilterState
from .statistics import CONSISTENCY_MOMENTS

CHECKPOINT_VERSION = 3
#: the units of the variables on ``obs`` and ``state`` (observables of two kinds side by side: a units vector)
STATE_UNITS_COMMENT = (
    "units per state element: 1 for the n_latent latent elements (standardised), then the observables' units by "
    "their obs_variable flag (degC for sst, m for thermocline_depth)"
)
#: the modules the filter stage runs (as the workflow's src() inputs of the assimilate rule); their hash is part of
#: the resume fingerprint, so a run interrupted and re-run after a code edit starts afresh
FILTER_CODE = ("da", "models", "observables.py", "grid.py", "stores.py", "timeaxis.py", "resume.py")
#: what a readable checkpoint must hold to count as a filter state (anything else is corrupt)
FILTER_STATE = {"month": int, "members": torch.Tensor, "recurrent": object, "rng_state": torch.Tensor}


# --------------------------------------------------------------------------------------------------------------------
# Identity of a run


def filter_code_hash() -> str:
    return code_hash(FILTER_CODE)


def run_fingerprint(inputs: Sequence, settings: Mapping) -> str:
    """Identity of a run for resuming: input files (names, sizes, mtimes), every setting that changes numbers, and
    the code (version and the hash of the modules the stage runs)."""
    record = {
        "version": CHECKPOINT_VERSION,
        "code": [__version__, filter_code_hash()],
        "settings": settings,
        "zarr_format": zarr_write_options()["zarr_format"],  # the partial store's format
        "inputs": [_fingerprint_path(p) for p in inputs],
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def _fingerprint_path(path) -> list:
    path = Path(path)
    if path.is_dir():
        entries = []
        for root, _, files in sorted(os.walk(path)):
            for name in sorted(files):
                st = os.stat(os.path.join(root, name))
                entries.append((os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns))
        return entries
    st = path.stat()
    return [(path.name, st.st_size, st.st_mtime_ns)]


def sidecar_dir(output) -> Path:
    output = Path(output)
    return output.parent / f".{output.name}.resume"


class FilterSidecar:
    """The hidden folder ``.<output>.resume`` beside the output: the partial store and the filter state."""

    def __init__(self, output, fingerprint: str):
        self.dir = sidecar_dir(output)
        self.store = PartialStore(self.dir / "store.zarr")
        self.checkpoint = filter_checkpoint(self.dir / "checkpoint.pt", fingerprint)

    def resume(self, device) -> dict | None:
        """The saved filter state when it belongs to this run (and its partial store exists), else None."""
        return load_filter_state(self.checkpoint, device) if self.store.path.exists() else None

    def start(self, template: xr.Dataset, encoding: dict) -> None:
        """Start afresh: an empty sidecar with the partial store created from the template."""
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.store.create(template, encoding)

    def save_block(self, result: BlockResult, state: FilterState) -> None:
        self.store.write_block(result)
        save_filter_state(self.checkpoint, state)

    def move_into_place(self, output) -> None:
        """The finished store, its metadata consolidated, becomes the output (atomically); the sidecar goes."""
        consolidate(self.store.path)
        with atomic_output(output) as tmp:
            os.replace(self.store.path, tmp)
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------------
# The filter state


def filter_checkpoint(path, fingerprint: str) -> ResumeCheckpoint:
    return ResumeCheckpoint(Path(path), fingerprint, FILTER_CODE, FILTER_STATE, what="filter state")


def save_filter_state(checkpoint: ResumeCheckpoint, state: FilterState) -> None:
    checkpoint.save({
        "month": state.month,
        "members": state.members.detach().cpu(),
        "recurrent": _map_tensors(state.recurrent, lambda t: t.detach().cpu()),
        "rng_state": state.generator.get_state(),
        "adapt": None if state.adapt is None else state.adapt.detach().cpu(),
    })  # fmt: skip


def load_filter_state(checkpoint: ResumeCheckpoint, device) -> dict | None:
    """The saved state with its tensors on ``device``, or None (start from month 0; the log says why)."""
    record = checkpoint.load(map_location="cpu")
    if record is None:
        return None
    record["members"] = record["members"].to(device)
    record["recurrent"] = _map_tensors(record["recurrent"], lambda t: t.to(device))
    record["adapt"] = None if record.get("adapt") is None else record["adapt"].to(device)
    return record


def _map_tensors(obj, fn):
    if obj is None:
        return None
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_map_tensors(o, fn) for o in obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    raise TypeError(f"recurrent state of type {type(obj).__name__} cannot be checkpointed (use tensors, tuples, dicts)")


# --------------------------------------------------------------------------------------------------------------------
# The output store


def store_template(
    *,
    time_values,
    n_experiments: int,
    n_members: int,
    n_state: int,
    n_latent: int,
    layout: ObservationLayout,
    consistency_members: int,
    chunk_months: int,
    adaptive: bool = False,
    static: Mapping[str, xr.DataArray],
    attrs: Mapping,
) -> tuple[xr.Dataset, dict]:
    """The output store's layout and its zarr encoding: the per-month variables as lazy zeros chunked by
    ``chunk_months`` (the blocks the cycle writes), the ``static`` variables and the attributes."""
    T, B, N, n, m, k = len(time_values), n_experiments, n_members, n_state, layout.size, consistency_members
    c = min(chunk_months, T)
    specs = {
        "members": (("time", "experiment", "member", "state"), (T, B, N, n), (c, 1, N, n), np.float32),
        "ensemble_mean": (("time", "experiment", "state"), (T, B, n), (c, 1, n), np.float32),
        "ensemble_spread": (("time", "experiment", "state"), (T, B, n), (c, 1, n), np.float32),
        "innovation": (("time", "experiment", "obs"), (T, B, m), (c, 1, m), np.float32),
        "forecast_spread": (("time", "experiment", "obs"), (T, B, m), (c, 1, m), np.float32),
    }
    if adaptive:
        specs["model_noise_factor"] = (("time", "experiment"), (T, B), (c, 1), np.float32)
    if k:
        specs["decoded_observables"] = (
            ("time", "experiment", "check_member", "obs"),
            (T, B, k, m),
            (c, 1, k, m),
            np.float32,
        )
        specs["consistency_moments"] = (("time", "experiment", "moment"), (T, B, 5), (c, 1, 5), np.float64)
    var_attrs = {
        "members": {
            "long_name": "ensemble members of the augmented state x = [z; y] after each month's cycle",
            "comment": STATE_UNITS_COMMENT,
        },
        "ensemble_mean": {"long_name": "ensemble mean of x", "comment": STATE_UNITS_COMMENT},
        "ensemble_spread": {"long_name": "ensemble standard deviation of x (ddof 1)", "comment": STATE_UNITS_COMMENT},
        "innovation": {
            "long_name": "innovation y_obs - H mean(x_f): pseudo-observation minus forecast-mean observable",
            "comment": OBS_UNITS_COMMENT,
        },
        "forecast_spread": {
            "long_name": "forecast spread of the observables as used by the analysis (after inflation)",
            "comment": OBS_UNITS_COMMENT,
        },
        "model_noise_factor": {
            "long_name": "adaptive factor on the model-noise standard deviation used for the month's forecast (da.adaptive_noise)",
            "units": "1",
        },
        "decoded_observables": {
            "long_name": "observables extracted from the decoded fields of the first members",
            "comment": OBS_UNITS_COMMENT,
        },
        "consistency_moments": {
            "long_name": "moments of decoded vs analysis observables in units of the training std, summed over checked members and observables",
            "units": "1",
        },
    }
    data_vars = {}
    for name, (dims, shape, chunks, dtype) in specs.items():
        data_vars[name] = xr.DataArray(dsa.zeros(shape, chunks=chunks, dtype=dtype), dims=dims, attrs=var_attrs[name])
    coords = {
        "time": xr.DataArray(np.asarray(time_values), dims="time"),
        "experiment": np.arange(B),
        "member": np.arange(N),
        "state": np.arange(n),
        "obs": np.arange(m),
        **layout.coords(),
    }
    if k:
        coords["check_member"] = np.arange(k)
        coords["moment"] = np.array(CONSISTENCY_MOMENTS)
    ds = xr.Dataset(data_vars, coords=coords, attrs=dict(attrs))
    for name, da in static.items():
        ds[name] = da
    ds.attrs.update({"n_latent": int(n_latent), "n_obs": int(m)})
    ds = cf.complete(ds)
    encoding = {**cf.time_encodings(ds), **{name: {"chunks": specs[name][2]} for name in specs}}
    return ds, encoding


class PartialStore:
    """The output store under construction in the sidecar: created once, then written block by block (region writes)."""

    def __init__(self, path: Path):
        self.path = path

    def create(self, template: xr.Dataset, encoding: dict) -> None:
        if self.path.exists():
            shutil.rmtree(self.path)
        template = variable_length_strings(template)
        template.to_zarr(self.path, mode="w", compute=False, encoding=encoding, **zarr_write_options())

    def write_block(self, result: BlockResult) -> None:
        K = result.members.shape[0]
        dims3 = ("time", "experiment", "state")
        block = {
            "members": (("time", "experiment", "member", "state"), result.members),
            "ensemble_mean": (dims3, result.mean),
            "ensemble_spread": (dims3, result.spread),
            "innovation": (("time", "experiment", "obs"), result.innovation),
            "forecast_spread": (("time", "experiment", "obs"), result.forecast_spread),
        }
        if result.noise_factor is not None:
            block["model_noise_factor"] = (("time", "experiment"), result.noise_factor)
        if result.decoded is not None:
            block["decoded_observables"] = (("time", "experiment", "check_member", "obs"), result.decoded)
            block["consistency_moments"] = (("time", "experiment", "moment"), result.consistency_moments)
        ds = xr.Dataset({k: xr.Variable(*v) for k, v in block.items()})
        region = {"time": slice(result.first_month, result.first_month + K)}
        ds.to_zarr(self.path, region=region, **zarr_write_options())
