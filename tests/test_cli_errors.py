"""The command line's errors: anticipated ones are one line (exit 2); unanticipated ones one line with the path of a
log holding the traceback (exit 1), the traceback itself only with -v; outputs are checked before any computation;
and the distributed scheduler's local cluster listens on the loopback interface only."""

from __future__ import annotations

from pathlib import Path

import pytest

import bridging.ingest as ingest_module
from bridging.cli import main
from bridging.fixtures.mock import mock_oras5


@pytest.fixture(scope="module")
def sst_files(tmp_path_factory) -> list[Path]:
    return mock_oras5(tmp_path_factory.mktemp("cli_errors"), first_year=2014, n_years=1, resolution=8.0).files[
        "sosstsst"
    ]


def _lines(err: str) -> list[str]:
    return [ln for ln in err.strip().splitlines() if ln.strip()]


def test_an_unanticipated_error_is_one_line_with_the_log_path(sst_files, tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something broke\nsecond line of the message")

    monkeypatch.setattr(ingest_module, "open_variable", broken)
    code = main(["regrid", str(sst_files[0]), "--out", str(tmp_path / "out.nc")])
    err = capsys.readouterr().err
    lines = _lines(err)
    assert code == 1 and "Traceback" not in err, err
    assert len(lines) == 1 and "unexpected error: RuntimeError: something broke" in lines[0], err
    log = Path(lines[0].split("traceback in ")[1].split(";")[0])
    try:
        text = log.read_text()
        assert "Traceback" in text and "something broke" in text and "regrid" in text
    finally:
        log.unlink(missing_ok=True)

    code = main(["-v", "regrid", str(sst_files[0]), "--out", str(tmp_path / "out.nc")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" in err and "something broke" in err


def test_anticipated_errors_show_a_traceback_only_with_verbose(sst_files, tmp_path, capsys):
    args = ["regrid", str(sst_files[0]), "--variable", "thetao", "--out", str(tmp_path / "x.nc")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(_lines(err)) == 1
    assert main(["-v", *args]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_ctrl_c_is_one_line(sst_files, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_module, "open_variable", interrupted)
    assert main(["regrid", str(sst_files[0]), "--out", str(tmp_path / "out.nc")]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and _lines(err) == ["bridging regrid: interrupted"]


@pytest.mark.parametrize(
    "out, message",
    [("out.txt", r"must end in \.nc or \.zarr"), ("blocker/sub/out.nc", "is not a folder")],
)
def test_outputs_are_checked_before_any_computation(sst_files, tmp_path, capsys, monkeypatch, out, message):
    import re

    (tmp_path / "blocker").write_text("a file where a folder should be")

    def must_not_run(*args, **kwargs):
        raise AssertionError("input read before the output was checked")

    monkeypatch.setattr(ingest_module, "open_variable", must_not_run)
    for command in (["regrid", str(sst_files[0])], ["thermocline", str(sst_files[0])]):
        assert main([*command, "--out", str(tmp_path / out)]) == 2
        err = capsys.readouterr().err
        assert re.search(message, err) and "Traceback" not in err, err


def test_bad_command_line_values_name_the_option(sst_files, tmp_path, capsys):
    assert (
        main(["regrid", str(sst_files[0]), "--out", str(tmp_path / "o.nc"), "--lat-min", "30", "--lat-max", "20"]) == 2
    )
    err = capsys.readouterr().err
    assert "lat_min" in err and "Traceback" not in err


def test_distributed_cluster_is_bound_to_localhost(monkeypatch):
    import dask.distributed

    seen = {}

    class FakeCluster:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class FakeClient:
        def __init__(self, cluster):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(dask.distributed, "LocalCluster", FakeCluster)
    monkeypatch.setattr(dask.distributed, "Client", FakeClient)
    with ingest_module.dask_scheduler({"scheduler": "distributed", "n_workers": 1}, threads=2):
        pass
    assert seen.get("host") == "127.0.0.1" and seen.get("dashboard_address") is None


def test_distributed_scheduler_and_workers_listen_on_loopback_only():
    with ingest_module.dask_scheduler(
        {"scheduler": "distributed", "n_workers": 1, "memory_limit": "1GB"}, threads=1
    ) as client:
        info = client.scheduler_info()
    addresses = [info["address"], *info["workers"]]
    assert addresses and all(a.startswith("tcp://127.0.0.1:") for a in addresses), addresses


def test_pseudo_obs_of_xro_without_a_reanalysis_store_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nowhere.zarr"
    code = main(["pseudo-obs", "--model", "xro", "--reanalysis", str(missing), "--out", str(tmp_path / "x.zarr")])
    lines = _lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and str(missing) in lines[0], lines
    assert not (tmp_path / "x.zarr").exists()
    assert main(["pseudo-obs", "--reanalysis", str(missing), "--out", str(tmp_path / "y.zarr")]) == 2
    assert "--reanalysis is for --model xro only" in capsys.readouterr().err
