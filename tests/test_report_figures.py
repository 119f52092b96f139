"""The report's figures and pages on their own: legible text at the report's width, maps with the land outlined and
geographic ticks, the filter-health and forecast-gate figures, and the report check's browser-free part."""

from __future__ import annotations

import base64
import json
import logging

import matplotlib.pyplot as plt
import numpy as np
import pytest

from bridging.diagnostics.explain_plots import plot_gain_responses
from bridging.diagnostics.figstyle import MIN_TEXT_PX, REPORT_WIDTH_PX, save_figure, smallest_text_px
from bridging.diagnostics.filter_health import filter_health_stage
from bridging.diagnostics.geomap import draw_map, lat_label, lon_label
from bridging.errors import InputDataError
from bridging.models.figures import _check_points, plot_gate
from bridging.reportcheck.__main__ import main as reportcheck_main
from bridging.reportcheck.check import embedded, static_problems
from bridging.settings import PlottingSection

LAT = np.arange(-20.0, 20.5, 1.0)
LON = np.arange(120.0, 280.5, 1.0)


def _ocean():
    ocean = np.ones((LAT.size, LON.size), bool)
    ocean[:15, :20] = False  # a continent in the south-west corner
    return ocean


def _legibility_warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "bridging.diagnostics.figstyle"]


def test_legibility_is_measured_at_the_report_width(tmp_path, caplog):
    """The old style (7-pt titles on an 18-inch figure) is flagged; the measure follows the saved width."""
    fig, ax = plt.subplots(figsize=(18, 4))
    ax.set_title("small", fontsize=7)
    fig.canvas.draw()
    px = smallest_text_px(fig, 120)
    assert px == pytest.approx(7 / 72 * REPORT_WIDTH_PX / (fig.get_tightbbox().width + 0.2), rel=1e-6)
    with caplog.at_level(logging.WARNING):
        assert save_figure(fig, tmp_path / "old.png", 120) < MIN_TEXT_PX
    assert any("smallest text" in m for m in _legibility_warnings(caplog))
    # narrower than the pane: shown at its own size, so the dpi decides
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_title("ten points", fontsize=10)
    fig.canvas.draw()
    assert smallest_text_px(fig, 100) == pytest.approx(10 / 72 * 100)
    plt.close(fig)


def test_geographic_labels():
    assert [lon_label(x) for x in (120, 180, 200, 280, 360)] == ["120°E", "180°", "160°W", "80°W", "0°"]
    assert [lat_label(x) for x in (-10, 0, 15)] == ["10°S", "0°", "15°N"]


def test_map_panel_outlines_land_with_geographic_ticks():
    fig, ax = plt.subplots()
    values = np.where(_ocean(), np.random.default_rng(0).standard_normal(_ocean().shape), np.nan)
    draw_map(ax, LAT, LON, values, cmap="RdBu_r", vmin=-2, vmax=2, ocean_mask=_ocean())
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels and all(lb.endswith(("°E", "°W", "°")) for lb in labels) and "150°W" in labels
    assert all(t.get_text().endswith(("°N", "°S", "°")) for t in ax.get_yticklabels())
    assert ax.get_xlabel() == "longitude" and ax.get_ylabel() == "latitude"
    assert len(ax.collections) == 2  # the field and the coastline contour
    plt.close(fig)


def test_gain_responses_are_legible(tmp_path, caplog):
    field = np.where(_ocean(), np.random.default_rng(3).standard_normal((2, LAT.size, LON.size)), np.nan)
    groups = {g: field * k for k, g in enumerate(("sst_nino3", "sst_nino4", "thermocline_west", "thermocline_east"))}
    with caplog.at_level(logging.WARNING):
        plot_gain_responses(groups, LAT, LON, tmp_path / "gain.png", PlottingSection(), ocean_mask=_ocean())
    assert not _legibility_warnings(caplog)
    assert (tmp_path / "gain.png").stat().st_size > 10_000


def _statistics(kind: str, adaptive: bool) -> dict:
    rng = np.random.default_rng(1)
    rows = []
    for d in range(3):
        row = {
            "first_month": 120 * d,
            "months": 120,
            "innovation_ratio": [float(1 + 0.2 * rng.standard_normal())],
            "innovation_mean": [0.0],
            "spread_latent": [0.5],
            "spread_obs": [0.4],
            "consistency_correlation": [0.9],
            "consistency_slope": [0.95],
        }
        if adaptive:
            row["model_noise_factor"] = [1.0 + 0.1 * d]
        rows.append(row)
    return {"kind": kind, "experiments": [{"model_noise_scale": 1.0}], "per_decade": rows, "warnings": ["w"],
            "autoencoder": {"training_consistency_correlation": 0.97}}  # fmt: skip


def test_filter_health_figure(tmp_path, caplog):
    paths = {}
    for kind in ("assimilation", "free_run"):
        paths[kind] = tmp_path / f"{kind}.json"
        paths[kind].write_text(json.dumps(_statistics(kind, adaptive=kind == "assimilation")))
    figure = tmp_path / "filter_health.png"
    with caplog.at_level(logging.WARNING):
        filter_health_stage(paths["assimilation"], paths["free_run"], figure=figure, plotting={},
                            innovation_ratio_warn=3.0, consistency_warn=0.8, model="M")  # fmt: skip
    assert figure.stat().st_size > 10_000 and not _legibility_warnings(caplog)
    paths["free_run"].write_text("{}")
    with pytest.raises(InputDataError, match="free_run.json"):
        filter_health_stage(paths["assimilation"], paths["free_run"], figure=tmp_path / "x.png", plotting={},
                            innovation_ratio_warn=3.0, consistency_warn=0.8, model="M")  # fmt: skip
    assert not (tmp_path / "x.png").exists()


def _gate_report(ratio3: float, passed: bool) -> dict:
    leads = [1, 3, 6]
    skill = {key: {"model": [0.5, 0.7, 0.9], "persistence": [0.6, 0.9, 1.1]}
             for key in ("latent_rmse", "sst_rmse_degC", "thermocline_rmse_m", "nino3_corr")}  # fmt: skip
    return {
        "passed": passed,
        "criteria": {
            "free_run_bounded": {"value": True, "limit": "…"},
            "nino3_std_ratio": {"value": ratio3, "limit": [0.7, 1.3]},
            "nino4_std_ratio": {"value": 1.0, "limit": [0.7, 1.3]},
            "one_step_rmse_vs_persistence": {"value": 0.5, "limit": 0.6},
            "free_run_consistency": {"value": 0.95, "limit": 0.9},
        },
        "free_run": {
            "nino3_first_30_years": list(np.sin(np.arange(360) / 20)),
            "std_ratio": {"nino3": ratio3},
            "reference_index_std": {"nino3": 0.8},
        },  # fmt: skip
        "skill": {"leads": leads, **skill},
    }


def test_gate_checks_are_distances_to_their_limits(tmp_path, caplog):
    points = _check_points(_gate_report(1.45, False)["criteria"], edge=3.0)
    assert points[0] == (0.0, "bounded")
    assert points[1][0] == pytest.approx(1.5) and "1.45 (allowed 0.70–1.30)" in points[1][1]  # outside: > 1
    assert points[2][0] == pytest.approx(0.0)
    assert points[3][0] == pytest.approx(0.5 / 0.6)
    assert points[4][0] == pytest.approx(0.05 / 0.1)
    with caplog.at_level(logging.WARNING):
        plot_gate(tmp_path / "gate.png", {"lstm": _gate_report(1.45, False), "linear": _gate_report(0.9, True)},
                  title="Forecast gate M: lstm (FAILED)")  # fmt: skip
    assert (tmp_path / "gate.png").stat().st_size > 10_000 and not _legibility_warnings(caplog)


def _report(results: dict, categories: dict) -> str:
    return (f'<script id="results">\n    var results = {json.dumps(results)};\n</script>\n'
            f'<script id="categories">\n    var categories = {json.dumps(categories)};\n</script>\n')  # fmt: skip


def _uri(mime: str, text: str) -> str:
    return f"data:{mime};charset=utf8;base64,{base64.b64encode(text.encode()).decode()}"


def test_report_check_finds_what_a_reader_cannot_view(tmp_path):
    results = {
        "a.png": {"mime_type": "image/png", "data_uri": _uri("image/png", "png")},
        "t.html": {"mime_type": "text/html", "data_uri": _uri("text/html", "<table><tr><td>1</td></tr></table>")},
        "e.html": {"mime_type": "text/html", "data_uri": _uri("text/html", "<p>no table</p>")},
        "c.csv": {"mime_type": "text/csv", "data_uri": _uri("text/csv", "a,b")},
    }
    categories = {"1. Tables": {"M": ["t.html", "e.html", "c.csv"]}, "Explainability": {"Other": ["a.png"]}}
    problems = static_problems(*embedded(_report(results, categories)))
    assert len(problems) == 3
    assert any("c.csv" in p and "not shown" in p for p in problems)
    assert any("e.html" in p and "without a table" in p for p in problems)
    assert any("a.png" in p and "Other" in p for p in problems)
    good = {"1. Tables": {"M": ["t.html"]}, "2. Figures": {"M": ["a.png"]}}
    assert static_problems(*embedded(_report(results, good))) == []
    with pytest.raises(ValueError, match="not a self-contained Snakemake report"):
        embedded("<html></html>")
    # a missing report is a usage error (exit 2) before any browser starts
    assert reportcheck_main([str(tmp_path / "missing.html")]) == 2
