"""The autoencoder's training data: a source store's fields as standardised anomalies on the target grid, with the
observables y extracted from the same fields (``ObservationLayout``).

Standardisation: anomalies against each source's own monthly climatology, divided by the *operational* model's
anomaly std for every source. One fixed scale keeps the encoder a single map from physical anomalies to latents,
so reanalysis amplitudes stay comparable (dividing the reanalysis by its own std would hide the operational
model's amplitude bias from the curriculum) and decoding multiplies back by the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from .. import stores
from ..errors import InputDataError
from ..grid import TargetGrid
from ..observables import ObservationLayout
from .conv_autoencoder import FIELD_NAMES


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
        ds = stores.open_zarr(path, decode_times=False)
    except Exception as err:
        raise InputDataError(path, f"cannot open as a zarr store ({type(err).__name__}: {err})") from None
    missing = [
        c for c in ("obs_variable", "obs_lat_min", "obs_lat_max", "obs_lon_min", "obs_lon_max") if c not in ds.variables
    ]
    if missing:
        raise InputDataError(path, f"lacks the observable coordinates {missing}")
    layout = ObservationLayout.from_dataset(ds)
    unknown = sorted(set(layout.variable) - set(FIELD_NAMES))
    if unknown:
        raise InputDataError(
            path, f"observables of variables {unknown} cannot be extracted from the fields {list(FIELD_NAMES)}"
        )
    if layout.size == 0:
        raise InputDataError(path, "has no observables")
    return layout


def load_field_record(
    path: str | Path, *, grid: TargetGrid, layout: ObservationLayout, field_std: dict[str, float] | None = None
) -> FieldRecord:
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
    anomalies = {
        f: stores.field_anomalies(ds, f).transpose("time", "lat", "lon").values.astype(np.float32) for f in FIELD_NAMES
    }
    standardised = np.stack([anomalies[f] / np.float32(field_std[f]) for f in FIELD_NAMES], axis=1)
    standardised = np.where(ocean & np.isfinite(standardised), standardised, np.float32(0)).astype(np.float32)
    try:
        observables = layout.extract(anomalies, grid).astype(np.float32)
    except ValueError as err:
        raise InputDataError(path, f"cannot extract the observables: {err}") from None
    if not np.isfinite(observables).all():
        raise InputDataError(path, "observables contain NaN: an observable cell has missing data at some time")
    return FieldRecord(
        path,
        str(ds.attrs.get("source_id", path.stem)),
        standardised,
        ocean,
        observables,
        dict(field_std),
        ds["time"].load(),
    )
