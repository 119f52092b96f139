"""Progress of the long stages in their logs: ingestion logs the share of its dask computation done (local and
distributed schedulers), at most one line per interval; the filter's lines say month / total and the time left."""

from __future__ import annotations

import logging
import re

import dask.array as dsa
import numpy as np
import pytest

from bridging import progress
from bridging.fixtures.mock import mock_oras5
from bridging.ingest import build_weights, ingest_source
from bridging.io.catalog import build_catalog
from bridging.progress import Eta, compute, dask_progress, format_duration

TASK_LINE = re.compile(r"(\d+)% of (\d+) tasks done, elapsed \S+, ETA \S+")


def _lines(caplog, label: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(label)]


def test_eta_line_reports_month_over_total_rate_and_time_left():
    now = [100.0]
    eta = Eta(1200, start=200, clock=lambda: now[0])
    now[0] += 50.0  # 100 months in 50 s
    assert eta.line(300) == "month 300/1200 (25%), 0.5 s/month, elapsed 50s, ETA 7m30s"
    assert "ETA ?" in Eta(10, clock=lambda: 0.0).line(0)
    assert [format_duration(s) for s in (5, 65, 3 * 3600 + 300)] == ["5s", "1m05s", "3h05m"]


def test_local_scheduler_progress_is_logged_and_throttled(caplog):
    x = dsa.ones((40, 10), chunks=(1, 10)).sum(axis=1)
    caplog.set_level(logging.INFO, logger="bridging.progress")
    with dask_progress("every task", interval=0.0) as p:
        (values,) = compute(x, progress=p)
    np.testing.assert_array_equal(values, np.full(40, 10.0))
    lines = _lines(caplog, "every task")
    done = [int(TASK_LINE.search(line).group(1)) for line in lines]
    assert len(lines) > 10 and done == sorted(done) and done[-1] == 100, lines

    caplog.clear()
    with dask_progress("throttled", interval=3600.0) as p:
        compute(x, progress=p)
    lines = _lines(caplog, "throttled")
    assert len(lines) == 1 and TASK_LINE.search(lines[0]).group(1) == "100", "one line at the end, none between"


def test_distributed_scheduler_progress_is_logged(caplog):
    distributed = pytest.importorskip("distributed")
    x = dsa.ones((20, 10), chunks=(1, 10)).sum(axis=1)
    caplog.set_level(logging.INFO, logger="bridging.progress")
    with (
        distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client,
        dask_progress("on the cluster", interval=0.0, client=client) as p,
    ):
        (values,) = compute(x, progress=p)
    np.testing.assert_array_equal(values, np.full(20, 10.0))
    lines = _lines(caplog, "on the cluster")
    assert lines and TASK_LINE.search(lines[-1]).group(1) == "100", lines


def test_ingestion_logs_its_progress(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(progress, "DEFAULT_INTERVAL", 0.0)
    mock_oras5(tmp_path / "data", first_year=2014, n_years=1, resolution=4.0)
    catalog, _ = build_catalog([tmp_path / "data"], tmp_path / "catalog.json")
    data = {
        "catalog_roots": ["unused"],
        "operational": [{"name": "M", "source_id": "M"}],
        "reanalysis": {"years": [2014, 2014]},
    }
    weights = build_weights(tmp_path / "w.nc", catalog=catalog, source="ORAS5", data=data, grid={}, regrid_cfg={})
    caplog.set_level(logging.INFO, logger="bridging.progress")
    ingest_source(tmp_path / "s.zarr", catalog=catalog, weights=weights, source="ORAS5", data=data, grid={}, ingest={})
    lines = _lines(caplog, "ORAS5: reading, thermocline depth and regridding")
    assert len(lines) >= 2 and TASK_LINE.search(lines[-1]).group(1) == "100", lines
