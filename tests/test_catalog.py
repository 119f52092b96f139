"""The input catalog: scanning DRS trees and flat folders, the intake-esm collection, and searching it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bridging.cli import main
from bridging.errors import ConfigError, InputDataError
from bridging.fixtures.mock import mock_cesm2, mock_gfdl_cm4, mock_oras5
from bridging.io.catalog import (
    build_catalog,
    find_files,
    listing_fingerprint,
    load_datasets,
    open_source,
    parse_file,
    scan,
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    mock_cesm2(root, n_years=1, resolution=8.0)
    mock_gfdl_cm4(root, first_year=2008, n_years=3, resolution=8.0, tos_years_per_file=1)
    mock_oras5(root, first_year=2014, n_years=1, resolution=8.0)
    (root / "README.txt").write_text("not data")
    (root / "notes.nc").write_bytes(b"an unrelated file")
    return root


def test_file_names_and_drs_paths_are_parsed():
    drs = Path(
        "/a/CMIP6/CMIP/NCAR/CESM2/historical/r1i1p1f1/Omon/thetao/gn/v20190308/thetao_Omon_CESM2_historical_r1i1p1f1_gn_185001-201412.nc"
    )
    row = parse_file(drs)
    assert row["project"] == "cmip6" and row["activity_id"] == "CMIP" and row["institution_id"] == "NCAR"
    assert (row["source_id"], row["variable_id"], row["grid_label"], row["version"], row["time_range"]) == (
        "CESM2", "thetao", "gn", "v20190308", "185001-201412",
    )  # fmt: skip
    flat = parse_file(Path("/x/tos_Omon_GFDL-CM4_historical_r1i1p1f1_gr_185001-186912.nc"))
    assert flat["source_id"] == "GFDL-CM4" and flat["grid_label"] == "gr" and flat["activity_id"] == ""
    dcpp = parse_file(Path("/x/tos_Omon_EC-Earth3_dcppA-hindcast_s1960-r1i1p1f1_gn_196011-197012.nc"))
    assert dcpp["member_id"] == "s1960-r1i1p1f1"
    oras = parse_file(Path("/y/so20chgt_control_monthly_highres_2D_201501_OPER_v0.1.nc"))
    assert oras["project"] == "oras5" and oras["source_id"] == "ORAS5" and oras["stream"] == "OPER"
    assert oras["time_range"] == "201501-201501"
    assert parse_file(Path("/z/sst.mnmean.nc")) is None


def test_scan_finds_every_layout_with_absolute_paths(archive):
    df = scan([archive])
    counts = df.groupby(["project", "source_id", "variable_id"]).size().to_dict()
    assert counts == {
        ("cmip6", "CESM2", "thetao"): 1, ("cmip6", "CESM2", "tos"): 1,
        ("cmip6", "GFDL-CM4", "thetao"): 2, ("cmip6", "GFDL-CM4", "tos"): 3,
        ("oras5", "ORAS5", "so20chgt"): 12, ("oras5", "ORAS5", "sosstsst"): 12,
    }  # fmt: skip
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in df["path"])
    assert set(df.loc[df.project == "cmip6", "institution_id"]) == {"NCAR", "NOAA-GFDL"}
    # overlapping roots do not list a file twice
    assert len(scan([archive, archive / "CMIP6"])) == len(df)


def test_roots_that_do_not_exist_or_hold_nothing(tmp_path):
    with pytest.raises(ConfigError, match=f"{tmp_path / 'missing'} does not exist"):
        scan([tmp_path / "missing"])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "other.nc").write_bytes(b"x")
    with pytest.raises(ConfigError, match=rf"{empty} holds no usable files \(1 other .nc files\)"):
        scan([empty])
    with pytest.raises(ConfigError, match="no directory"):
        scan([])


def test_catalog_json_csv_and_search_through_intake_esm(archive, tmp_path, monkeypatch):
    json_path, csv_path = build_catalog([archive], tmp_path / "cat" / "catalog.json")
    spec = json.loads(json_path.read_text())
    assert spec["catalog_file"] == "catalog.csv" and spec["assets"] == {"column_name": "path", "format": "netcdf"}
    df = pd.read_csv(csv_path)
    assert {
        "project",
        "source_id",
        "experiment_id",
        "member_id",
        "table_id",
        "variable_id",
        "grid_label",
        "time_range",
        "path",
    } <= set(df.columns)
    monkeypatch.chdir(tmp_path)  # the CSV is found relative to the JSON, not the working directory
    files = find_files(json_path, project="cmip6", source_id="GFDL-CM4", variable_id="tos", table_id="Omon")
    assert [f.name[-16:] for f in files] == ["200801-200812.nc", "200901-200912.nc", "201001-201012.nc"]
    files = find_files(json_path, project="cmip6", source_id="GFDL-CM4", variable_id="tos", years=(2009, 2009))
    assert len(files) == 1 and "200901-200912" in files[0].name
    oras = find_files(json_path, project="oras5", source_id="ORAS5", variable_id="so20chgt")
    assert len(oras) == 12
    ds = open_source(json_path, {"project": "oras5", "source_id": "ORAS5", "variable_id": "sosstsst"})
    assert ds.sizes["time"] == 12 and "sst" in ds


def test_intake_esm_loads_every_source_oras5_included(archive, tmp_path):
    """A user's intake-esm call: each dataset's files joined along its own record dimension (time in CMIP6 files,
    time_counter in ORAS5's) and its variables merged, the files read as they are."""
    import intake

    json_path, _ = build_catalog([archive], tmp_path / "catalog.json")
    dsets = load_datasets(json_path)
    assert set(dsets) == {
        "cmip6.CESM2.historical.Omon.gn", "cmip6.GFDL-CM4.historical.Omon.gn",
        "oras5.ORAS5.reanalysis.monthly_highres_2D.ORCA025",
    }  # fmt: skip
    oras5 = dsets["oras5.ORAS5.reanalysis.monthly_highres_2D.ORCA025"]
    assert {"sosstsst", "so20chgt"} <= set(oras5.data_vars) and oras5.sizes["time_counter"] == 12
    assert oras5["time_counter"].to_index().is_monotonic_increasing
    gfdl = dsets["cmip6.GFDL-CM4.historical.Omon.gn"]
    assert {"tos", "thetao"} <= set(gfdl.data_vars) and gfdl.sizes["time"] == 36  # three one-year tos files
    # the plain call on one dataset (one key: intake-esm's thread pool opens nothing in parallel)
    cat = intake.open_esm_datastore(str(json_path))
    one = cat.search(source_id="ORAS5").to_dataset_dict(threaded=False, progressbar=False)
    assert list(one) == ["oras5.ORAS5.reanalysis.monthly_highres_2D.ORCA025"]
    assert one["oras5.ORAS5.reanalysis.monthly_highres_2D.ORCA025"].sizes["time_counter"] == 12
    with pytest.raises(InputDataError, match="catalog does not exist"):
        load_datasets(tmp_path / "nope.json")


def test_search_errors_name_the_catalog_and_the_choices(archive, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(archive, root)
    # a second grid label and a newer version of the CESM2 tos dataset
    gn = root / "CMIP6/CMIP/NCAR/CESM2/historical/r1i1p1f1/Omon/tos/gn/v20190308"
    gr = root / "CMIP6/CMIP/NCAR/CESM2/historical/r1i1p1f1/Omon/tos/gr/v20190308"
    gr.mkdir(parents=True)
    for f in gn.iterdir():
        shutil.copy(f, gr / f.name.replace("_gn_", "_gr_"))
    newer = gn.parent / "v20200101"
    newer.mkdir()
    for f in gn.iterdir():
        shutil.copy(f, newer / f.name)
    json_path, _ = build_catalog([root], tmp_path / "catalog.json")
    with pytest.raises(InputDataError, match=r"several grid_labels \['gn', 'gr'\]") as err:
        find_files(json_path, source_id="CESM2", variable_id="tos")
    assert str(json_path) in str(err.value)
    files = find_files(json_path, source_id="CESM2", variable_id="tos", grid_label="gn")
    assert len(files) == 1 and "v20200101" in str(files[0])  # newest version
    with pytest.raises(
        InputDataError, match=r"no files match .*source_ids in the catalog: \['CESM2', 'GFDL-CM4', 'ORAS5'\]"
    ):
        find_files(json_path, source_id="MIROC6", variable_id="tos")
    with pytest.raises(InputDataError, match="no file covers any month of 1900–1910"):
        find_files(json_path, source_id="GFDL-CM4", variable_id="tos", years=(1900, 1910))
    files[0].unlink()
    with pytest.raises(InputDataError, match="missing on disk; rebuild the catalog"):
        find_files(json_path, source_id="CESM2", variable_id="tos", grid_label="gn")
    with pytest.raises(InputDataError, match="catalog does not exist"):
        find_files(tmp_path / "nope.json", source_id="CESM2", variable_id="tos")


def test_listing_fingerprint_tracks_added_files(archive, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(archive / "ORAS5", root)
    before = listing_fingerprint([root])
    assert listing_fingerprint([root]) == before
    shutil.copy(next(root.rglob("*.nc")), root / "sosstsst_control_monthly_highres_2D_201301_CONS_v0.1.nc")
    assert listing_fingerprint([root]) != before
    assert listing_fingerprint([tmp_path / "absent"]) != listing_fingerprint([root])


def test_cli(archive, tmp_path, capsys):
    assert main(["catalog", str(archive), "--out", str(tmp_path / "c.json")]) == 0
    assert (tmp_path / "c.csv").is_file()
    assert main(["catalog", str(tmp_path / "missing"), "--out", str(tmp_path / "d.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "d.json").exists()


def test_symlink_cycles_end_the_scan_and_list_each_file_once(archive, tmp_path):
    """Links back to an ancestor (two of them: exponentially many paths for a plain followlinks walk) and a link
    to a sibling folder: the scan and the parse-time listing both finish, each file listed once."""
    root = tmp_path / "root"
    shutil.copytree(archive / "ORAS5", root / "ORAS5")
    (root / "loop_a").symlink_to(root, target_is_directory=True)
    (root / "ORAS5" / "loop_b").symlink_to(root, target_is_directory=True)
    (root / "ORAS5" / "sosstsst" / "up").symlink_to(root / "ORAS5", target_is_directory=True)
    (root / "twin").symlink_to(root / "ORAS5" / "so20chgt", target_is_directory=True)
    code = (
        "import sys; from bridging.io.catalog import scan, listing_fingerprint; "
        f"df = scan([{str(root)!r}]); print(len(df), df['path'].nunique(), listing_fingerprint([{str(root)!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    n, unique, _ = proc.stdout.split()
    assert int(n) == int(unique) == 24
