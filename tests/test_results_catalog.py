"""The catalog of a run's outputs: one row per store or diagnostics file at its RunLayout path, read back by intake."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bridging.errors import InputDataError
from bridging.io.catalog import load_datasets
from bridging.io.results_catalog import build_results_catalog, run_outputs
from bridging.layout import RunLayout

NAMES = dict(
    operational=["M1"], reanalysis="REA", idealized="cf23",
    gridded_diagnostics=["M1", "REA", "bridging_M1", "free_run_M1"],
    idealized_diagnostics=["idealized_cf23", "pseudo_obs_cf23"],
)  # fmt: skip


def _dataset(name: str) -> xr.Dataset:
    return xr.Dataset({name: (("time",), np.arange(3.0))}, coords={"time": np.arange(3)})


def _write_outputs(layout: RunLayout) -> list:
    outputs = run_outputs(layout, **NAMES)
    for output in outputs:
        Path(output.path).parent.mkdir(parents=True, exist_ok=True)
        ds = _dataset(f"{output.kind}_field")
        if output.format == "zarr":
            ds.to_zarr(output.path, mode="w", consolidated=True)
        else:
            ds.to_netcdf(output.path)
    return outputs


@pytest.fixture
def layout(tmp_path) -> RunLayout:
    return RunLayout(str(tmp_path / "results"), "r")


def test_every_output_is_listed_at_its_layout_path(layout):
    outputs = run_outputs(layout, **NAMES)
    keys = {f"{o.kind}.{o.source_id}": o.path for o in outputs}
    assert keys["ingested.M1"] == layout.store("M1") and keys["ingested.REA"] == layout.store("REA")
    assert keys["idealized_reference.cf23"] == layout.idealized_reference("cf23")
    assert keys["pseudo_obs.cf23"] == layout.pseudo_obs("cf23")
    assert keys["latent_operational.M1"] == layout.latent("M1", "operational")
    assert keys["latent_reanalysis.M1"] == layout.latent("M1", "reanalysis")
    assert keys["assimilation.M1"] == layout.assimilation("M1") and keys["free_run.M1"] == layout.free_run("M1")
    assert keys["bridging.M1"] == layout.decoded("bridging", "M1")
    assert keys["free_run_decoded.M1"] == layout.decoded("free_run", "M1")
    assert keys["maps.bridging_M1"] == layout.source_diagnostics("bridging_M1", "maps.nc")
    assert keys["indices.idealized_cf23"] == layout.source_diagnostics("idealized_cf23", "indices.nc")
    assert "maps.idealized_cf23" not in keys
    assert len(keys) == len(outputs) == 4 + 6 + 2 * 4 + 2
    models = {f"{o.kind}.{o.source_id}": o.model for o in outputs}
    assert models["maps.free_run_M1"] == "M1" and models["maps.REA"] == "" and models["ingested.REA"] == ""
    with pytest.raises(ValueError, match=r"share the key\(s\) \['ingested.M1'\]"):
        run_outputs(layout, **{**NAMES, "reanalysis": "M1"})


def test_catalog_opens_every_output_with_intake(layout):
    import intake

    outputs = _write_outputs(layout)
    assert layout.results_catalog("json") == f"{layout.root}/catalog.json"
    assert layout.results_catalog("csv", "diagnostics") == f"{layout.root}/diagnostics/catalog.csv"
    parts = build_results_catalog(layout, **NAMES)
    assert len(parts["stores"]) + len(parts["diagnostics"]) == len(outputs)
    for part, fmt in (("stores", "zarr"), ("diagnostics", "netcdf")):
        spec = json.loads(Path(layout.results_catalog("json", part)).read_text())
        assert spec["aggregation_control"]["groupby_attrs"] == ["kind", "source_id"]
        table = pd.read_csv(layout.results_catalog("csv", part))
        assert list(table.columns) == [
            "run",
            "kind",
            "source_id",
            "model",
            "variable_id",
            "format",
            "description",
            "path",
        ]
        assert set(table["format"]) == {fmt} and len(table) == len(parts[part])
        assert all(p.startswith("file:///") if fmt == "zarr" else Path(p).is_absolute() for p in table["path"])

    # the stores with intake-esm's defaults (threads, dask's "auto" chunks); the netCDF files one at a time
    cat = intake.open_esm_datastore(layout.results_catalog("json"))
    assert cat.search(kind="bridging").df["variable_id"].tolist() == ["bridging_field"]
    dsets = cat.to_dataset_dict(progressbar=False)
    assert set(dsets) == {f"{o.kind}.{o.source_id}" for o in outputs if o.format == "zarr"}
    np.testing.assert_array_equal(dsets["bridging.M1"]["bridging_field"].values, [0.0, 1.0, 2.0])
    diagnostics = load_datasets(layout.results_catalog("json", "diagnostics"))
    assert set(diagnostics) == {f"{o.kind}.{o.source_id}" for o in outputs if o.format == "netcdf"}
    maps = diagnostics["maps.bridging_M1"]
    assert list(maps.data_vars) == ["maps_field"] and maps.attrs["intake_esm_attrs:kind"] == "maps"


def test_a_missing_output_is_an_error_naming_it_and_nothing_is_written(layout):
    outputs = _write_outputs(layout)
    missing = next(o for o in outputs if o.kind == "free_run_decoded")
    shutil.rmtree(missing.path)
    with pytest.raises(InputDataError, match=rf"{missing.path}.*does not exist"):
        build_results_catalog(layout, **NAMES)
    written = [layout.results_catalog(suffix, part) for suffix in ("json", "csv") for part in ("stores", "diagnostics")]
    assert not any(Path(p).exists() for p in written)
