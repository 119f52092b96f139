"""The catalogs of a run's outputs, as intake-esm datastores: the zarr stores, and the diagnostics netCDF files.

``results/<run>/catalog.json`` lets a user open the run's stores without knowing its folder layout::

    dsets = intake.open_esm_datastore("results/demo/catalog.json").to_dataset_dict()   # {"<kind>.<source_id>": ...}

``results/<run>/diagnostics/catalog.json`` lists the diagnostics netCDF files (Niño indices and maps per source).
They are a catalog of their own because intake-esm's ``to_dataset_dict`` opens keys in a thread pool (whatever its
``threaded`` says), which netCDF4-python does not survive (intake-esm issue 697; see :mod:`bridging.io.catalog`):
open that one key at a time, ``cat[key].to_dask()``. Zarr is safe in threads, so the stores' catalog works with intake-esm's defaults (the stores' text labels are CF flags, which dask's
automatic chunking accepts).

One row per output (paths from :class:`bridging.layout.RunLayout`, absolute so the catalogs work from any working
directory: a ``file://`` URI for a zarr store, see :func:`asset_path`), columns ``run, kind, source_id, model,
variable_id, format, description, path``; ``variable_id`` names the output's data variables, separated by spaces
(one string: intake-esm 2025.12 fails on a row whose variable column is a list of several names). The rows are
embedded in the JSON (``catalog_dict``: the JSON alone is the catalog); ``catalog.csv`` beside it is the same table
for pandas or a spreadsheet. Each (kind, source_id) pair is one output, so intake-esm opens every output as it is,
with no aggregation. :func:`bridging.io.catalog.load_datasets` opens either catalog one file at a time.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_text_atomic
from ..errors import InputDataError
from ..layout import RunLayout

log = logging.getLogger(__name__)

COLUMNS = ("run", "kind", "source_id", "model", "variable_id", "format", "description", "path")

#: what each kind of output is (the catalog's ``kind`` column; keys are ``<kind>.<source_id>``)
KINDS = {
    "ingested": "analysis-ready store of an input source (operational model or reanalysis) on the target grid",
    "idealized_reference": "the idealized model's long reference run",
    "pseudo_obs": "pseudo-observations drawn from the idealized model",
    "latent_operational": "the operational model's record encoded into the model's latent space",
    "latent_reanalysis": "the reanalysis encoded into the model's latent space",
    "assimilation": "the latent EnKF run (analysis ensemble, innovations, filter health)",
    "free_run": "the filter's control without analysis, in the latent space",
    "bridging": "the bridging model: the decoded analysis ensemble",
    "free_run_decoded": "the decoded free run",
    "indices": "ENSO index time series of a diagnostics source (netCDF)",
    "maps": "ENSO statistics maps of a diagnostics source (netCDF)",
}


@dataclass(frozen=True)
class Output:
    """One output of a run: its kind, the source it belongs to, and where it lies."""

    kind: str
    source_id: str
    model: str
    path: str

    @property
    def format(self) -> str:
        return "zarr" if self.path.endswith(".zarr") else "netcdf"


def run_outputs(
    layout: RunLayout,
    *,
    operational: Sequence[str],
    reanalysis: str,
    idealized: str,
    gridded_diagnostics: Sequence[str] = (),
    idealized_diagnostics: Sequence[str] = (),
) -> list[Output]:
    """Every output store and diagnostics netCDF file of a run, in pipeline order.

    ``gridded_diagnostics`` are the diagnostics sources with indices and maps, ``idealized_diagnostics`` those with
    indices only (the workflow's names, e.g. ``bridging_<model>``, ``idealized_<model>``)."""
    outputs = [Output("ingested", name, name, layout.store(name)) for name in operational]
    outputs.append(Output("ingested", reanalysis, "", layout.store(reanalysis)))
    outputs.append(Output("idealized_reference", idealized, "", layout.idealized_reference(idealized)))
    outputs.append(Output("pseudo_obs", idealized, "", layout.pseudo_obs(idealized)))
    for model in operational:
        outputs += [
            Output("latent_operational", model, model, layout.latent(model, "operational")),
            Output("latent_reanalysis", model, model, layout.latent(model, "reanalysis")),
            Output("assimilation", model, model, layout.assimilation(model)),
            Output("free_run", model, model, layout.free_run(model)),
            Output("bridging", model, model, layout.decoded("bridging", model)),
            Output("free_run_decoded", model, model, layout.decoded("free_run", model)),
        ]
    for name in gridded_diagnostics:
        model = next((m for m in operational if name in (m, *(f"{k}_{m}" for k in ("bridging", "free_run")))), "")
        outputs.append(Output("indices", name, model, layout.source_diagnostics(name, "indices.nc")))
        outputs.append(Output("maps", name, model, layout.source_diagnostics(name, "maps.nc")))
    for name in idealized_diagnostics:
        outputs.append(Output("indices", name, "", layout.source_diagnostics(name, "indices.nc")))
    keys = [(o.kind, o.source_id) for o in outputs]
    duplicated = sorted({f"{k}.{s}" for k, s in keys if keys.count((k, s)) > 1})
    if duplicated:
        raise ValueError(f"results catalog: several outputs share the key(s) {duplicated}")
    return outputs


def data_variables(output: Output) -> list[str]:
    """The data variables of an output, read from its metadata (no data is loaded); errors name the file."""
    import xarray as xr

    from ..stores import open_zarr_checked

    path = Path(output.path)
    if output.format == "zarr":
        with warnings.catch_warnings():  # a store's own warnings (metadata form) are not the catalog's business
            warnings.simplefilter("ignore")
            ds = open_zarr_checked(path, f"{output.kind} store")
    else:
        if not path.is_file():
            raise InputDataError(path, f"{output.kind} file does not exist")
        try:
            ds = xr.open_dataset(path, decode_times=False)
        except Exception as err:
            raise InputDataError(path, f"cannot open as netCDF ({type(err).__name__}: {err})") from None
    with ds:
        names = sorted(str(v) for v in ds.data_vars)
    if not names:
        raise InputDataError(path, f"{output.kind} output holds no data variable")
    return names


def asset_path(output: Output) -> str:
    """The catalog's path of an output: absolute; a ``file://`` URI for a zarr store, because intake-esm hands zarr
    an (empty) ``storage_options``, which zarr 3 accepts only with a URI and refuses with a plain path."""
    path = Path(output.path).resolve()
    return path.as_uri() if output.format == "zarr" else str(path)


#: what each catalog holds (its ``description``), by part of the run (:meth:`RunLayout.results_catalog`)
PART_DESCRIPTIONS = {
    "stores": "zarr stores",
    "diagnostics": "diagnostics netCDF files (open one key at a time, cat[key].to_dask(): netCDF4-python is not "
    "thread-safe and to_dataset_dict() opens keys in threads)",
}


def collection_spec(run: str, part: str, rows: list[dict]) -> dict:
    """The ESM collection JSON (https://github.com/NCAR/esm-collection-spec) with the rows embedded."""
    return {
        "esmcat_version": "0.1.0",
        "id": f"enso-bridge-{part}-{run}",
        "description": f"The {PART_DESCRIPTIONS[part]} of the ENSO Bridge run '{run}' (written by the "
        "results_catalog rule). Keys of to_dataset_dict(): '<kind>.<source_id>'.",
        "attributes": [{"column_name": c, "vocabulary": ""} for c in COLUMNS if c != "path"],
        "assets": {"column_name": "path", "format_column_name": "format"},
        "aggregation_control": {
            "variable_column_name": "variable_id",
            "groupby_attrs": ["kind", "source_id"],
            "aggregations": [],
        },
        "catalog_dict": rows,
    }


def build_results_catalog(layout: RunLayout, **names) -> dict[str, list[dict]]:
    """Write the run's two catalogs (each a JSON with the rows embedded, and the same table as CSV, at
    :meth:`RunLayout.results_catalog`), atomically: the zarr stores, and the diagnostics netCDF files.

    ``names`` are :func:`run_outputs`'s keyword arguments. Every output must exist and open: a missing or unreadable
    one is an InputDataError naming it, and nothing is written. Returns the rows by part."""
    import pandas as pd

    parts: dict[str, list[dict]] = {"stores": [], "diagnostics": []}
    for output in run_outputs(layout, **names):
        parts["stores" if output.format == "zarr" else "diagnostics"].append(
            {
                "run": layout.run_name, "kind": output.kind, "source_id": output.source_id, "model": output.model,
                "variable_id": " ".join(data_variables(output)), "format": output.format, "description": KINDS[output.kind],
                "path": asset_path(output),
            }
        )  # fmt: skip
    for part, rows in parts.items():
        table = pd.DataFrame(rows, columns=list(COLUMNS))
        json_out = layout.results_catalog("json", part)
        write_text_atomic(table.to_csv(index=False), layout.results_catalog("csv", part))
        write_text_atomic(json.dumps(collection_spec(layout.run_name, part, rows), indent=2) + "\n", json_out)
        log.info(
            "results catalog (%s): %d outputs → %s\n%s",
            part,
            len(rows),
            json_out,
            table[["kind", "source_id"]].to_string(),
        )
    return parts
