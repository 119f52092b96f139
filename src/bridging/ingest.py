"""Ingestion: catalog → readers → thermocline depth → regridding → the source's analysis-ready store.

For an operational (CMIP6) model the SST is ``tos`` and the thermocline depth is computed from ``thetao`` (the
20 °C isotherm, :mod:`bridging.thermocline`); for the reanalysis (ORAS5) they are ``sosstsst`` and ``so20chgt``.
Both fields are regridded with the source's weights (computed once from its SST grid and land mask by
:func:`build_weights`, a rule output of its own), then assembled by :func:`bridging.stores.build_store` (full
fields, monthly climatology and anomaly std over the configured years) and written atomically.

Memory: ``thetao`` is read lazily in time chunks of ``ingest.read_chunk_mb`` and reduced to the 2-D thermocline
depth and regridded chunk by chunk; only the regridded fields, small on the target grid (months × 41 × 161 × 4 B,
52 MB per field for 165 years), are held in memory. The dask scheduler comes from ``ingest.scheduler``
(see :func:`dask_scheduler`); the share of the computation done is logged as it runs (:mod:`bridging.progress`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from . import __version__
from .errors import ConfigError, InputDataError
from .grid import TargetGrid
from .io.catalog import find_files
from .io.plausibility import bounded_file_cache
from .io.readers import input_files, open_variable
from .progress import compute, dask_progress
from .regrid import load_weights, regrid, save_weights, weights_from_config
from .settings import (
    DataSection,
    GridSection,
    IngestSection,
    OperationalModelSection,
    ReanalysisSection,
    RegridSection,
    config_hash,
)
from .stores import build_store, provenance, write_store
from .thermocline import thermocline_depth
from .timeaxis import month_counter, year_month

log = logging.getLogger(__name__)

#: the only interface a local dask.distributed cluster listens on
LOCALHOST = "127.0.0.1"


@dataclass(frozen=True)
class SourceSpec:
    """What to read for one source: catalog queries of its SST and thermocline variables, and its years."""

    name: str
    kind: str  # operational | reanalysis
    sst_query: dict
    thermocline_query: dict  # thetao (CMIP6, D20 computed) or so20chgt (ORAS5)
    years: tuple[int, int] | None
    thermocline_from_thetao: bool

    def as_config(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "sst": self.sst_query,
            "thermocline": self.thermocline_query,
            "years": self.years,
        }

    @classmethod
    def from_config(cls, cfg: dict) -> SourceSpec:
        """From ``{"kind": "operational", **<data.operational entry>}`` or ``{"kind": "reanalysis", **<data.reanalysis>}``
        (what the rules pass: only this source's config, so editing another source re-runs nothing here)."""
        cfg = dict(cfg)
        kind = cfg.pop("kind", None)
        if kind == "operational":
            model = OperationalModelSection.model_validate(cfg)
            common = dict(
                project="cmip6", source_id=model.source_id, experiment_id=model.experiment_id, member_id=model.member_id,
                table_id=model.table_id, grid_label=model.grid_label,
            )  # fmt: skip
            return cls(
                name=model.name,
                kind="operational",
                sst_query={**common, "variable_id": "tos"},
                thermocline_query={**common, "variable_id": "thetao"},
                years=tuple(model.years) if model.years is not None else None,
                thermocline_from_thetao=True,
            )
        if kind == "reanalysis":
            reanalysis = ReanalysisSection.model_validate(cfg)
            common = dict(project="oras5", source_id=reanalysis.source_id)
            return cls(
                name=reanalysis.name,
                kind="reanalysis",
                sst_query={**common, "variable_id": "sosstsst"},
                thermocline_query={**common, "variable_id": "so20chgt"},
                years=tuple(reanalysis.years),
                thermocline_from_thetao=False,
            )
        raise ConfigError(f"source config needs kind 'operational' or 'reanalysis', got {kind!r}")


def source_config(name: str, data: DataSection | dict) -> dict:
    """``{"kind": …, **entry}`` of the operational model or reanalysis called ``name`` in the ``data`` section."""
    data = DataSection.model_validate(data)
    for model in data.operational:
        if model.name == name:
            return {"kind": "operational", **model.model_dump(mode="json")}
    if data.reanalysis.name == name:
        return {"kind": "reanalysis", **data.reanalysis.model_dump(mode="json")}
    known = [m.name for m in data.operational] + [data.reanalysis.name]
    raise ConfigError(f"source {name!r} is neither an operational model nor the reanalysis in data (known: {known})")


def resolve_source(source: str | dict | SourceSpec, data: DataSection | dict | None = None) -> SourceSpec:
    """A SourceSpec from a spec, a source config dict (see :meth:`SourceSpec.from_config`) or a name plus ``data``."""
    if isinstance(source, SourceSpec):
        return source
    if isinstance(source, dict):
        return SourceSpec.from_config(source)
    if data is None:
        raise ConfigError(f"source {source!r} given by name needs the data config section to resolve it")
    return SourceSpec.from_config(source_config(source, data))


def _open(catalog: str | Path, query: dict, years, chunk_mb: float) -> xr.Dataset:
    files = find_files(catalog, years=years, **query)
    return open_variable(files, query["variable_id"], years=years, chunk_mb=chunk_mb)


@contextlib.contextmanager
def dask_scheduler(ingest: IngestSection | dict, threads: int = 1):
    """Run dask computations inside this block with the scheduler of ``ingest.scheduler``.

    * ``synchronous``: one thread, in order (debugging, smallest memory);
    * ``threads``: a thread pool of ``threads`` workers (the rule's threads); NumPy/SciPy release the GIL;
    * ``distributed``: a local ``dask.distributed`` cluster of ``ingest.n_workers`` worker processes, each with
      ``threads // n_workers`` threads and ``ingest.memory_limit`` of memory (workers spill, then pause, at it).
      Scheduler and workers listen on the loopback interface only (127.0.0.1; no dashboard): a cluster node's
      other users cannot reach them.

    A batch cluster plugs in the same way: with ``dask-jobqueue`` installed (not a dependency), replace the
    LocalCluster below by e.g. ``SLURMCluster(cores=4, memory="16GB", walltime="01:00:00", account=...)``, call
    ``cluster.scale(jobs=n)``, and open ``Client(cluster)``; the ingestion graph is unchanged, since its tasks only
    need the input files on a shared filesystem. Under Snakemake's SLURM executor this is rarely worth it: each
    source already runs as its own job.
    """
    import dask

    ingest = IngestSection.model_validate(ingest)
    threads = max(1, int(threads))
    if ingest.scheduler == "synchronous":
        with dask.config.set(scheduler="synchronous"):
            yield None
    elif ingest.scheduler == "threads":
        with dask.config.set(scheduler="threads", num_workers=threads):
            yield None
    else:
        from dask.distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=ingest.n_workers, threads_per_worker=max(1, threads // ingest.n_workers),
                memory_limit=ingest.memory_limit, processes=True, dashboard_address=None, host=LOCALHOST,
            ) as cluster,
            Client(cluster) as client,
        ):  # fmt: skip
            log.info("dask: local distributed cluster %s", cluster)
            yield client


def build_weights(
    out_path: str | Path,
    *,
    catalog: str | Path,
    source: str | dict | SourceSpec,
    grid: GridSection | dict,
    regrid_cfg: RegridSection | dict,
    data: DataSection | dict | None = None,
    chunk_mb: float = 128.0,
) -> Path:
    """Compute and save the regrid weights of ``source`` from its SST grid and its first month's land mask.

    ``source``: a source config dict (what the rule passes), a SourceSpec, or a name resolved in ``data``."""
    spec = resolve_source(source, data)
    target = TargetGrid.from_config(GridSection.model_validate(grid))
    regrid_cfg = RegridSection.model_validate(regrid_cfg)
    # Only the first year's files: the weights need the grid and the first month (a record of monthly files would
    # otherwise be opened whole twice, here and in ingest_source, which checks all of it).
    first_year = (spec.years[0], spec.years[0]) if spec.years is not None else None
    try:
        sst = _open(catalog, spec.sst_query, first_year, chunk_mb)
    except InputDataError as err:
        if first_year is None:
            raise
        raise InputDataError(
            err.path,
            f"{err.problem} (the regrid weights come from the first month of the years {spec.years[0]}–{spec.years[1]})",
        ) from None
    first = np.asarray(sst["sst"].isel(time=0).values)
    ocean = np.isfinite(first)
    weights = weights_from_config(sst["lat"].values, sst["lon"].values, ocean, target, regrid_cfg)
    log.info(
        "%s: weights from %d ocean points of a %s grid: %s", spec.name, int(ocean.sum()), ocean.shape, weights.stats
    )
    return save_weights(weights, out_path)


def _check_same_months(a: xr.DataArray, b: xr.DataArray, files_a, files_b) -> None:
    ca = month_counter(*year_month(a["time"]))
    cb = month_counter(*year_month(b["time"]))
    if ca.size != cb.size or (ca != cb).any():

        def span(c):
            y, m = divmod(int(c), 12)
            return f"{y:04d}-{m + 1:02d}"

        raise InputDataError(
            list(files_a) + list(files_b),
            f"the SST record ({span(ca[0])}…{span(ca[-1])}, {ca.size} months) and the thermocline record "
            f"({span(cb[0])}…{span(cb[-1])}, {cb.size} months) differ; set the source's years to a period both cover",
        )


def ingest_source(
    out_store: str | Path,
    *,
    catalog: str | Path,
    weights: str | Path,
    source: str | dict | SourceSpec,
    grid: GridSection | dict,
    ingest: IngestSection | dict,
    data: DataSection | dict | None = None,
    threads: int = 1,
) -> Path:
    """Build ``RUN/stores/<source>.zarr``: read, derive the thermocline depth, regrid, summarise, write atomically.

    ``source``: a source config dict (what the rule passes), a SourceSpec, or a name resolved in ``data``."""
    grid = GridSection.model_validate(grid)
    ingest = IngestSection.model_validate(ingest)
    spec = resolve_source(source, data)
    target = TargetGrid.from_config(grid)
    w = load_weights(weights, expected_target=target)

    sst_ds = _open(catalog, spec.sst_query, spec.years, ingest.read_chunk_mb)
    sst_files = input_files(sst_ds)
    thermo_ds = _open(catalog, spec.thermocline_query, spec.years, ingest.read_chunk_mb)
    thermo_files = input_files(thermo_ds)
    if spec.thermocline_from_thetao:
        thermo = thermocline_depth(thermo_ds["thetao"], ingest.isotherm, label=thermo_files)
    else:
        thermo = thermo_ds["thermocline_depth"]
    _check_same_months(sst_ds["sst"], thermo, sst_files, thermo_files)
    w.check_source(sst_ds["lat"].values, sst_ds["lon"].values, sst_files)
    w.check_source(thermo_ds["lat"].values, thermo_ds["lon"].values, thermo_files)

    sst_t = regrid(
        sst_ds["sst"], w, check_mask=True, max_missing_fraction=ingest.regrid.max_missing_fraction, label=sst_files
    )
    thermo_t = regrid(thermo, w, label=thermo_files)
    label = f"{spec.name}: reading, thermocline depth and regridding"
    with (
        dask_scheduler(ingest, threads) as client,
        bounded_file_cache(),
        dask_progress(label, client=client) as progress,
    ):
        sst_values, thermo_values = compute(sst_t, thermo_t, progress=progress)
    if not np.isfinite(thermo_values.values).any():
        what = (
            f"no column crosses the {ingest.isotherm:g} °C isotherm (ingest.isotherm)"
            if spec.thermocline_from_thetao
            else "it is missing everywhere"
        )
        raise InputDataError(
            thermo_files, f"the thermocline depth on the target grid is undefined in every cell and month: {what}"
        )
    fields = {"sst": sst_values, "thermocline_depth": thermo_values.assign_coords(time=sst_values["time"])}
    valid = np.isfinite(sst_values.values).all(axis=0)
    log.info(
        "%s: %d months on %s target cells, %d with SST in every month, %d with a thermocline depth in every month",
        spec.name, sst_values.sizes["time"], target.shape, int(valid.sum()), int(np.isfinite(thermo_values.values).all(axis=0).sum()),
    )  # fmt: skip

    source_cfg = spec.as_config()
    prov = provenance(
        [*sst_files, *thermo_files, str(weights)],
        config_hash=config_hash(
            {"source": source_cfg, "grid": grid.model_dump(mode="json"), "ingest": ingest.model_dump(mode="json")}
        ),
        source=spec.name,
        regrid_method=w.method,
        regrid_stats=w.stats,
        thermocline="20 degC isotherm from thetao" if spec.thermocline_from_thetao else "so20chgt as provided",
    )
    extra = {
        "catalog_source_id": spec.sst_query["source_id"],
        "regrid_method": w.method,
        "regrid_weights_source_fingerprint": w.source_fingerprint,
        "isotherm_degC": float(ingest.isotherm) if spec.thermocline_from_thetao else 20.0,
        "enso_bridge_version": __version__,
    }
    for key in ("experiment_id", "member_id", "grid_label"):
        if spec.sst_query.get(key):
            extra[key] = spec.sst_query[key]
    store = build_store(
        fields,
        source_id=spec.name,
        source_kind=spec.kind,
        climatology_period=spec.years,
        provenance_json=prov,
        extra_attrs=extra,
    )
    _check_ocean(store, sst_values, thermo_values, [*sst_files, *thermo_files], spec)
    return write_store(store, out_store, time_chunk=ingest.time_chunk)


def _check_ocean(store: xr.Dataset, sst: xr.DataArray, thermo: xr.DataArray, files, spec: SourceSpec) -> None:
    """Refuse a store without ocean: no target cell with both fields in every month (e.g. an isotherm crossed only
    in some months, or a source that does not cover the target grid)."""
    if int(store["ocean_mask"].sum()) > 0:
        return
    n_sst = int(np.isfinite(sst.values).all(axis=0).sum())
    n_thermo = int(np.isfinite(thermo.values).all(axis=0).sum())
    raise InputDataError(
        files,
        f"{spec.name}: the ocean mask is empty: no target cell has SST and thermocline depth in every month ({n_sst} "
        f"cells have SST in every month, {n_thermo} a thermocline depth); check the isotherm and the grid",
    )


# --------------------------------------------------------------------------------------------------------------
# File-level helpers behind the CLI (any supported files, no catalog needed)
# --------------------------------------------------------------------------------------------------------------


OUTPUT_SUFFIXES = (".nc", ".zarr")


def _write_output(
    ds: xr.Dataset, out: str | Path, *, refuse_all_nan: str | None = None, label=None, progress=None
) -> Path:
    """Write ``ds`` (lazy) to ``out`` (.nc or .zarr) atomically, in one pass. ``refuse_all_nan``: the reason to give
    when its data variable holds no finite value (counted while writing; nothing is left behind then). ``progress``:
    from :func:`bridging.progress.dask_progress`."""
    import dask.array as dsa

    from .atomic import atomic_output, consolidate, variable_length_strings, zarr_write_options
    from .timeaxis import time_encoding

    out = check_writable(out, OUTPUT_SUFFIXES)
    encoding = {"time": time_encoding()} if "time" in ds.coords else {}
    name = next(iter(ds.data_vars))
    data = ds[name].data
    finite = dsa.isfinite(data).sum() if isinstance(data, dsa.Array) else np.isfinite(data).sum()
    with atomic_output(out) as tmp:
        if out.suffix == ".zarr":
            write = variable_length_strings(ds).to_zarr(
                tmp, mode="w", encoding=encoding, compute=False, **zarr_write_options()
            )
        else:
            write = ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding, compute=False)
        _, n_finite = compute(write, finite, progress=progress)
        if refuse_all_nan is not None and int(n_finite) == 0:
            raise InputDataError(label, f"{name} is undefined (NaN) everywhere: {refuse_all_nan}; nothing written")
        if out.suffix == ".zarr":
            consolidate(tmp)
    return out


def check_writable(out, suffixes=OUTPUT_SUFFIXES) -> Path:
    """The output path, refused (ConfigError) before any computation when its suffix or folder is wrong."""
    from .atomic import check_writable as _check

    return _check(out, suffixes)


def regrid_files(
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    variable: str | None = None,
    grid: GridSection | dict | None = None,
    regrid_cfg: RegridSection | dict | None = None,
    weights_in: str | Path | None = None,
    weights_out: str | Path | None = None,
    chunk_mb: float = 128.0,
    scheduler: dict | None = None,
    threads: int = 1,
) -> Path:
    """Regrid one variable of any supported file(s) to the target grid and write ``out`` (.nc or .zarr).

    Weights are read from ``weights_in`` or computed from the first month's land mask (and saved to
    ``weights_out`` if given). 2-D fields are checked for a static land mask; for 3-D fields (thetao) the deeper
    levels' extra land is handled by the renormalisation of the weights.
    """
    target = TargetGrid.from_config(GridSection.model_validate(grid or {}))
    regrid_cfg = RegridSection.model_validate(regrid_cfg or {})
    check_writable(out)
    if weights_out is not None:
        check_writable(weights_out, (".nc",))
    ds = open_variable(list(inputs), variable, chunk_mb=chunk_mb)
    name = next(iter(ds.data_vars))
    field = ds[name]
    files = input_files(ds)
    if weights_in is not None:
        weights = load_weights(weights_in, expected_target=target)
    else:
        first = field.isel(time=0)
        if "depth" in first.dims:
            first = first.isel(depth=0)
        weights = weights_from_config(ds["lat"].values, ds["lon"].values, np.isfinite(first.values), target, regrid_cfg)
        if weights_out is not None:
            save_weights(weights, weights_out)
    out_field = regrid(
        field,
        weights,
        check_mask="depth" not in field.dims,
        max_missing_fraction=regrid_cfg.max_missing_fraction,
        label=files,
    )
    result = out_field.to_dataset(name=name)
    result.attrs = {
        "source_files": "\n".join(files),
        "regrid_method": weights.method,
        "history": f"bridging regrid ({__version__})",
    }
    with (
        dask_scheduler(scheduler or {"scheduler": "threads"}, threads) as client,
        bounded_file_cache(),
        dask_progress(f"regridding to {out}", client=client) as progress,
    ):
        return _write_output(result, out, progress=progress)


def thermocline_files(
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    isotherm: float = 20.0,
    chunk_mb: float = 128.0,
    scheduler: dict | None = None,
    threads: int = 1,
) -> Path:
    """The isotherm depth of ``thetao`` file(s) on their native grid, written to ``out`` (.nc or .zarr).

    A result without any finite depth (no column crosses the isotherm) is an error, and nothing is written."""
    check_writable(out)
    if not np.isfinite(isotherm) or not -5.0 <= float(isotherm) <= 45.0:
        raise ConfigError(f"isotherm {isotherm!r}: must be a finite temperature within -5…45 °C")
    ds = open_variable(list(inputs), None, chunk_mb=chunk_mb)
    if "thetao" not in ds:
        raise InputDataError(
            input_files(ds), f"no potential temperature (thetao/votemper) in these files, found {list(ds.data_vars)}"
        )
    depth = thermocline_depth(ds["thetao"], isotherm, label=input_files(ds))
    result = depth.to_dataset()
    result.attrs = {"source_files": "\n".join(input_files(ds)), "history": f"bridging thermocline ({__version__})"}
    reason = f"no column crosses the {isotherm:g} °C isotherm (is it within the profiles' range?)"
    with (
        dask_scheduler(scheduler or {"scheduler": "threads"}, threads) as client,
        bounded_file_cache(),
        dask_progress(f"thermocline depth to {out}", client=client) as progress,
    ):
        return _write_output(result, out, refuse_all_nan=reason, label=input_files(ds), progress=progress)
