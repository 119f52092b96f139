"""Pseudo-observations from XRO, the extended nonlinear recharge oscillator (Zhao et al. 2024, package ``xro``).

CF23 and CFY22 are idealized models with prescribed parameters; XRO is fitted to the reanalysis itself, so its
pseudo-observations carry the observed ENSO's seasonally modulated recharge-oscillator dynamics. The two observables
are the Niño 3.4 SST (T) and the equatorial thermocline-depth index h: the D20 anomaly averaged over 5°S–5°N,
120–280°E, the proxy of the warm water volume (WWV) that is XRO's recharge variable. Both are taken from the regridded
reanalysis store through the project's one observation operator (:class:`bridging.observables.ObservationLayout`),
fitted, simulated and written in the store format of :mod:`bridging.idealized.pseudo_obs`, on the same model-year
time axis, so the filter can use them beside CF23's and CFY22's.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr
import XRO

from .. import cf
from ..atomic import write_zarr_atomic
from ..errors import ConfigError, InputDataError
from ..grid import TargetGrid
from ..observables import ObservationLayout
from ..settings import IdealizedSection, PseudoObsSection, config_hash
from ..stores import open_store, provenance
from ..timeaxis import monthly_time, year_month
from .pseudo_obs import VARIABLE_ORDER, _grid, _pseudo_obs_section, observation_variables
from .run import idealized_section
from .stats import monthly_anomalies, nino_statistics

log = logging.getLogger(__name__)

# XRO observables: (variable, (lat_min, lat_max, lon_min, lon_max)); order = the store's obs order and XRO's (T, h).
XRO_BOXES = (
    ("sst", (-5.0, 5.0, 190.0, 240.0)),  # Niño 3.4 SST: XRO's T
    ("thermocline_depth", (-5.0, 5.0, 120.0, 280.0)),  # equatorial D20: XRO's h (WWV proxy)
)
INDEX_NAMES = ("Nino34", "h")
# The fit: seasonal operator (ncycle=12 months, annual + semi-annual harmonics, ac_order=2) of the linear RO core
# (no quadratic/cubic terms); XRO's defaults otherwise (forward differences, seasonally modulated noise). White
# noise, not XRO's red default: the fit has to reproduce the record it was fitted on, and with red noise it did not
# (docs/idealized_models.md, XRO, has the measurements).
XRO_SETTINGS = {"ncycle": 12, "ac_order": 2, "is_forward": True, "maxlags": 2}
SIMULATION_SETTINGS = {"nstep": 10, "noise_type": "white", "is_xi_stdac": True}


def xro_layout(grid: TargetGrid, variables=VARIABLE_ORDER) -> ObservationLayout:
    """The XRO box layout (Niño 3.4 SST, equatorial thermocline depth) restricted to ``variables``."""
    boxes = [b for b in XRO_BOXES if b[0] in variables]
    edges = (tuple(b[1][k] for b in boxes) for k in range(4))
    layout = ObservationLayout(tuple(b[0] for b in boxes), *edges)
    try:
        layout.weights(grid)
    except ValueError as err:
        raise ConfigError(f"grid does not cover the XRO observation boxes: {err}") from None
    return layout


def reanalysis_indices(store_path: str | Path, grid) -> xr.Dataset:
    """``Nino34`` (°C) and ``h`` (m) of the reanalysis store: the observables' box means, monthly anomalies against
    the record's own monthly climatology, on the store's time axis."""
    target = _grid(grid)
    ds = open_store(store_path)
    lat, lon = ds["lat"].values, ds["lon"].values % 360.0
    if (
        lat.shape != target.lat.shape
        or lon.shape != target.lon.shape
        or not (np.allclose(lat, target.lat) and np.allclose(lon, target.lon))
    ):
        raise InputDataError(store_path, f"fields are not on the target grid {target!r}")
    fields = {v: ds[v].transpose("time", "lat", "lon").values for v in VARIABLE_ORDER}
    try:
        raw = xro_layout(target).extract(fields, target)
    except ValueError as err:  # a box without a cell that is ocean throughout the record
        raise InputDataError(store_path, f"cannot take the XRO indices: {err}") from None
    _, months = year_month(ds["time"])
    anomalies = monthly_anomalies(raw.T, months, pool_leading=False)
    if not np.isfinite(anomalies).all():
        raise InputDataError(store_path, "the Niño 3.4 or equatorial thermocline-depth index is not finite")
    attrs = (
        {"units": "degC", "long_name": "Nino 3.4 SST anomaly"},
        {"units": "m", "long_name": "equatorial D20 anomaly"},
    )
    return xr.Dataset(
        {name: xr.DataArray(a, dims="time", attrs=at) for name, a, at in zip(INDEX_NAMES, anomalies, attrs)},
        coords={"time": ds["time"]},
    )


def _from_january(indices: xr.Dataset, path) -> xr.Dataset:
    """The record from its first January: XRO takes the first month of its input as calendar month 1."""
    _, months = year_month(indices["time"])
    first = np.flatnonzero(months == 1)
    if first.size == 0 or indices.sizes["time"] - first[0] < 24:
        raise InputDataError(path, "XRO needs at least two years of record from a January")
    return indices.isel(time=slice(int(first[0]), None))


def fit_and_simulate(indices: xr.Dataset, *, years: int, seed: int) -> tuple[np.ndarray, xr.Dataset]:
    """Fit XRO to (Nino34, h) and simulate one member for ``years`` from rest: (years·12, 2) monthly means and the
    fit. XRO seeds numpy's global generator; its state is restored, so callers see no side effect."""
    if not 0 <= seed < 2**32:
        raise ConfigError(f"idealized.seed_pseudo_obs: XRO needs a seed in 0 … 2³² − 1 (got {seed})")
    model = XRO.XRO(**XRO_SETTINGS)
    state = np.random.get_state()
    try:
        with warnings.catch_warnings():
            # xro 1.0.4 uses xarray's deprecated Dataset.drop, and its noise-memory fit takes fractional powers and
            # logarithms of negative lag correlations (NaN, skipped in the mean over lags).
            warnings.filterwarnings("ignore", category=FutureWarning, module="XRO")
            warnings.filterwarnings("ignore", "invalid value encountered in (power|log)", RuntimeWarning)
            fit = model.fit_matrix(indices[list(INDEX_NAMES)].drop_vars("time"))
            run = model.simulate(
                fit, indices.isel(time=0) * 0.0, nyear=years, ncopy=1, seed=seed, **SIMULATION_SETTINGS
            )
    finally:
        np.random.set_state(state)
    return np.stack([run[name].values[:, 0] for name in INDEX_NAMES], axis=1), fit


def _parameters(fit: xr.Dataset, indices: xr.Dataset) -> str:
    """JSON of the XRO settings, the fitted annual-mean operator and the reanalysis years of the fit."""
    years, _ = year_month(indices["time"])
    operator = fit["Lcoef"].sel(cossin=0).values  # annual-mean linear operator, 1/year
    return json.dumps(
        {
            "model": "XRO (extended nonlinear recharge oscillator), linear RO core",
            "xro_version": XRO.__version__,
            "variables": list(INDEX_NAMES),
            **XRO_SETTINGS,
            **SIMULATION_SETTINGS,
            "fit_years": [int(years[0]), int(years[-1])],
            "annual_mean_operator_per_year": np.round(operator, 6).tolist(),
        },
        sort_keys=True,
    )


def build_xro_pseudo_obs(
    reanalysis_store: str | Path,
    *,
    idealized: IdealizedSection | Mapping | None = None,
    pseudo_obs: PseudoObsSection | Mapping | None = None,
    grid=None,
) -> xr.Dataset:
    """Fit XRO to the reanalysis indices, run it ``spinup_years + pseudo_obs_years`` with ``seed_pseudo_obs``, drop
    the spin-up and return the pseudo-observation store (the format of :func:`~.pseudo_obs.build_pseudo_obs`)."""
    section = idealized_section(idealized)
    po = _pseudo_obs_section(pseudo_obs)
    target = _grid(grid)
    layout = xro_layout(target, po.variables)
    observed = _from_january(reanalysis_indices(reanalysis_store, target), reanalysis_store)
    seed, years, spinup = int(section.seed_pseudo_obs), int(section.pseudo_obs_years), int(section.spinup_years)
    run, fit = fit_and_simulate(observed, years=spinup + years, seed=seed)
    if not np.isfinite(run).all():
        raise InputDataError(reanalysis_store, "the XRO fitted to this record is unstable: its run diverges")
    time = monthly_time(1, 1, 12 * years)
    _, months = year_month(time)
    anomalies = monthly_anomalies(run[12 * spinup :].T, months, pool_leading=False).T
    anomalies = anomalies[:, [VARIABLE_ORDER.index(v) for v in layout.variable]]
    ds = xr.Dataset(
        {
            **observation_variables(anomalies, po.error_fraction),
            "nino34": xr.DataArray(
                monthly_anomalies(run[12 * spinup :, 0], months).astype(np.float32),
                dims="time",
                attrs={
                    "units": "degC",
                    "long_name": "Nino 3.4 SST anomaly of the pseudo-observation run (XRO's T)",
                    "cell_methods": "time: mean",
                },
            ),
        },
        coords={"time": time, **layout.coords()},
    )
    settings_hash = config_hash(
        {"idealized": section.model_dump(mode="json"), "pseudo_obs": po.model_dump(mode="json"), "grid": repr(target)}
    )
    ds.attrs.update(
        {
            "model": "xro",
            "seed": seed,
            "years": years,
            "spinup_years": spinup,
            "error_fraction": float(po.error_fraction),
            "node_stride": 1,
            "parameters": _parameters(fit, observed),
            "provenance": provenance([reanalysis_store], config_hash=settings_hash, model="xro", seed=seed),
            "time_coverage_start": "0001-01",
            "time_coverage_end": f"{years:04d}-12",
            "title": "XRO pseudo-observations: monthly anomalies at the filter's observables (model years)",
        }
    )
    sim, obs = nino_statistics(ds["nino34"].values), nino_statistics(observed["Nino34"].values)
    log.info(
        "pseudo-observations from xro: %d months × %d observables; Niño 3.4 std %.2f skew %+.2f (reanalysis %.2f, %+.2f)",
        ds.sizes["time"], ds.sizes["obs"], sim["std"], sim["skewness"], obs["std"], obs["skewness"],
    )  # fmt: skip
    return ds


def make_xro_pseudo_obs(
    out: str | Path,
    reanalysis_store: str | Path,
    *,
    idealized: IdealizedSection | Mapping | None = None,
    pseudo_obs: PseudoObsSection | Mapping | None = None,
    grid=None,
) -> Path:
    """The rule ``pseudo_obs`` for XRO: build and write ``RUN/pseudo_obs/xro.zarr`` atomically."""
    ds = build_xro_pseudo_obs(reanalysis_store, idealized=idealized, pseudo_obs=pseudo_obs, grid=grid)
    ds = cf.complete(ds)
    ds.attrs["config_hash"] = json.loads(ds.attrs["provenance"])["config_hash"]
    return write_zarr_atomic(ds, out, encoding=cf.time_encodings(ds))
