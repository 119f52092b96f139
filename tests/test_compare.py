"""The comparison: distances against two references, the sampling floor, the acceptance criteria, the table and
figures, end to end over the per-source stage functions."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest
import xarray as xr

from bridging.atomic import write_zarr_atomic
from bridging.diagnostics import FIGURES
from bridging.diagnostics.compare import SourceResult, check_acceptance, sampling_floor
from bridging.diagnostics.run import compare_model, gridded_source_diagnostics, idealized_source_diagnostics, plot_model
from bridging.diagnostics.synthetic import synthetic_idealized_run, synthetic_layout_store, synthetic_store
from bridging.settings import AcceptanceSection, DiagnosticsSection
from bridging.stores import write_store
from bridging.timeaxis import monthly_time

# --------------------------------------------------------------------------------------------------- acceptance


def fake_result(*, h_op=0.2, h_br=0.1, d_op=0.3, se=0.1, d_br=0.1, ratios=(1.2, 3.0, 1.5), residual=(0.9, 0.9)) -> dict:
    """A comparison result with the given numbers for both references and both indices."""
    def indices(h, d):
        return {i: {"hellinger": h, "abs_diff_std": d, "abs_diff_skewness": d, "se_diff_std": se, "se_diff_skewness": se} for i in ("nino3", "nino4")}

    def events(ratio):
        return {"counts": {"ep": ratio * 10, "cp": 10} if math.isfinite(ratio) else {"ep": 10, "cp": 0}}

    ref_ratio, op_ratio, br_ratio = ratios
    comparisons = []
    for ref in ("reanalysis", "idealized"):
        comparisons.append({"source": "operational", "reference": ref, "indices": indices(h_op, d_op)})
        comparisons.append({"source": "bridging", "reference": ref, "indices": indices(h_br, d_br)})
    corr, amp = residual
    off = {f"{f}_residual_std": {"pattern_correlation": corr, "amplitude_ratio": amp} for f in ("sst", "thermocline_depth")}
    return {
        "comparisons": comparisons,
        "event_statistics": {
            "reanalysis": events(ref_ratio),
            "idealized": events(ref_ratio),
            "operational": events(op_ratio),
            "bridging": events(br_ratio),
        },
        "versus_operational": {"bridging": {"off_equator": off}},
    }


def by_name(acceptance: dict) -> dict:
    return {c["name"]: c for c in acceptance["criteria"]}


def test_acceptance_passes_when_every_criterion_holds():
    acc = check_acceptance(fake_result(), AcceptanceSection())
    assert acc["passed"]
    assert len(acc["criteria"]) == 2 * (2 + 4 + 1) + 2


def test_hellinger_criteria_state_the_sampling_floor_of_the_records_compared():
    result = fake_result(h_op=0.07, h_br=0.057)
    years = {"operational": 100, "bridging": 300, "reanalysis": 43, "idealized": 1000}
    result["sources"] = {role: {"n_months": 12 * y, "n_members": 1} for role, y in years.items()}

    def floor(y, mean, p90):
        return {"length_months": 12 * y, "n_pairs": 3, **{i: {"hellinger": {"mean": mean, "p90": p90}} for i in ("nino3", "nino4")}}

    result["floor"] = {"bridging_length": floor(300, 0.067, 0.075), "reanalysis_length": floor(43, 0.15, 0.23),
                       "operational_length": floor(100, 0.11, 0.14)}  # fmt: skip
    acc = by_name(check_acceptance(result, AcceptanceSection()))
    vs_ideal = acc["hellinger_nino3_vs_idealized"]
    assert not vs_ideal["passed"]  # the criterion is applied as stated ...
    assert vs_ideal["floor_operational_length"]["years"] == 100  # ... against a 1000-year reference: the 100-year floor
    assert vs_ideal["floor_bridging_length"]["years"] == 300
    assert vs_ideal["operational_above_floor"] is False and vs_ideal["threshold_above_floor"] is False
    assert acc["hellinger_nino3_vs_reanalysis"]["floor_operational_length"]["years"] == 43  # the shorter record
    result_far = fake_result(h_op=0.3, h_br=0.1) | {"sources": result["sources"], "floor": result["floor"]}
    far = by_name(check_acceptance(result_far, AcceptanceSection()))["hellinger_nino3_vs_idealized"]
    assert far["operational_above_floor"] and far["threshold_above_floor"] and far["passed"]


def test_hellinger_must_shrink_by_thirty_percent():
    acc = by_name(check_acceptance(fake_result(h_op=0.2, h_br=0.15), AcceptanceSection()))
    assert not acc["hellinger_nino3_vs_reanalysis"]["passed"]
    assert acc["hellinger_nino3_vs_reanalysis"]["threshold"] == pytest.approx(0.14)
    assert by_name(check_acceptance(fake_result(h_op=0.2, h_br=0.139), AcceptanceSection()))["hellinger_nino4_vs_idealized"]["passed"]


def test_moment_criteria_apply_only_where_the_operational_model_differs_significantly():
    # |Δ| = 0.3 > 2 × 0.1: applies; the bridging model must be closer.
    acc = by_name(check_acceptance(fake_result(d_op=0.3, se=0.1, d_br=0.35), AcceptanceSection()))
    assert acc["skewness_nino3_vs_reanalysis"]["applies"] and not acc["skewness_nino3_vs_reanalysis"]["passed"]
    # |Δ| = 0.15 < 2 × 0.1: not significant, does not apply, cannot fail.
    acc = by_name(check_acceptance(fake_result(d_op=0.15, se=0.1, d_br=0.5), AcceptanceSection()))
    assert not acc["std_nino4_vs_idealized"]["applies"] and acc["std_nino4_vs_idealized"]["passed"]


def test_ep_cp_ratio_must_move_towards_the_reference():
    acc = by_name(check_acceptance(fake_result(ratios=(1.2, 3.0, 3.5)), AcceptanceSection()))
    assert not acc["ep_cp_ratio_vs_reanalysis"]["passed"]
    acc = by_name(check_acceptance(fake_result(ratios=(1.2, float("inf"), 2.0)), AcceptanceSection()))
    assert acc["ep_cp_ratio_vs_reanalysis"]["passed"]  # a finite ratio is closer than an undefined one
    acc = by_name(check_acceptance(fake_result(ratios=(float("inf"), 3.0, 2.0)), AcceptanceSection()))
    assert not acc["ep_cp_ratio_vs_idealized"]["applies"] and "no CP" in acc["ep_cp_ratio_vs_idealized"]["note"]


def test_residual_std_map_needs_pattern_and_amplitude():
    acc = by_name(check_acceptance(fake_result(residual=(0.85, 0.65)), AcceptanceSection()))
    assert not acc["residual_std_sst"]["passed"]
    acc = by_name(check_acceptance(fake_result(residual=(0.79, 0.95)), AcceptanceSection()))
    assert not acc["residual_std_thermocline_depth"]["passed"]
    strict = AcceptanceSection(residual_pattern_correlation=0.95)
    assert not check_acceptance(fake_result(residual=(0.9, 0.9)), strict)["passed"]


# --------------------------------------------------------------------------------------------------- sampling floor


def long_run(series: np.ndarray) -> SourceResult:
    n_member, n_time = series.shape
    time = monthly_time(1, 1, n_time)
    ds = xr.Dataset({name: (("member", "time"), series) for name in ("nino3", "nino34", "nino4")}, coords={"time": time})
    return SourceResult("idealized", "iid", {}, ds)


def test_sampling_floor_of_an_iid_gaussian_run():
    rng = np.random.default_rng(0)
    run = long_run(rng.standard_normal((2, 12 * 240)))
    settings = DiagnosticsSection()
    long_chunks = sampling_floor(run, 12 * 120, settings)
    short_chunks = sampling_floor(run, 12 * 40, settings)
    assert long_chunks["n_chunks"] == 4 and long_chunks["n_pairs"] == 6
    assert short_chunks["n_chunks"] == 12 and short_chunks["n_pairs"] == 66
    # Distances between samples of one law are positive and shrink with the sample length (about as n^-1/2).
    for metric in ("hellinger", "wasserstein1", "abs_diff_skewness"):
        assert 0 < long_chunks["nino3"][metric]["mean"] < short_chunks["nino3"][metric]["mean"]
    # |Δ skewness| of two independent Gaussian samples of n: mean √(2·6/n)·√(2/π).
    expected = np.sqrt(12 / (12 * 40)) * np.sqrt(2 / np.pi)
    assert short_chunks["nino3"]["abs_diff_skewness"]["mean"] == pytest.approx(expected, rel=0.3)
    # A run shorter than two chunks has no floor.
    assert sampling_floor(long_run(rng.standard_normal((1, 12 * 50))), 12 * 40, settings)["n_pairs"] == 0


# --------------------------------------------------------------------------------------------------- end to end

SPECS = {
    # The operational model: westward-shifted, too strong, symmetric ENSO; the bridging model: like the reanalysis.
    "operational": dict(n_years=80, skew_coefficient=-0.05, amplitude=1.3, shift_deg=20, seed=1, source_id="OP"),
    "free_run": dict(n_years=80, n_members=2, skew_coefficient=-0.05, amplitude=1.2, shift_deg=20, seed=2, source_id="free_run_OP", source_kind="free_run"),
    "bridging": dict(n_years=100, n_members=3, skew_coefficient=0.15, amplitude=0.8, seed=3, source_id="bridging_OP", source_kind="bridging"),
    "reanalysis": dict(n_years=43, first_year=1981, skew_coefficient=0.15, amplitude=0.8, seed=4, source_id="REAN", source_kind="reanalysis"),
}
SETTINGS = {"bootstrap_samples": 100}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Run the per-source stage functions and the comparison on synthetic stores; return the paths."""
    root = tmp_path_factory.mktemp("diagnostics")
    inputs = {}
    layout = root / "pseudo_obs.zarr"
    for role, spec in SPECS.items():
        ds = synthetic_store(**spec)
        if not layout.exists():
            write_zarr_atomic(synthetic_layout_store(ds["lat"].values, ds["lon"].values), layout)
        write_store(ds, root / f"{role}.zarr")
        out = {"statistics": root / role / "statistics.json", "indices": root / role / "indices.nc", "maps": root / role / "maps.nc"}
        gridded_source_diagnostics(root / f"{role}.zarr", diagnostics=SETTINGS, layout=layout, **out)
        inputs.update({f"{role}_{k}": v for k, v in out.items()})
    write_zarr_atomic(synthetic_idealized_run(n_years=300, skew_coefficient=0.15, seed=9), root / "idealized.zarr")
    out = {"statistics": root / "idealized" / "statistics.json", "indices": root / "idealized" / "indices.nc"}
    idealized_source_diagnostics(root / "idealized.zarr", diagnostics=SETTINGS, **out)
    inputs.update({f"idealized_{k}": v for k, v in out.items()})
    outputs = {k: root / "OP" / name for k, name in (("comparison", "comparison.json"), ("table_csv", "comparison.csv"), ("table_md", "comparison.md"), ("acceptance", "acceptance.json"))}
    result = compare_model("OP", {"code": "ignored", **inputs}, outputs, diagnostics=SETTINGS)
    return {"root": root, "inputs": inputs, "outputs": outputs, "result": result}


def strict_json(path):
    def refuse(token):
        raise ValueError(f"{path}: non-standard JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_outputs_are_strict_json_with_the_documented_keys(pipeline):
    stats = strict_json(pipeline["inputs"]["bridging_statistics"])
    assert stats["n_members"] == 3 and stats["kind"] == "bridging"
    for index in ("nino3", "nino34", "nino4", "wp_thermocline"):
        for moment in ("std", "skewness", "kurtosis"):
            s = stats["indices"][index][moment]
            assert s["ci_low"] <= s["value"] <= s["ci_high"] and s["se"] > 0
        assert len(stats["indices"][index]["members"]["std"]) == 3
        assert len(stats["indices"][index]["monthly_variance"]["value"]) == 12
    assert set(stats["events"]["counts"]) == {"ep", "cp", "la_nina", "extreme_ep"}
    assert strict_json(pipeline["outputs"]["acceptance"])["criteria"]
    strict_json(pipeline["outputs"]["comparison"])


def test_the_bridging_model_built_like_the_reference_is_accepted_against_it(pipeline):
    """The synthetic bridging model has the reanalysis' statistics and the operational model does not: the
    distribution criteria against the reanalysis must pass (a mix-up of roles or references would fail them)."""
    acc = {c["name"]: c for c in pipeline["result"]["acceptance"]["criteria"]}
    for index in ("nino3", "nino4"):
        assert acc[f"hellinger_{index}_vs_reanalysis"]["passed"], acc[f"hellinger_{index}_vs_reanalysis"]
    assert acc["skewness_nino3_vs_reanalysis"]["applies"] and acc["skewness_nino3_vs_reanalysis"]["passed"]
    assert acc["residual_std_sst"]["passed"]
    comp = next(c for c in pipeline["result"]["comparisons"] if c["source"] == "bridging" and c["reference"] == "reanalysis")
    assert comp["maps"]["sst_regression_nino3"]["pattern_correlation"] > 0.95


def test_table_has_a_row_per_source_and_reference_plus_the_floor(pipeline):
    with open(pipeline["outputs"]["table_csv"]) as fh:
        rows = list(csv.DictReader(fh))
    pairs = [(r["source"], r["reference"]) for r in rows]
    for role in ("operational", "free_run", "bridging"):
        assert (role, "reanalysis") in pairs and (role, "idealized") in pairs
    assert ("reanalysis", "idealized") in pairs and ("idealized", "reanalysis") in pairs
    floors = [r for r in rows if r["source"].startswith("sampling floor")]
    assert len(floors) == 6 and {r["years"] for r in floors} == {"100", "43", "80"}  # bridging, reanalysis, operational lengths
    bridging = next(r for r in rows if r["source"] == "bridging" and r["reference"] == "reanalysis")
    assert float(bridging["nino3_hellinger"]) >= 0 and float(bridging["sst_std_pattern_correlation"]) <= 1
    md = pipeline["outputs"]["table_md"].read_text()
    assert "## Acceptance:" in md and "Sampling floor" in md and "| bridging model |" in md
    # Every row of every Markdown table has its header's number of cells (a stray | would add one).
    columns = None
    for line in md.splitlines():
        if not line.startswith("|"):
            columns = None
            continue
        n = len(re.findall(r"(?<!\\)\|", line))
        columns = columns or n
        assert n == columns, line


@pytest.mark.slow
def test_every_figure_is_written(pipeline, tmp_path):
    figures = {name: tmp_path / f"{name}.png" for name in FIGURES}
    plot_model("OP", {**pipeline["inputs"], "comparison": pipeline["outputs"]["comparison"]}, figures, plotting={"dpi": 60})
    for name, path in figures.items():
        assert path.stat().st_size > 5000, name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
