"""The model hierarchy: the pseudo-observations of several idealized models as one observation vector.

The state holds the observables of ``idealized.model`` (the latent store's y: CF23's equatorial cells by default).
Another model observes boxes the state does not hold (CFY22's Niño 4, Niño 3 and western-Pacific boxes, XRO's Niño
3.4 and equatorial thermocline index). Each becomes a **derived row** of the observation vector, β · the mean of the
state's observables of its variable whose cells lie in its box: linear in y, so H stays linear, and the analysis
treats the row as a column appended to the state, moved by the same member weights as y and dropped afterwards
(:mod:`bridging.da.cycle`). β is the least-squares slope of the box mean on that node mean over the operational
model's months: the state's cells sit on the equator while the boxes average 5°S–5°N, and the decoded fields'
meridional structure is the operational model's; its R² says how much of the box the nodes see.

The runs of different models are independent realisations: two models observing the same region contradict each
other, and models given different regions leave those regions' histories uncorrelated (docs/method.md, Model
hierarchy, measures what that does).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import ConfigError, InputDataError
from ..grid import TargetGrid
from ..observables import ObservationLayout
from ..settings import DASection
from ..settings.da import SOURCE_PATTERN, source_models
from ..stores import open_zarr_checked

log = logging.getLogger(__name__)

#: regions of the ``_wp`` / ``_cp`` / ``_ep`` suffixes: (west, east) °E of an observable's centre, east end inclusive
REGIONS = {"wp": (120.0, 160.0), "cp": (160.0, 210.0), "ep": (210.0, 280.0)}
#: a derived row whose box the state's observables explain less than this (R²) is logged as a warning
MIN_R2 = 0.5


@dataclass(frozen=True)
class Source:
    """One entry of ``da.observations.sources``: a model and the region its observables are assimilated in."""

    model: str
    region: str | None = None

    @classmethod
    def parse(cls, text: str) -> Source:
        match = SOURCE_PATTERN.fullmatch(text)
        if match is None:
            raise ConfigError(f"da.observations.sources: unknown source {text!r}")
        return cls(match.group(1), match.group(2))

    def covers(self, lon: float) -> bool:
        if self.region is None:
            return True
        west, east = REGIONS[self.region]
        return west <= lon % 360 <= east if self.region == "ep" else west <= lon % 360 < east


@dataclass(frozen=True)
class ObservationVector:
    """What the filter observes: the state's observables (m rows), then the derived rows of the other models (k)."""

    layout: ObservationLayout  # m + k rows
    observations: np.ndarray  # (T, m + k)
    obs_error_variance: np.ndarray  # (m + k,)
    model: tuple[str, ...]  # the idealized model of each row
    derived: np.ndarray | None = None  # (k, m): derived row = derived @ y
    calibration: list[dict] = field(default_factory=list)  # β and R² of each derived row


def hierarchy_stores(da: DASection, pseudo_obs, others: Sequence[str | Path]) -> dict[str, str]:
    """model → pseudo-observation store of each model of ``da.observations.sources`` other than ``pseudo_obs``'s."""
    if not da.observations.sources:
        return {}

    def model_of(path) -> str:
        return str(open_zarr_checked(path, "pseudo-observation store").attrs.get("model", ""))

    primary = model_of(pseudo_obs)
    wanted = source_models(da.observations.sources)
    by_model = {model_of(path): str(path) for path in others}
    missing = [m for m in wanted if m != primary and m not in by_model]
    if missing:
        raise ConfigError(f"da.observations.sources lists {missing}, but the filter got no pseudo-observations of it")
    return {m: by_model[m] for m in wanted if m != primary}


def derived_rows(state: ObservationLayout, boxes: ObservationLayout) -> np.ndarray:
    """(k, m) weights: each box's row averages the state's observables of its variable whose cells lie inside it.

    Raises ConfigError when a box holds none (the state cannot see it: e.g. CF23's single cells from CFY22's boxes).
    """
    rows = np.zeros((boxes.size, state.size))
    tol = 1e-6
    for b in range(boxes.size):
        inside = [
            s
            for s in range(state.size)
            if state.variable[s] == boxes.variable[b]
            and boxes.lat_min[b] - tol <= state.lat_min[s] <= state.lat_max[s] <= boxes.lat_max[b] + tol
            and boxes.lon_min[b] - tol <= state.lon_min[s] <= state.lon_max[s] <= boxes.lon_max[b] + tol
        ]
        if not inside:
            raise ConfigError(
                f"da.observations.sources: the {boxes.variable[b]} box {boxes.lon_min[b]:g}–{boxes.lon_max[b]:g}°E, "
                f"{boxes.lat_min[b]:g}–{boxes.lat_max[b]:g}°N contains none of the state's observables; a hierarchy "
                f"observes other models through the observables of idealized.model (use cf23 there)"
            )
        rows[b, inside] = 1.0 / len(inside)
    return rows


def calibrate(rows: np.ndarray, state: ObservationLayout, boxes: ObservationLayout, anomalies, grid) -> list[dict]:
    """β (box mean ≈ β · node mean, least squares through 0) and R² of each derived row on gridded ``anomalies``
    (``{variable: (T, lat, lon)}``, NaN on land)."""
    node_mean = state.extract(anomalies, grid) @ rows.T  # (T, k)
    box = boxes.extract(anomalies, grid)
    beta = (box * node_mean).sum(0) / (node_mean**2).sum(0)
    r2 = 1.0 - ((box - beta * node_mean) ** 2).sum(0) / ((box - box.mean(0)) ** 2).sum(0)
    return [{"beta": float(b), "r2": float(r)} for b, r in zip(beta, r2)]


def observation_vector(
    primary: xr.Dataset,
    others: Mapping[str, xr.Dataset],
    *,
    state: ObservationLayout,
    anomalies: Mapping[str, np.ndarray] | None,
    grid: TargetGrid,
    paths: Mapping[str, str],
) -> ObservationVector:
    """The observation vector of ``primary`` (the state's model, rows = the state's observables) and ``others``
    (model → its pseudo-observation store). ``anomalies``: the operational model's field anomalies, for β."""
    observations = [primary["observations"].transpose("time", "obs").values.astype(np.float64)]
    variance = [primary["obs_error_variance"].values.astype(np.float64)]
    model = [str(primary.attrs.get("model", ""))] * state.size
    boxes, calibration, derived = [], [], []
    for name, ds in others.items():
        if ds.sizes["time"] != primary.sizes["time"] or not np.array_equal(ds["time"].values, primary["time"].values):
            raise InputDataError(paths[name], f"its time axis differs from that of {paths['primary']}")
        layout = ObservationLayout.from_dataset(ds)
        rows = derived_rows(state, layout)
        beta = calibrate(rows, state, layout, anomalies, grid) if anomalies is not None else [{"beta": 1.0}] * len(rows)
        for b, entry in enumerate(beta):
            entry.update(model=name, variable=layout.variable[b], lon=[layout.lon_min[b], layout.lon_max[b]])
            if entry.get("r2", 1.0) < MIN_R2:
                log.warning("hierarchy: the state's observables explain only R² = %.2f of %s's %s box", entry["r2"], name, layout.variable[b])  # fmt: skip
        derived.append(rows * np.array([e["beta"] for e in beta])[:, None])
        calibration += beta
        boxes.append(layout)
        observations.append(ds["observations"].transpose("time", "obs").values.astype(np.float64))
        variance.append(ds["obs_error_variance"].values.astype(np.float64))
        model += [name] * layout.size
    full = state
    for layout in boxes:
        full = ObservationLayout(
            *(getattr(full, f) + getattr(layout, f) for f in ObservationLayout.__dataclass_fields__)
        )
    return ObservationVector(
        full,
        np.concatenate(observations, axis=1),
        np.concatenate(variance),
        tuple(model),
        np.concatenate(derived) if derived else None,
        calibration,
    )


def assimilated_rows(
    layout: ObservationLayout,
    model: Sequence[str],
    sources: Sequence[str],
    *,
    primary: str,
    variables: Sequence[str],
    node_stride: int,
) -> np.ndarray | None:
    """Indices of the rows the analysis uses (None: all): per source its model's rows in its region, of the observed
    ``variables``; of the state's model every ``node_stride``-th observable per variable, west to east."""
    picked: list[int] = []
    for source in [Source.parse(s) for s in sources] or [Source(primary)]:
        for variable in variables:
            rows = [r for r in range(layout.size) if model[r] == source.model and layout.variable[r] == variable]
            rows = sorted(rows, key=lambda r: layout.lon[r])
            if source.model == primary:
                rows = rows[::node_stride]
            picked += [r for r in rows if source.covers(layout.lon[r])]
        if not any(model[r] == source.model for r in picked):
            raise ConfigError(
                f"da.observations selects no observable of source {source.model}"
                f"{'_' + source.region if source.region else ''} (variables {list(variables)})"
            )
    picked_rows = np.unique(np.asarray(picked))
    return None if picked_rows.size == layout.size else picked_rows


def per_model_ratios(
    store: xr.Dataset, obs_var: np.ndarray, observable_std: np.ndarray, model: Sequence[str], assimilated
) -> dict[str, dict]:
    """Per idealized model, the innovation ratio Σ d² / Σ (s² + R) over the whole run (per experiment) of its
    assimilated rows and of its withheld ones, in units of each row's training std (a filter store's ``innovation``
    and ``forecast_spread``; R (B, m)): does each model's record agree with the filter's forecasts?"""
    used = np.zeros(len(model), bool)
    used[np.arange(len(model)) if assimilated is None else np.asarray(assimilated)] = True
    sd = np.asarray(observable_std, dtype=np.float64)
    innovation = store["innovation"].values.astype(np.float64) / sd
    d2 = (innovation**2).sum(0)  # (B, m)
    predicted = ((store["forecast_spread"].values / sd) ** 2).sum(0) + innovation.shape[0] * np.asarray(obs_var) / sd**2
    out = {}
    for name in dict.fromkeys(model):
        rows = np.asarray([m == name for m in model])
        entry = {"observables": int(rows.sum()), "assimilated": int((rows & used).sum())}
        for label, pick in (("innovation_ratio", rows & used), ("withheld_innovation_ratio", rows & ~used)):
            if pick.any():
                entry[label] = (d2[..., pick].sum(-1) / predicted[..., pick].sum(-1)).tolist()
        out[name] = entry
    return out
