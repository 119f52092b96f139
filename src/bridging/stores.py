"""The project's analysis-ready store form, shared by every source (operational model, reanalysis, bridging model,
free run): one zarr store per source with

* ``sst`` (°C) and ``thermocline_depth`` (m), full fields (not anomalies), dims ``([member,] time, lat, lon)``, float32,
  chunked along time, NaN over land;
* ``ocean_mask`` (lat, lon): 1 where the source has ocean data at every time;
* ``sst_climatology`` / ``thermocline_depth_climatology`` (month, lat, lon): monthly climatology of the
  climatology (training) period;
* ``sst_anomaly_std`` / ``thermocline_depth_anomaly_std`` (scalars): standard deviation of the anomalies over ocean
  cells and the same period, used to standardise fields for the autoencoder;
* attributes ``source_id``, ``source_kind``, ``climatology_period``, ``config_hash`` and ``provenance`` (JSON:
  input files, config hash, package version, creation time), CF metadata on every variable (:mod:`bridging.cf`:
  ``time_bnds``, climatology bounds, ``Conventions``).

The time axis (:mod:`bridging.timeaxis`) is a mid-month cftime ``noleap`` stamp per month. For the operational
models and the reanalysis it carries their historical years (e.g. 1850–2014, 1958–2023). The bridging and free-run
stores (``stores/bridging_<model>.zarr``, ``stores/free_run_<model>.zarr``) run on the pseudo-observation record's
model years ``0001``–``<pseudo_obs.years>`` (an idealized model has no calendar dates): they borrow the operational
model's climatology and anomaly std, so their ``climatology_period`` is the operational model's (historical) years,
stated with ``climatology_source``, while ``time_coverage_start`` / ``time_coverage_end`` give their own model years.

Every store is written with consolidated metadata (``xr.open_zarr(path)`` warns about nothing) in the zarr format of
``outputs.zarr_format`` (:mod:`bridging.atomic`); Snakemake's bookkeeping sits in a sentinel beside it
(:mod:`bridging.layout`).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from . import __version__, cf
from .atomic import write_zarr_atomic
from .errors import InputDataError
from .timeaxis import year_month

FIELDS = ("sst", "thermocline_depth")
FIELD_ATTRS = {
    "sst": {
        "standard_name": "sea_surface_temperature",
        "long_name": "Sea surface temperature",
        "units": "degC",
        "units_metadata": "temperature: on_scale",
        "cell_methods": "time: mean",
    },
    "thermocline_depth": {
        "standard_name": "depth_of_isosurface_of_sea_water_potential_temperature",
        "long_name": "Depth of the 20 degC isotherm",
        "units": "m",
        "positive": "down",
        "cell_methods": "time: mean",
    },
}
OCEAN_MASK_ATTRS = {
    "standard_name": "sea_binary_mask",
    "long_name": "1 where the source has ocean data (both fields) at every time, 0 elsewhere",
    "units": "1",
}
#: the long names of the fields in derived variables' long names
FIELD_NAMES = {f: FIELD_ATTRS[f]["long_name"].lower() for f in FIELDS}
SOURCE_KINDS = ("operational", "reanalysis", "bridging", "free_run", "idealized")


def provenance(input_files: Iterable[str | Path] = (), config_hash: str | None = None, **extra) -> str:
    """A JSON string recorded as the ``provenance`` attribute of every store (``config_hash``: the hash of the
    settings the writer was given, :func:`bridging.settings.config_hash`)."""
    record = {
        "package": "enso-bridge",
        "package_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "config_hash": config_hash,
        "input_files": [str(p) for p in input_files],
    }
    record.update(extra)
    return json.dumps(record, sort_keys=True, default=str)


def _period_mask(time: xr.DataArray, period: Sequence[int] | None) -> np.ndarray:
    years, _ = year_month(time)
    if period is None:
        return np.ones(years.shape, bool)
    first, last = int(period[0]), int(period[1])
    mask = (years >= first) & (years <= last)
    if not mask.any():
        raise ValueError(f"climatology period {first}–{last} lies outside the record {years.min()}–{years.max()}")
    return mask


def monthly_climatology(field: xr.DataArray, period: Sequence[int] | None = None) -> xr.DataArray:
    """Mean for each calendar month over the period (years inclusive); dims (month, ...) without time/member."""
    sel = field.isel(time=np.flatnonzero(_period_mask(field["time"], period)))
    _, months = year_month(sel["time"])
    sel = sel.assign_coords(month=("time", months))
    dims = [d for d in sel.dims if d == "member"]
    clim = sel.groupby("month").mean(["time", *dims])
    if clim.sizes["month"] != 12:
        raise ValueError(f"climatology needs every calendar month, got {clim.sizes['month']}")
    return clim


def anomalies(field: xr.DataArray, climatology: xr.DataArray) -> xr.DataArray:
    """field minus the climatology of its calendar month."""
    _, months = year_month(field["time"])
    clim = climatology.sel(month=xr.DataArray(months, dims="time", coords={"time": field["time"]}))
    return (field - clim).drop_vars(["month", cf.CLIMATOLOGY_TIME], errors="ignore")


def build_store(
    fields: dict[str, xr.DataArray],
    *,
    source_id: str,
    source_kind: str,
    climatology_period: Sequence[int] | None = None,
    climatology: dict[str, xr.DataArray] | None = None,
    anomaly_std: dict[str, float] | None = None,
    provenance_json: str | None = None,
    extra_attrs: dict | None = None,
    climatology_source: str | None = None,
) -> xr.Dataset:
    """Assemble a store Dataset from full fields on the target grid.

    ``climatology``/``anomaly_std`` may be given (the bridging model reuses its operational model's, computed over
    ``climatology_period`` of that model's record; ``climatology_source`` says whose); otherwise they are computed
    from the fields over ``climatology_period`` (years, inclusive; None = whole record).
    """
    if source_kind not in SOURCE_KINDS:
        raise ValueError(f"source_kind must be one of {SOURCE_KINDS}, got {source_kind!r}")
    missing = [f for f in FIELDS if f not in fields]
    if missing:
        raise ValueError(f"store for {source_id} lacks fields {missing}")
    data_vars = {}
    clim_out, std_out = {}, {}
    for name in FIELDS:
        da = fields[name].astype("float32")
        da.attrs = dict(FIELD_ATTRS[name])
        data_vars[name] = da
        if climatology is not None:
            clim = climatology[name].drop_vars([cf.CLIMATOLOGY_TIME, cf.CLIMATOLOGY_BOUNDS], errors="ignore")
        else:
            clim = monthly_climatology(da, climatology_period)
        clim_out[name] = clim.astype("float32")
        if anomaly_std is not None:
            std_out[name] = float(anomaly_std[name])
        else:
            sel = da.isel(time=np.flatnonzero(_period_mask(da["time"], climatology_period)))
            anom = anomalies(sel, clim)
            std_out[name] = float(np.sqrt(np.nanmean(np.square(anom.values.astype(np.float64)))))
    first = data_vars["sst"]
    reduce_dims = [d for d in first.dims if d in ("time", "member")]
    ocean = np.isfinite(data_vars["sst"]).all(reduce_dims) & np.isfinite(data_vars["thermocline_depth"]).all(
        reduce_dims
    )
    if climatology_period is None:
        years, _ = year_month(first["time"])
        climatology_period = (int(years.min()), int(years.max()))
    period = f"{int(climatology_period[0])}-{int(climatology_period[1])}"
    ds = xr.Dataset(data_vars)
    ds["ocean_mask"] = ocean.astype("int8")
    ds["ocean_mask"].attrs = dict(OCEAN_MASK_ATTRS)
    clim_coords = cf.climatology_coords(climatology_period)
    ds = ds.assign_coords({cf.CLIMATOLOGY_TIME: clim_coords[cf.CLIMATOLOGY_TIME]})
    ds[cf.CLIMATOLOGY_BOUNDS] = clim_coords[cf.CLIMATOLOGY_BOUNDS]
    for name in FIELDS:
        attrs = {k: v for k, v in FIELD_ATTRS[name].items() if k != "cell_methods"}
        ds[f"{name}_climatology"] = clim_out[name].assign_attrs(
            attrs,
            long_name=f"monthly climatology of the {FIELD_NAMES[name]}, {period}",
            cell_methods="time: mean within years time: mean over years",
        )
        ds[f"{name}_anomaly_std"] = xr.DataArray(
            np.float32(std_out[name]),
            attrs={
                "long_name": f"standard deviation of the {FIELD_NAMES[name]} anomalies (against the monthly "
                f"climatology) over ocean cells, {period}",
                "units": FIELD_ATTRS[name]["units"],
                "cell_methods": "area: time: standard_deviation",
            },
        )
    years, months = year_month(first["time"])
    ds.attrs.update(
        {
            "title": f"{source_id}: monthly sea surface temperature and 20 degC isotherm depth on the ENSO Bridge grid",
            "source_id": source_id,
            "source_kind": source_kind,
            "climatology_period": period,
            "time_coverage_start": f"{int(years[0]):04d}-{int(months[0]):02d}",
            "time_coverage_end": f"{int(years[-1]):04d}-{int(months[-1]):02d}",
            "provenance": provenance_json or provenance(),
        }
    )
    if climatology_source:
        ds.attrs["climatology_source"] = climatology_source
    prov_hash = json.loads(ds.attrs["provenance"]).get("config_hash")
    if prov_hash:
        ds.attrs["config_hash"] = prov_hash
    if extra_attrs:
        ds.attrs.update(extra_attrs)
    return cf.complete(ds)


def write_store(ds: xr.Dataset, path: str | Path, *, time_chunk: int = 120) -> Path:
    """Write a store atomically, fields chunked along time (whole spatial slabs per chunk)."""
    ds = cf.complete(ds)  # again: variables added after build_store may bring coordinates without attributes
    encoding: dict = cf.time_encodings(ds)
    for name in FIELDS:
        chunks = tuple(
            min(time_chunk, n) if d == "time" else (1 if d == "member" else n) for d, n in ds[name].sizes.items()
        )
        encoding[name] = {"chunks": chunks}
    ds = ds.copy()
    for name in FIELDS:
        if ds[name].chunks is not None:
            ds[name] = ds[name].chunk({d: c for d, c in zip(ds[name].dims, encoding[name]["chunks"])})
    return write_zarr_atomic(ds, path, encoding=encoding)


def has_consolidated_metadata(path: str | Path) -> bool:
    """Whether a zarr store (format 2 or 3) holds consolidated metadata."""
    path = Path(path)
    if (path / ".zmetadata").is_file():
        return True
    try:
        meta = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(meta.get("consolidated_metadata"))


def open_zarr(path: str | Path, **kwargs) -> xr.Dataset:
    """``xr.open_zarr`` reading the consolidated metadata where the store has it and the store itself elsewhere
    (a partial store, a store of an older run), without the warning xarray gives when it has to guess."""
    return xr.open_zarr(path, consolidated=has_consolidated_metadata(path), **kwargs)


def open_zarr_checked(
    path: str | Path, what: str, required: Sequence[str] = (), *, chunks: dict | None | str = None
) -> xr.Dataset:
    """Open any of the project's zarr stores (cftime time axis) and check it holds ``required`` variables; every
    problem (missing, corrupt, wrong kind of store) is an InputDataError naming the path and ``what`` it should be."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(path, f"{what} does not exist")
    try:
        ds = open_zarr(path, chunks=chunks, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    except Exception as err:  # zarr raises several types for a corrupt store
        raise InputDataError(path, f"cannot open {what} as a zarr store ({type(err).__name__}: {err})") from None
    missing = [v for v in required if v not in ds.variables]
    if missing:
        raise InputDataError(path, f"not a {what}: missing {missing}")
    return ds


def open_store(path: str | Path, *, chunks: dict | None | str = None) -> xr.Dataset:
    """Open a store and check it has the project's form; errors name the path."""
    return open_zarr_checked(path, "store in the project's form", (*FIELDS, "ocean_mask"), chunks=chunks)


def field_anomalies(ds: xr.Dataset, name: str) -> xr.DataArray:
    """Anomalies of a store field against the store's own climatology."""
    return anomalies(ds[name], ds[f"{name}_climatology"])


def standardised_anomalies(ds: xr.Dataset, name: str) -> xr.DataArray:
    return field_anomalies(ds, name) / float(ds[f"{name}_anomaly_std"])
