"""Rare kinds of bad input as a user's archive holds them: implausible values in any month, undeclared fill values,
a corrupt compressed chunk in the middle of a file, isotherms that are never crossed, depth levels in the wrong
units; and the command line's handling of errors it does not anticipate. Each gives one line naming the file (and
month and place), exit 2, no traceback, and no output."""

from __future__ import annotations

import zlib
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from bridging.cli import main
from bridging.errors import InputDataError
from bridging.fixtures.mock import mock_cesm2, mock_oras5
from bridging.io.readers import open_variable


def _cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("bridging ")]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


def _set_cell(path: Path, variable: str, record: int, value: float, index=None) -> tuple[int, ...]:
    """Overwrite one ocean value of record ``record`` in place; returns its (y, x) (or (level, y, x)) index."""
    with netCDF4.Dataset(path, "a") as nc:
        var = nc[variable]
        var.set_auto_maskandscale(False)
        slab = np.asarray(var[record])
        if index is None:
            ocean = np.argwhere(np.abs(slab) < 1e19)
            index = tuple(int(k) for k in ocean[len(ocean) // 2])
        slab[index] = value
        var[record] = slab
    return index


def _rewrite_without_fill_attributes(path: Path, out: Path, variable: str, fill: float) -> Path:
    """The file with land written as ``fill`` and no _FillValue / missing_value attribute."""
    raw = xr.open_dataset(path, decode_times=False, mask_and_scale=False)
    data = raw[variable]
    raw[variable] = data.where(np.abs(data) < 1e19, np.float32(fill)).astype(np.float32)
    raw[variable].attrs = {k: v for k, v in data.attrs.items() if k not in ("missing_value", "_FillValue")}
    out.parent.mkdir(parents=True, exist_ok=True)
    raw.to_netcdf(out, encoding={variable: {"_FillValue": None}})
    return out


# ------------------------------------------------------------------------------------------ plausibility, every month


def test_a_spike_in_a_later_month_is_an_error_naming_file_variable_month_and_place(tmp_path, capsys):
    src = mock_oras5(tmp_path / "data", first_year=2014, n_years=1, resolution=6.0)
    files = src.files["sosstsst"]
    july = files[6]
    _set_cell(july, "sosstsst", 0, 1e10)
    out = tmp_path / "sst.nc"
    code, err = _cli(capsys, "regrid", *files, "--out", out)
    line = _one_line_error(err)
    assert code == 2 and str(july) in line and "sosstsst" in line and "2014-07" in line and "lat " in line, line
    assert "outside the plausible range" in line
    assert not out.exists() and not list(tmp_path.glob(".sst.nc*"))


def test_an_isolated_spike_within_the_range_is_an_error(tmp_path):
    src = mock_cesm2(tmp_path, first_year=2000, n_years=1, resolution=6.0, with_thetao=False)
    path = src.files["tos"][0]
    j, i = _set_cell(path, "tos", 4, 44.0)
    with pytest.raises(InputDataError, match=rf"isolated spike 44 °C in 2000-05 at lat .*\(y={j}, x={i}\)") as err:
        _ = open_variable(path, "tos")["sst"].values  # reading the values runs the checks
    assert str(path) in str(err.value)


def test_fronts_and_coasts_are_not_spikes(tmp_path):
    from bridging.io.plausibility import isolated_spikes

    field = np.full((1, 6, 8), 26.0, np.float32)
    field[0, :, 4:] = 5.0  # a 21 °C front: every cell has a neighbour on its own side
    field[0, 0, 0] = 45.0  # a corner value with three neighbours, all far: a spike
    field[0, 5, 7] = np.nan
    field[0, 4:, 6:] = np.nan
    field[0, 4, 4] = np.nan
    field[0, 5, 5] = 30.0  # a coastal value with two valid neighbours only: left alone
    spikes = isolated_spikes(field, 15.0)
    assert [tuple(int(a[k]) for a in spikes) for k in range(spikes[0].size)] == [(0, 0, 0)]


@pytest.mark.parametrize("fill", [-999.0, -99.99, -9999.0, 1e36, 9.96921e36])
def test_undeclared_fill_values_are_missing_not_data(tmp_path, fill):
    src = mock_cesm2(tmp_path / "src", n_years=1, resolution=6.0, with_thetao=False)
    path = _rewrite_without_fill_attributes(
        src.files["tos"][0], tmp_path / "nofill" / src.files["tos"][0].name, "tos", fill
    )
    with netCDF4.Dataset(path) as nc:
        assert not {"_FillValue", "missing_value"} & set(nc["tos"].ncattrs())
    values = open_variable(path, "tos")["sst"].values
    np.testing.assert_allclose(values, src.sst, atol=1e-5, equal_nan=True)


def test_implausible_thetao_at_depth_names_the_level(tmp_path):
    src = mock_cesm2(tmp_path, n_years=1, resolution=6.0)
    path = src.files["thetao"][0]
    _set_cell(path, "thetao", 2, 60.0, index=(10, 3, 3))
    with pytest.raises(InputDataError, match=r"thetao: value 60 °C in 2000-03 at .*depth=10\) is outside") as err:
        _ = open_variable(path, "thetao")["thetao"].values  # reading the values runs the checks
    assert str(path) in str(err.value)


def test_implausible_thermocline_depth_of_a_reanalysis_month(tmp_path):
    src = mock_oras5(tmp_path, first_year=2014, n_years=1, resolution=6.0)
    files = src.files["so20chgt"]
    _set_cell(files[3], "so20chgt", 0, 5000.0)
    with pytest.raises(
        InputDataError, match=r"so20chgt: value 5000 m in 2014-04 .* outside the plausible range 0…1000 m"
    ) as err:
        _ = open_variable(files, "so20chgt")["thermocline_depth"].values  # reading the values runs the checks
    assert str(files[3]) in str(err.value)


# ------------------------------------------------------------------------------------------ nino-stats


@pytest.fixture(scope="module")
def sst_file(tmp_path_factory):
    from test_nino_stats_cli import real_like_file

    from bridging.diagnostics.synthetic import synthetic_store

    root = tmp_path_factory.mktemp("nino_bad")
    ds = synthetic_store(n_years=12, skew_coefficient=0.2, seed=8, source_id="BAD")
    return real_like_file(ds, root / "tos_Omon_BAD_historical_r1i1p1f1_gn_195001-196112.nc")


def test_nino_stats_treats_undeclared_fill_values_as_land(sst_file, tmp_path, capsys):
    assert main(["nino-stats", str(sst_file), "--variable", "tos", "--json"]) == 0
    filled = capsys.readouterr().out
    undeclared = _rewrite_without_fill_attributes(sst_file, tmp_path / "undeclared.nc", "tos", 1e20)
    with netCDF4.Dataset(undeclared) as nc:
        assert np.nanmax(np.abs(nc["tos"][:].filled(np.nan))) >= 1e19, "land must hold 1e20 in the file"
    assert main(["nino-stats", str(undeclared), "--variable", "tos", "--json"]) == 0
    assert capsys.readouterr().out.replace(str(undeclared), "F") == filled.replace(str(sst_file), "F")


def test_nino_stats_refuses_a_spike_naming_file_and_month(sst_file, tmp_path, capsys):
    bad = tmp_path / "spike.nc"
    bad.write_bytes(sst_file.read_bytes())
    with netCDF4.Dataset(bad, "a") as nc:
        lat, lon = nc["latitude"][:], nc["longitude"][:]
        j, i = int(np.argmin(np.abs(lat))), int(np.argmin(np.abs(lon + 150.0)))  # 0°N, 210°E: inside Niño 3
        tos = nc["tos"]
        slab = tos[100]
        slab[j, i] = 1e10
        tos[100] = slab
    code, err = _cli(capsys, "nino-stats", bad, "--variable", "tos")
    line = _one_line_error(err)
    assert code == 2 and "spike.nc" in line and "1958-05" in line and "outside the plausible range" in line, line


# ------------------------------------------------------------------------------------------ damaged file


def _compressed_file(path: Path) -> tuple[Path, bytes]:
    """A CF tos file with one zlib-compressed chunk per month (no shuffle, so each chunk's stored bytes are
    zlib.compress of the month) and the compressed bytes of its seventh month."""
    ny, nx, nt = 10, 16, 12
    lat, lon = np.linspace(-18.0, 18.0, ny), np.linspace(150.0, 270.0, nx)
    data = (25.0 + np.sin(np.arange(nt))[:, None, None] + 0.1 * lat[None, :, None] + 0.01 * lon[None, None, :]).astype(
        "f4"
    )
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", ny)
        nc.createDimension("lon", nx)
        t = nc.createVariable("time", "f8", ("time",))
        t.setncatts({"units": "days since 2000-01-01", "calendar": "noleap"})
        t[:] = np.arange(nt) * 30.0 + 15.0
        nc.createVariable("lat", "f8", ("lat",)).setncatts({"units": "degrees_north", "standard_name": "latitude"})
        nc.createVariable("lon", "f8", ("lon",)).setncatts({"units": "degrees_east", "standard_name": "longitude"})
        nc["lat"][:], nc["lon"][:] = lat, lon
        tos = nc.createVariable(
            "tos", "f4", ("time", "lat", "lon"), zlib=True, complevel=4, shuffle=False, chunksizes=(1, ny, nx)
        )
        tos.units = "degC"
        tos[:] = data
    return path, zlib.compress(data[6].tobytes(), 4)


def test_a_corrupt_chunk_mid_file_is_one_line_naming_the_file(tmp_path, capsys):
    path, chunk = _compressed_file(tmp_path / "tos_Omon_X_historical_r1i1p1f1_gn_200001-200012.nc")
    blob = bytearray(path.read_bytes())
    at = blob.find(chunk)
    assert at > 0, "the month's compressed chunk must be found in the file"
    blob[at + len(chunk) // 3 : at + len(chunk) // 3 + 40] = b"\xff" * 40
    path.write_bytes(bytes(blob))
    with pytest.raises(InputDataError, match="the file is damaged") as err:
        _ = open_variable(path, "tos")["sst"].values  # the header and the probed months are intact
    assert str(path) in str(err.value)
    out = tmp_path / "out.zarr"
    code, err = _cli(capsys, "regrid", path, "--out", out)
    line = _one_line_error(err)
    assert code == 2 and str(path) in line and "damaged" in line, line
    assert not out.exists() and not list(tmp_path.glob(".out.zarr*"))


# ------------------------------------------------------------------------------------------ thermocline and ingest


def test_an_isotherm_never_crossed_writes_nothing(tmp_path, capsys):
    src = mock_cesm2(tmp_path / "data", n_years=1, resolution=6.0)
    out = tmp_path / "d20.nc"
    code, err = _cli(capsys, "thermocline", *src.files["thetao"], "--out", out, "--isotherm", "40")
    line = _one_line_error(err)
    assert code == 2 and "undefined (NaN) everywhere" in line and str(src.files["thetao"][0]) in line, line
    assert not out.exists() and not list(tmp_path.glob(".d20.nc*"))
    code, err = _cli(capsys, "thermocline", *src.files["thetao"], "--out", out, "--isotherm", "nan")
    assert code == 2 and "finite temperature" in _one_line_error(err)
    assert not out.exists()


def test_depth_levels_in_centimetres_labelled_metres_are_an_error(tmp_path, capsys):
    src = mock_cesm2(tmp_path / "data", n_years=1, resolution=6.0)
    path = src.files["thetao"][0]
    with netCDF4.Dataset(path, "a") as nc:
        nc["lev"].units = "m"  # the values stay centimetres
    with pytest.raises(
        InputDataError, match=r"'lev' reaches 50000 m with units 'm', deeper than any ocean .*; are the levels in cm\?"
    ) as err:
        open_variable(path, "thetao")
    assert str(path) in str(err.value)
    # Only the upper levels (5…105 m, i.e. 500…10500 "m"): plausible levels, implausible isotherm depths.
    raw = xr.open_dataset(path, decode_times=False)
    shallow = tmp_path / "shallow" / path.name
    shallow.parent.mkdir()
    raw.isel(lev=slice(0, 11)).to_netcdf(shallow)
    out = tmp_path / "d20.nc"
    code, err = _cli(capsys, "thermocline", shallow, "--out", out)
    line = _one_line_error(err)
    assert code == 2 and str(shallow) in line and "outside the plausible range 0…1000 m" in line, line
    assert not out.exists()


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from bridging.io.catalog import build_catalog

    root = tmp_path_factory.mktemp("bad_ingest")
    mock_cesm2(root / "data", first_year=2000, n_years=1, resolution=4.0)
    catalog, _ = build_catalog([root / "data"], root / "catalog.json")
    return root, catalog


DATA = {"catalog_roots": ["unused"], "operational": [{"name": "M-CESM2", "source_id": "CESM2"}]}


def _ingest(archive, tmp_path, **ingest):
    from bridging.ingest import build_weights, ingest_source

    root, catalog = archive
    weights = build_weights(tmp_path / "w.nc", catalog=catalog, source="M-CESM2", data=DATA, grid={}, regrid_cfg={})
    return ingest_source(
        tmp_path / "s.zarr", catalog=catalog, weights=weights, source="M-CESM2", data=DATA, grid={}, ingest=ingest
    )


def test_ingest_refuses_a_thermocline_that_is_nowhere_defined(archive, tmp_path):
    with pytest.raises(InputDataError, match="undefined in every cell and month: no column crosses the 40 °C isotherm"):
        _ingest(archive, tmp_path, isotherm=40.0)
    assert not (tmp_path / "s.zarr").exists()


def test_ingest_refuses_an_empty_ocean_mask(archive, tmp_path, monkeypatch):
    import bridging.ingest as ingest_module

    real = ingest_module.thermocline_depth

    def every_other_month(thetao, isotherm, **kw):  # an isotherm crossed in alternate months only
        d20 = real(thetao, isotherm, **kw)
        return d20.where(np.arange(d20.sizes["time"])[:, None, None] % 2 == 0)

    monkeypatch.setattr(ingest_module, "thermocline_depth", every_other_month)
    with pytest.raises(InputDataError, match="the ocean mask is empty"):
        _ingest(archive, tmp_path)
    assert not (tmp_path / "s.zarr").exists()
