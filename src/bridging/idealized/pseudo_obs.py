"""Pseudo-observations: the idealized model's monthly anomalies at the observables y of the filter.

Store (docs/architecture.md, "Pseudo-observations"): ``observations`` (time, obs) float32, anomalies in physical
units against the run's own monthly climatology (spin-up dropped); ``obs_error_variance`` (obs) =
``error_fraction`` × the variance of each observable over the record ("4 % of energy"); the observable coordinates
of :class:`bridging.observables.ObservationLayout`; attributes ``model``, ``seed``, ``years``. The run's Niño
indices (``nino3``, ``nino34``, ``nino4``: the model's own node means, anomalies, on ``time``) ride along for the log;
for CF23 so do its equatorial node fields (``sst_anomaly``, ``thermocline_depth_anomaly``, ``zonal_current`` on
(time, cf23_node)), from which the diagnostics reconstruct the run's 2-D fields.

Observables:

* CF23: every ``node_stride``-th of the 56 equatorial nodes, each mapped to the target-grid cell on the equator
  nearest to its longitude (126 + 2.8125 (i − 1) °E); all SST observables west → east, then all thermocline-depth
  observables west → east (112 by default). The values are those of the run's 2-D fields
  (:mod:`bridging.idealized.reconstruction`) at those cells, taken by the same ``ObservationLayout.extract`` that
  observes every gridded source; the run's node fields are stored beside them.
* CFY22: box observables through the same layout: SST over the Niño 4 box (T_C) and the Niño 3 box (T_E), and the
  thermocline depth over the western-Pacific box 5°S–5°N, 120–180°E (h_W), in that order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from .. import cf
from ..atomic import write_zarr_atomic
from ..errors import ConfigError, InputDataError
from ..grid import TargetGrid
from ..observables import OBS_UNITS_COMMENT, OBS_UNITS_SQUARED_COMMENT, ObservationLayout
from ..settings import IdealizedSection, PseudoObsSection, config_hash
from ..stores import provenance
from ..timeaxis import year_month
from .cf23 import NODE_LON
from .reconstruction import NODE_FIELDS, CF23Reconstruction
from .run import idealized_section, simulate
from .stats import monthly_anomalies, nino_statistics

log = logging.getLogger(__name__)

VARIABLE_ORDER = ("sst", "thermocline_depth")
NINO_NAMES = {"nino3": "Nino 3", "nino34": "Nino 3.4", "nino4": "Nino 4"}
NODE_SPACING_DEG = 2.8125

# CFY22 observables: (variable, (lat_min, lat_max, lon_min, lon_max), run variable); order = the store's obs order.
CFY22_BOXES = (
    ("sst", (-5.0, 5.0, 160.0, 210.0), "nino4"),
    ("sst", (-5.0, 5.0, 210.0, 270.0), "nino3"),
    ("thermocline_depth", (-5.0, 5.0, 120.0, 180.0), "wp_thermocline_depth_anomaly"),
)


def _pseudo_obs_section(pseudo_obs: PseudoObsSection | Mapping | None) -> PseudoObsSection:
    if pseudo_obs is None:
        return PseudoObsSection()
    if isinstance(pseudo_obs, PseudoObsSection):
        return pseudo_obs
    return PseudoObsSection.model_validate(dict(pseudo_obs))


def _grid(grid) -> TargetGrid:
    return grid if isinstance(grid, TargetGrid) else TargetGrid.from_config(grid or {})


def cf23_layout(
    grid: TargetGrid, node_stride: int = 1, variables=VARIABLE_ORDER
) -> tuple[ObservationLayout, np.ndarray]:
    """The CF23 observation layout and the 0-based node of each observable.

    Raises ConfigError when a node falls outside the grid (its nearest cell farther than half a node spacing) or
    when two nodes share a grid cell (grid too coarse for the stride: the filter would see one cell observed twice
    with different values).
    """
    unknown = [v for v in variables if v not in VARIABLE_ORDER]
    if unknown:
        raise ConfigError(f"pseudo_obs.variables: unknown variables {unknown} (expected {list(VARIABLE_ORDER)})")
    nodes = np.arange(0, NODE_LON.size, int(node_stride))
    # A node may lie up to half a cell (or half a node spacing) beyond the grid's edge cell centres: node 56 at
    # 280.69°E belongs to the default grid's 280°E cell. Farther out it is not on the grid.
    margin = max(grid.resolution, NODE_SPACING_DEG) / 2
    outside = (NODE_LON[nodes] < grid.lon_min - margin) | (NODE_LON[nodes] > grid.lon_max + margin)
    if outside.any():
        k = int(np.flatnonzero(outside)[0])
        raise ConfigError(
            f"grid: CF23 node {nodes[k] + 1} at {NODE_LON[nodes[k]]:.2f}°E lies outside the target grid "
            f"({grid.lon_min}–{grid.lon_max}°E); widen the grid's longitudes"
        )
    point = ObservationLayout.points(grid, ["sst"] * nodes.size, np.zeros(nodes.size), NODE_LON[nodes])
    cell_lon = np.asarray(point.lon_min)
    if np.unique(cell_lon).size != cell_lon.size:
        raise ConfigError(
            f"grid resolution {grid.resolution}° maps several CF23 nodes onto one cell; raise pseudo_obs.node_stride "
            f"(now {node_stride}) or refine the grid"
        )
    ordered = [v for v in VARIABLE_ORDER if v in variables]
    layout = ObservationLayout.points(
        grid,
        [v for v in ordered for _ in nodes],
        np.zeros(nodes.size * len(ordered)),
        np.tile(NODE_LON[nodes], len(ordered)),
    )
    return layout, np.tile(nodes, len(ordered))


def cfy22_layout(grid: TargetGrid, variables=VARIABLE_ORDER) -> tuple[ObservationLayout, list[str]]:
    """The CFY22 box layout and, per observable, the run variable it comes from."""
    boxes = [b for b in CFY22_BOXES if b[0] in variables]
    layout = ObservationLayout(
        tuple(b[0] for b in boxes),
        tuple(b[1][0] for b in boxes),
        tuple(b[1][1] for b in boxes),
        tuple(b[1][2] for b in boxes),
        tuple(b[1][3] for b in boxes),
    )
    try:
        layout.weights(grid)
    except ValueError as err:
        raise ConfigError(f"grid does not cover the CFY22 observation boxes: {err}") from None
    return layout, [b[2] for b in boxes]


def observation_layout(
    grid, *, model: str = "cf23", pseudo_obs: PseudoObsSection | Mapping | None = None
) -> ObservationLayout:
    """The observation layout the pseudo-observations of ``model`` use on ``grid`` (for other stages)."""
    section = _pseudo_obs_section(pseudo_obs)
    if model == "cf23":
        return cf23_layout(_grid(grid), section.node_stride, section.variables)[0]
    return cfy22_layout(_grid(grid), section.variables)[0]


# Months reconstructed at a time: bounds the (months × grid) fields in memory.
RECONSTRUCTION_CHUNK_MONTHS = 600


def observe_reconstruction(run: xr.Dataset, layout: ObservationLayout, grid: TargetGrid) -> np.ndarray:
    """(time, obs) raw values of a CF23 run seen through the observation operator: the layout's ``extract`` applied
    to the run's 2-D fields on the target grid (CF23's reconstruction), as every gridded source is observed."""
    la, lo = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    reconstruction = CF23Reconstruction.build(la, lo)
    n_time = run.sizes["time"]
    out = np.empty((n_time, layout.size))
    for start in range(0, n_time, RECONSTRUCTION_CHUNK_MONTHS):
        months = slice(start, min(start + RECONSTRUCTION_CHUNK_MONTHS, n_time))
        sst, depth = reconstruction.apply_run(run, months)
        out[months] = layout.extract({"sst": sst, "thermocline_depth": depth}, grid)
    return out


def observation_variables(anomalies: np.ndarray, error_fraction: float) -> dict[str, xr.DataArray]:
    """The store's ``observations`` (time, obs) and ``obs_error_variance`` (obs) = ``error_fraction`` × the variance
    of each observable over the record: every idealized model's pseudo-observations have this form."""
    return {
        "observations": xr.DataArray(
            anomalies.astype(np.float32),
            dims=("time", "obs"),
            attrs={
                "long_name": "pseudo-observation anomalies (vs the run's monthly climatology)",
                "comment": OBS_UNITS_COMMENT,
                "cell_methods": "time: mean",
            },
        ),
        "obs_error_variance": xr.DataArray(
            (error_fraction * anomalies.var(axis=0)).astype(np.float64),
            dims="obs",
            attrs={
                "long_name": f"observation-error variance = {error_fraction} × variance of each observable",
                "comment": OBS_UNITS_SQUARED_COMMENT,
            },
        ),
    }


def build_pseudo_obs(
    *,
    idealized: IdealizedSection | Mapping | None = None,
    pseudo_obs: PseudoObsSection | Mapping | None = None,
    grid=None,
    threads: int | None = None,
) -> xr.Dataset:
    """Run the configured idealized model for ``pseudo_obs_years`` with ``seed_pseudo_obs`` and extract y."""
    section = idealized_section(idealized)
    po = _pseudo_obs_section(pseudo_obs)
    target = _grid(grid)
    model = section.model
    if model == "cf23":
        layout, node = cf23_layout(target, po.node_stride, po.variables)
    else:
        layout, sources = cfy22_layout(target, po.variables)
    run = simulate(section, years=section.pseudo_obs_years, seed=section.seed_pseudo_obs, members=1, threads=threads)
    run = run.isel(member=0, drop=True)
    _, months = year_month(run["time"])
    if model == "cf23":
        raw = observe_reconstruction(run, layout, target)
    else:
        raw = np.stack([run[name].values for name in sources], axis=1)
    anomalies = monthly_anomalies(raw.T, months, pool_leading=False).T  # each observable its own climatology
    ds = xr.Dataset(
        observation_variables(anomalies, po.error_fraction), coords={"time": run["time"], **layout.coords()}
    )
    if model == "cf23":
        ds = ds.assign_coords(
            obs_node=("obs", (node + 1).astype(np.int32), {"long_name": "CF23 node (1-based)", "units": "1"}),
            obs_node_lon=("obs", NODE_LON[node], {"long_name": "CF23 node longitude", "units": "degrees_east"}),
        )
        # The run's equatorial fields ride along: its 2-D fields (the diagnostics' index operator, the known truth
        # of the propagation test) are reconstructed from them.
        ds = ds.assign(run[list(NODE_FIELDS)].rename(node="cf23_node", node_lon="cf23_node_lon"))
    for name in ("nino3", "nino34", "nino4"):
        ds[name] = xr.DataArray(
            monthly_anomalies(run[name].values, months).astype(np.float32),
            dims="time",
            attrs={
                "units": "degC",
                "long_name": f"{NINO_NAMES[name]} SST anomaly of the pseudo-observation run (its node mean)",
                "cell_methods": "time: mean",
            },
        )
    ds.attrs.update(
        {
            "model": model,
            "seed": int(section.seed_pseudo_obs),
            "years": int(section.pseudo_obs_years),
            "spinup_years": int(section.spinup_years),
            "error_fraction": float(po.error_fraction),
            "node_stride": int(po.node_stride),
            "parameters": run.attrs["parameters"],
            "provenance": provenance(
                config_hash=config_hash(
                    {
                        "idealized": section.model_dump(mode="json"),
                        "pseudo_obs": po.model_dump(mode="json"),
                        "grid": repr(target),
                    }
                ),
                model=model,
                seed=int(section.seed_pseudo_obs),
            ),
            "time_coverage_start": "0001-01",
            "time_coverage_end": f"{int(section.pseudo_obs_years):04d}-12",
            "title": f"{model.upper()} pseudo-observations: monthly anomalies at the filter's observables (model years)",
        }
    )
    n3 = nino_statistics(ds["nino3"].values)
    n4 = nino_statistics(ds["nino4"].values)
    log.info(
        "pseudo-observations from %s: %d months × %d observables; Niño 3 std %.2f skew %+.2f, Niño 4 std %.2f skew %+.2f",
        model, ds.sizes["time"], ds.sizes["obs"], n3["std"], n3["skewness"], n4["std"], n4["skewness"],
    )  # fmt: skip
    return ds


def make_pseudo_obs(
    out: str | Path,
    *,
    idealized: IdealizedSection | Mapping | None = None,
    pseudo_obs: PseudoObsSection | Mapping | None = None,
    grid=None,
    threads: int | None = None,
) -> Path:
    """The rule ``pseudo_obs``: build and write ``RUN/pseudo_obs/<model>.zarr`` atomically."""
    ds = build_pseudo_obs(idealized=idealized, pseudo_obs=pseudo_obs, grid=grid, threads=threads)
    ds = cf.complete(ds)
    ds.attrs["config_hash"] = json.loads(ds.attrs["provenance"])["config_hash"]
    return write_zarr_atomic(ds, out, encoding=cf.time_encodings(ds))


PSEUDO_OBS_VARIABLES = ("observations", "obs_error_variance", "obs_variable", "obs_lat_min")


def open_pseudo_obs(path: str | Path) -> xr.Dataset:
    """A pseudo-observation store, loaded (small: read once), whose observations are finite and whose R is finite and
    positive; errors name the path."""
    from ..stores import open_zarr_checked

    ds = open_zarr_checked(path, "pseudo-observation store", PSEUDO_OBS_VARIABLES).load()
    observations = ds["observations"].transpose("time", "obs").values
    if not np.isfinite(observations).all():
        bad = int(np.flatnonzero(~np.isfinite(observations).all(1))[0])
        raise InputDataError(path, f"observations contain NaN/Inf (first at time index {bad})")
    obs_var = ds["obs_error_variance"].values
    if not (np.isfinite(obs_var).all() and (obs_var > 0).all()):
        raise InputDataError(path, "obs_error_variance must be finite and positive for every observable")
    return ds
