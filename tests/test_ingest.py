"""Ingestion end to end: files in the real layouts → catalog → weights → stores, bad input leaving no store, the
dask schedulers, the CLI, and the Snakemake rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import netCDF4
import numpy as np
import pytest
import xarray as xr
import yaml

from bridging.cli import main
from bridging.errors import ConfigError, InputDataError
from bridging.fixtures import pacific_land_mask
from bridging.fixtures.mock import mock_cesm2, mock_gfdl_cm4, mock_oras5, smooth_d20, smooth_sst
from bridging.grid import TargetGrid
from bridging.ingest import build_weights, ingest_source, resolve_source, source_config
from bridging.io.catalog import build_catalog
from bridging.layout import sentinel
from bridging.stores import open_store
from bridging.timeaxis import year_month

TARGET = TargetGrid()
TLAT, TLON = np.meshgrid(TARGET.lat, TARGET.lon, indexing="ij")
OCEAN_TARGETS = ~pacific_land_mask(TLAT, TLON)
DATA = {
    "catalog_roots": ["unused"],
    "operational": [
        {"name": "M-CESM2", "source_id": "CESM2"},
        {"name": "M-GFDL", "source_id": "GFDL-CM4", "years": [2009, 2010]},
    ],
    "reanalysis": {"years": [2014, 2015]},
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("ingest_archive")
    sources = {
        "M-CESM2": mock_cesm2(root / "data", first_year=2000, n_years=2, resolution=2.0),
        "M-GFDL": mock_gfdl_cm4(root / "data", first_year=2008, n_years=3, resolution=2.0),
        "ORAS5": mock_oras5(root / "data", first_year=2013, n_years=3, resolution=2.0),
    }
    catalog, _ = build_catalog([root / "data"], root / "catalog" / "catalog.json")
    return root, catalog, sources


def _ingest(root, catalog, name, **ingest):
    weights = build_weights(
        root / "weights" / f"{name}.nc", catalog=catalog, source=name, data=DATA, grid={}, regrid_cfg={}
    )
    out = root / "stores" / f"{name}.zarr"
    return ingest_source(
        out, catalog=catalog, weights=weights, source=name, data=DATA, grid={}, ingest=ingest, threads=2
    )


@pytest.mark.parametrize("name", ["M-CESM2", "M-GFDL", "ORAS5"])
def test_store_holds_the_true_fields_on_the_target_grid(archive, name):
    root, catalog, sources = archive
    src = sources[name]
    store = open_store(_ingest(root, catalog, name))
    years, months = year_month(store["time"])
    expected_years = {"M-CESM2": (2000, 2001), "M-GFDL": (2009, 2010), "ORAS5": (2014, 2015)}[name]
    assert (years.min(), years.max()) == expected_years and store.sizes["time"] == 24
    assert store.attrs["source_id"] == name
    assert store.attrs["source_kind"] == ("reanalysis" if name == "ORAS5" else "operational")
    assert store.attrs["climatology_period"] == f"{expected_years[0]}-{expected_years[1]}"
    counter = years * 12 + months - 1
    for field, truth_fn in (("sst", smooth_sst), ("thermocline_depth", smooth_d20)):
        values = store[field].values
        truth = truth_fn(TLAT, TLON, counter)
        value_range = np.ptp(truth[:, OCEAN_TARGETS])
        assert np.isfinite(values[:, OCEAN_TARGETS]).all(), f"{field}: an ocean target is NaN"
        error = np.abs(values - truth)[:, OCEAN_TARGETS].max() / value_range
        assert error < 0.01, f"{name} {field}: max error {error:.2%} of the range"
    assert store["ocean_mask"].values[OCEAN_TARGETS].all()
    clim = store["sst_climatology"].sel(month=3).values
    np.testing.assert_allclose(clim, store["sst"].values[months == 3].mean(axis=0), atol=1e-4, equal_nan=True)
    prov = json.loads(store.attrs["provenance"])
    assert prov["config_hash"] and prov["source"] == name
    assert set(map(str, src.all_files)) >= {f for f in prov["input_files"] if f.endswith(".nc") and "weights" not in f}
    assert store.attrs["regrid_method"] == "bilinear"


def test_bad_input_leaves_no_store(archive, tmp_path):
    root, _, _ = archive
    data_root = tmp_path / "data"
    shutil.copytree(root / "data", data_root)
    gfdl_tos = sorted(data_root.rglob("tos_Omon_GFDL-CM4_*.nc"))
    gfdl_tos[0].unlink()  # 2008–2009 file: the years 2009–2010 lose 2009
    catalog, _ = build_catalog([data_root], tmp_path / "catalog.json")
    out = tmp_path / "stores" / "M-GFDL.zarr"
    with pytest.raises(
        InputDataError, match="no file covers any month of 2009–2009 .*first month of the years 2009–2010"
    ):
        weights = build_weights(tmp_path / "w.nc", catalog=catalog, source="M-GFDL", data=DATA, grid={}, regrid_cfg={})
    weights = build_weights(tmp_path / "w.nc", catalog=catalog, source="M-CESM2", data=DATA, grid={}, regrid_cfg={})
    with pytest.raises(InputDataError, match="does not include every month"):
        ingest_source(out, catalog=catalog, weights=weights, source="M-GFDL", data=DATA, grid={}, ingest={})
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir()), "no temporary left behind"

    # Weights of another grid: the error names the input files.
    data = {**DATA, "operational": [{"name": "M-GFDL", "source_id": "GFDL-CM4", "years": [2010, 2010]}]}
    with pytest.raises(InputDataError, match="grid shape .* differs from the regrid weights' source grid") as err:
        ingest_source(out, catalog=catalog, weights=weights, source="M-GFDL", data=data, grid={}, ingest={})
    assert "tos_Omon_GFDL-CM4" in str(err.value)
    assert not out.exists()


def test_thetao_and_tos_records_must_agree(tmp_path):
    mock_cesm2(tmp_path / "a", first_year=2000, n_years=2, resolution=4.0, with_thetao=False)
    mock_cesm2(tmp_path / "b", first_year=2000, n_years=1, resolution=4.0)
    for f in (tmp_path / "b").rglob("tos_*.nc"):
        f.unlink()
    catalog, _ = build_catalog([tmp_path / "a", tmp_path / "b"], tmp_path / "catalog.json")
    weights = build_weights(
        tmp_path / "w.nc", catalog=catalog, source="M-CESM2", data=DATA, grid={}, regrid_cfg={"max_distance_deg": 4.0}
    )
    with pytest.raises(
        InputDataError, match=r"SST record \(2000-01…2001-12, 24 months\) and the thermocline record \(2000-01…2000-12"
    ):
        ingest_source(
            tmp_path / "s.zarr", catalog=catalog, weights=weights, source="M-CESM2", data=DATA, grid={}, ingest={}
        )
    assert not (tmp_path / "s.zarr").exists()


def test_changing_land_mask_is_an_error_naming_the_month(tmp_path):
    src = mock_oras5(tmp_path / "data", first_year=2014, n_years=2, resolution=4.0)
    with netCDF4.Dataset(src.files["sosstsst"][15], "a") as nc:  # 2015-04: a third of the ocean goes missing
        values = nc["sosstsst"][:]
        values[:, : values.shape[1] // 3] = np.ma.masked
        nc["sosstsst"][:] = values
    catalog, _ = build_catalog([tmp_path / "data"], tmp_path / "catalog.json")
    weights = build_weights(
        tmp_path / "w.nc", catalog=catalog, source="ORAS5", data=DATA, grid={}, regrid_cfg={"max_distance_deg": 4.0}
    )
    with pytest.raises(InputDataError, match=r"month 2015-04 .* the land mask must be static") as err:
        ingest_source(
            tmp_path / "s.zarr", catalog=catalog, weights=weights, source="ORAS5", data=DATA, grid={}, ingest={}
        )
    assert "sosstsst_control_monthly_highres_2D_" in str(err.value)
    assert not (tmp_path / "s.zarr").exists()


def test_source_resolution():
    spec = resolve_source("M-GFDL", DATA)
    assert spec.kind == "operational" and spec.years == (2009, 2010)
    assert spec.thermocline_query["variable_id"] == "thetao" and spec.sst_query["table_id"] == "Omon"
    assert resolve_source(source_config("ORAS5", DATA)).thermocline_query["variable_id"] == "so20chgt"
    with pytest.raises(ConfigError, match="neither an operational model nor the reanalysis"):
        resolve_source("MIROC6", DATA)
    with pytest.raises(ConfigError, match="kind"):
        resolve_source({"name": "x"})


def test_schedulers_agree(archive, tmp_path):
    root, catalog, _ = archive
    weights = build_weights(tmp_path / "w.nc", catalog=catalog, source="M-CESM2", data=DATA, grid={}, regrid_cfg={})
    stores = {}
    for scheduler in ("synchronous", "threads"):
        out = ingest_source(
            tmp_path / f"{scheduler}.zarr", catalog=catalog, weights=weights, source="M-CESM2", data=DATA, grid={},
            ingest={"scheduler": scheduler, "read_chunk_mb": 0.2}, threads=2,
        )  # fmt: skip
        stores[scheduler] = open_store(out)
    xr.testing.assert_identical(stores["synchronous"]["sst"], stores["threads"]["sst"])
    xr.testing.assert_identical(stores["synchronous"]["thermocline_depth"], stores["threads"]["thermocline_depth"])


@pytest.mark.slow
def test_distributed_scheduler(archive, tmp_path):
    root, catalog, _ = archive
    weights = build_weights(tmp_path / "w.nc", catalog=catalog, source="ORAS5", data=DATA, grid={}, regrid_cfg={})
    ingest = {"scheduler": "distributed", "n_workers": 1, "memory_limit": "1GB", "read_chunk_mb": 0.2}
    out = ingest_source(
        tmp_path / "d.zarr",
        catalog=catalog,
        weights=weights,
        source="ORAS5",
        data=DATA,
        grid={},
        ingest=ingest,
        threads=2,
    )
    reference = ingest_source(
        tmp_path / "t.zarr", catalog=catalog, weights=weights, source="ORAS5", data=DATA, grid={}, ingest={}, threads=1
    )
    xr.testing.assert_identical(open_store(out)["thermocline_depth"], open_store(reference)["thermocline_depth"])


def test_cli_regrid_thermocline_and_ingest(archive, tmp_path, capsys):
    root, catalog, sources = archive
    cesm = sources["M-CESM2"]
    out = tmp_path / "tos_1deg.nc"
    assert (
        main(
            [
                "regrid",
                *map(str, cesm.files["tos"]),
                "--variable",
                "tos",
                "--out",
                str(out),
                "--save-weights",
                str(tmp_path / "w.nc"),
            ]
        )
        == 0
    )
    regridded = xr.open_dataset(out)
    assert regridded["sst"].shape == (24, 41, 161)
    assert (
        main(
            [
                "regrid",
                *map(str, cesm.files["tos"]),
                "--out",
                str(tmp_path / "again.zarr"),
                "--weights",
                str(tmp_path / "w.nc"),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(
        xr.open_zarr(tmp_path / "again.zarr", consolidated=False)["sst"].values, regridded["sst"].values
    )
    coarse = tmp_path / "thetao_2deg.nc"
    assert (
        main(["regrid", *map(str, cesm.files["thetao"]), "--out", str(coarse), "--resolution", "2", "--method", "idw"])
        == 0
    )
    assert xr.open_dataset(coarse)["thetao"].shape == (24, 24, 21, 81)

    d20 = tmp_path / "d20.zarr"
    assert main(["thermocline", *map(str, cesm.files["thetao"]), "--out", str(d20), "--chunk-mb", "0.5"]) == 0
    values = xr.open_zarr(d20, consolidated=False)["thermocline_depth"].values
    ocean = np.isfinite(cesm.thermocline_depth)
    np.testing.assert_allclose(values[ocean], cesm.thermocline_depth[ocean], atol=0.01)

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"demo": {"enabled": False}, "data": DATA}))
    store = tmp_path / "cli.zarr"
    args = [
        "ingest",
        "--catalog",
        str(catalog),
        "--source",
        "ORAS5",
        "--out",
        str(store),
        "--config",
        "config/config.default.yaml",
        str(config),
    ]
    assert main(args) == 0
    assert open_store(store).sizes["time"] == 24 and (tmp_path / "cli.weights.nc").is_file()

    capsys.readouterr()
    assert main(["regrid", str(cesm.files["tos"][0]), "--variable", "thetao", "--out", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert "has no variable 'thetao'" in err and str(cesm.files["tos"][0]) in err and "Traceback" not in err
    assert not (tmp_path / "x.nc").exists()


@pytest.mark.slow
def test_snakemake_rules_catalog_weights_ingest(archive, tmp_path, project_root):
    """The catalog, regrid_weights and ingest rules on the mock archive, through Snakemake (demo disabled)."""
    root, _, _ = archive
    work = tmp_path / "workflow_copy"
    work.mkdir()
    for name in ("src", "scripts", "workflow", "config", "envs"):
        (work / name).symlink_to(project_root / name)
    (work / "Snakefile").write_text(
        'configfile: "config/config.default.yaml"\n'
        'include: "workflow/rules/common.smk"\n'
        'include: "workflow/rules/catalog.smk"\n'
        'include: "workflow/rules/ingest.smk"\n'
    )
    overlay = tmp_path / "overlay.yaml"
    results = tmp_path / "results"
    overlay.write_text(yaml.safe_dump({
        "run": {"name": "t", "results_dir": str(results)},
        "demo": {"enabled": False},
        "data": {**DATA, "catalog_roots": [str(root / "data")]},
    }))  # fmt: skip
    stores = [str(results / "t" / "stores" / f"{s}.zarr") for s in ("M-CESM2", "M-GFDL", "ORAS5")]
    targets = [sentinel(store) for store in stores]  # the rules' outputs that stand for the stores
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(project_root / "src")}
    snakemake = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "2",
        "--configfile",
        str(overlay),
        "--directory",
        str(work),
        "-s",
        str(work / "Snakefile"),
    ]
    run = subprocess.run([*snakemake, *targets], capture_output=True, text=True, env=env, cwd=work)
    assert run.returncode == 0, run.stderr[-3000:]
    for store in stores:
        assert open_store(store).sizes["time"] == 24
    assert (results / "t" / "catalog" / "catalog.csv").is_file() and (results / "t" / "weights" / "ORAS5.nc").is_file()
    dry = subprocess.run([*snakemake, "-n", *targets], capture_output=True, text=True, env=env, cwd=work)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    # Editing one model's years re-runs that model's weights and store only.
    data = {**DATA, "catalog_roots": [str(root / "data")]}
    data["operational"] = [dict(m) for m in data["operational"]]
    data["operational"][1]["years"] = [2010, 2010]
    overlay.write_text(
        yaml.safe_dump({"run": {"name": "t", "results_dir": str(results)}, "demo": {"enabled": False}, "data": data})
    )
    dry = subprocess.run([*snakemake, "-n", *targets], capture_output=True, text=True, env=env, cwd=work)
    out = dry.stdout + dry.stderr
    assert "M-GFDL" in out and "wildcards: source=M-CESM2" not in out and "wildcards: source=ORAS5" not in out


def test_weights_read_only_the_first_year_and_readers_close_their_files(archive, tmp_path, monkeypatch):
    """At ORAS5's size (one file a month) the weights would otherwise open the whole record a second time, and 128
    open files keep gigabytes of decompressed chunks (bench/bench_ingest_orca025.py)."""
    from xarray.backends.file_manager import FILE_CACHE

    import bridging.ingest as ingest_module

    root, catalog, sources = archive
    opened = []
    real_open = ingest_module.open_variable

    def recording_open(files, *args, **kwargs):
        opened.append(list(files))
        return real_open(files, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "open_variable", recording_open)
    build_weights(tmp_path / "w.nc", catalog=catalog, source="ORAS5", data=DATA, grid={}, regrid_cfg={})
    assert [len(f) for f in opened] == [12], "the first year's 12 monthly files, not the whole record"
    before = len(FILE_CACHE)
    from bridging.io.readers import open_variable

    open_variable(sources["ORAS5"].files["sosstsst"][:12], "sosstsst")
    assert len(FILE_CACHE) <= before, "files are closed after they were checked"


def test_orca025_like_grid_has_orca025s_size_and_wrap_columns():
    from bridging.fixtures import orca025_like_global_grid

    grid = orca025_like_global_grid()
    assert grid.shape == (1021, 1442)
    np.testing.assert_array_equal(grid.lon[:, 0], grid.lon[:, 1440])
    np.testing.assert_array_equal(grid.lat[:, -1], grid.lat[:, 1])
    equator = int(np.argmin(np.abs(grid.lat[:, 700])))
    assert grid.lat[equator + 1, 700] - grid.lat[equator, 700] == pytest.approx(0.25, abs=1e-6)
    assert grid.lat.min() < -76 and 0.5 < grid.ocean.mean() < 0.7
