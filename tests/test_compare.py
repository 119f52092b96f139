"""The comparison: equal-footing tests against two references, the effects of curriculum and filter, the two-sided
acceptance criteria, the tables and figures, end to end over the per-source stage functions."""

from __future__ import annotations

import csv
import json
import logging
import math
import re

import pytest

from bridging.atomic import write_zarr_atomic
from bridging.diagnostics import FIGURES
from bridging.diagnostics.acceptance import (
    closeness_criterion,
    ep_cp_criterion,
    find_test,
    goal_criterion,
    residual_criteria,
)
from bridging.diagnostics.compare import find_effect
from bridging.diagnostics.run import compare_model, gridded_source_diagnostics, idealized_source_diagnostics, plot_model
from bridging.diagnostics.synthetic import synthetic_idealized_run, synthetic_layout_store, synthetic_store
from bridging.settings import AcceptanceSection
from bridging.stores import write_store

# --------------------------------------------------------------------------------------------------- acceptance


def entry(
    source,
    *,
    value,
    reference_value=0.0,
    inside=True,
    se=0.05,
    statistic="skewness",
    two_sided=True,
    low=-0.3,
    high=0.3,
):
    return {
        "source": source, "reference": "idealized", "index": "nino3", "statistic": statistic, "record_months": 1200,
        "length_kind": "common", "value": value, "reference_value": reference_value, "inside_null_band": inside,
        "two_sided": two_sided, "se": se, "null_low": low, "null_high": high, "p_value": 0.5,
    }  # fmt: skip


def test_a_degradation_fails_even_where_the_operational_model_was_indistinguishable():
    """Two-sided: the old rule let a criterion "not apply" where the operational model was within noise, so a bridging
    model that moved away could not fail."""
    op = entry("operational", value=-0.1, inside=True)  # |Δ| 0.1, inside the band: nothing to improve
    far = closeness_criterion(op, entry("bridging", value=0.4), significance_se=2.0)  # moved away by 0.3 > 2 × 0.07
    assert far["applies"] and not far["passed"] and far["degraded"]
    near = closeness_criterion(op, entry("bridging", value=0.15), significance_se=2.0)  # 0.05 further: within 2 SE
    assert near["passed"] and not near["degraded"]


def test_where_the_operational_model_is_off_the_bridging_model_must_be_closer():
    op = entry("operational", value=0.6, inside=False)
    assert not closeness_criterion(op, entry("bridging", value=0.62), 2.0)["passed"]  # not closer (though within 2 SE)
    assert closeness_criterion(op, entry("bridging", value=0.2), 2.0)["passed"]
    # distances: the value itself is the distance to the reference
    h_op = entry("operational", value=0.30, inside=False, statistic="hellinger", two_sided=False, se=0.01)
    assert closeness_criterion(
        h_op, entry("bridging", value=0.12, statistic="hellinger", two_sided=False, se=0.01), 2.0
    )["passed"]
    assert not closeness_criterion(
        h_op, entry("bridging", value=0.31, statistic="hellinger", two_sided=False, se=0.01), 2.0
    )["passed"]


def test_the_filter_goal_is_the_idealized_null_band():
    assert goal_criterion(entry("bridging", value=0.1, inside=True))["passed"]
    fail = goal_criterion(entry("bridging", value=0.5, inside=False))
    assert not fail["passed"] and fail["threshold"] == [-0.3, 0.3]


def events(ratio, se=0.2):
    return {"ep_cp_ratio": None if not math.isfinite(ratio) else ratio, "bootstrap": {"ep_cp_ratio": {"se": se}}}


def test_ep_cp_ratio_is_two_sided():
    def crit(ref, op, br):
        result = {"event_statistics": {"idealized": events(ref), "operational": events(op), "bridging": events(br)}}
        return ep_cp_criterion(result, "idealized", 2.0)

    assert not crit(1.2, 1.3, 2.5)["passed"]  # moved away by 1.2 > 2 × 0.28, though the operational model was fine
    assert crit(1.2, 1.3, 1.5)["passed"]  # within 2 SE
    assert not crit(1.2, 3.0, 3.1)["passed"]  # significantly off and not closer
    assert crit(1.2, float("inf"), 2.0)["passed"]  # a finite ratio is closer than an undefined one
    undefined = crit(float("inf"), 3.0, 2.0)
    assert not undefined["applies"] and "no CP" in undefined["note"]


def test_residual_std_map_needs_pattern_and_amplitude():
    def result(corr, amp):
        off = {
            f"{f}_residual_std": {"pattern_correlation": corr, "amplitude_ratio": amp}
            for f in ("sst", "thermocline_depth")
        }
        return {"versus_operational": {"bridging": {"off_equator": off}}}

    assert not residual_criteria(result(0.85, 0.65), AcceptanceSection())[0]["passed"]
    assert not residual_criteria(result(0.79, 0.95), AcceptanceSection())[1]["passed"]
    assert all(c["passed"] for c in residual_criteria(result(0.9, 0.9), AcceptanceSection()))
    assert not residual_criteria(result(0.9, 0.9), AcceptanceSection(residual_pattern_correlation=0.95))[0]["passed"]


# --------------------------------------------------------------------------------------------------- end to end

SPECS = {
    # The operational model: westward-shifted, too strong, symmetric ENSO; the bridging model: like the reanalysis.
    "operational": dict(n_years=80, skew_coefficient=-0.05, amplitude=1.3, shift_deg=20, seed=1, source_id="OP"),
    "free_run": dict(
        n_years=80,
        n_members=2,
        skew_coefficient=-0.05,
        amplitude=1.2,
        shift_deg=20,
        seed=2,
        source_id="free_run_OP",
        source_kind="free_run",
    ),
    "bridging": dict(
        n_years=100,
        n_members=3,
        skew_coefficient=0.15,
        amplitude=0.8,
        seed=3,
        source_id="bridging_OP",
        source_kind="bridging",
    ),
    "reanalysis": dict(
        n_years=43,
        first_year=1981,
        skew_coefficient=0.15,
        amplitude=0.8,
        seed=4,
        source_id="REAN",
        source_kind="reanalysis",
    ),
}
SETTINGS = {"bootstrap_samples": 100, "null_samples": 200}


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
        out = {
            "statistics": root / role / "statistics.json",
            "indices": root / role / "indices.nc",
            "maps": root / role / "maps.nc",
        }
        gridded_source_diagnostics(root / f"{role}.zarr", diagnostics=SETTINGS, layout=layout, **out)
        inputs.update({f"{role}_{k}": v for k, v in out.items()})
    write_zarr_atomic(synthetic_idealized_run(n_years=300, skew_coefficient=0.15, seed=9), root / "idealized.zarr")
    out = {"statistics": root / "idealized" / "statistics.json", "indices": root / "idealized" / "indices.nc"}
    idealized_source_diagnostics(root / "idealized.zarr", diagnostics=SETTINGS, **out)
    inputs.update({f"idealized_{k}": v for k, v in out.items()})
    names = (("comparison", "comparison.json"), ("table_csv", "comparison.csv"), ("table_md", "comparison.md"),
             ("summary_html", "summary.html"), ("tests_html", "tests.html"), ("acceptance_html", "acceptance.html"),
             ("acceptance", "acceptance.json"))  # fmt: skip
    outputs = {k: root / "OP" / name for k, name in names}
    result = compare_model("OP", {"code": "ignored", **inputs}, outputs, diagnostics=SETTINGS)
    return {"root": root, "inputs": inputs, "outputs": outputs, "result": result}


def strict_json(path):
    def refuse(token):
        raise ValueError(f"{path}: non-standard JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_outputs_follow_the_documented_contract(pipeline):
    stats = strict_json(pipeline["inputs"]["bridging_statistics"])
    assert stats["n_members"] == 3 and stats["kind"] == "bridging" and "box means" in stats["index_operator"]
    for index in ("nino3", "nino34", "nino4", "wp_thermocline"):
        for moment in ("std", "skewness", "kurtosis"):
            s = stats["indices"][index][moment]
            assert s["ci_low"] <= s["value"] <= s["ci_high"] and s["se"] > 0
    comparison = strict_json(pipeline["outputs"]["comparison"])
    for role in ("operational", "free_run", "bridging", "reanalysis", "idealized"):
        for index in ("nino3", "nino34", "nino4"):
            assert all(
                isinstance(comparison["sources"][role][index][m], float) for m in ("std", "skewness", "kurtosis")
            )
    keys = {"source", "reference", "index", "statistic", "value", "null_low", "null_high", "p_value", "record_months"}
    assert comparison["tests"] and all(keys <= set(t) for t in comparison["tests"])
    assert {t["statistic"] for t in comparison["tests"]} == {"std", "skewness", "kurtosis", "hellinger", "wasserstein1"}
    assert all(isinstance(c["passed"], bool) for c in strict_json(pipeline["outputs"]["acceptance"])["criteria"])


def test_every_comparison_is_at_equal_length(pipeline):
    """Against the reanalysis (43 years) every source is cut into 43-year chunks; against the idealized long run (300
    years) all three model sources at the shortest of them (the operational model's 80 years), and the bridging
    model also at its own 100 years."""
    tests = pipeline["result"]["tests"]
    vs_reanalysis = {t["record_months"] for t in tests if t["reference"] == "reanalysis"}
    assert vs_reanalysis == {12 * 43}
    common = {t["record_months"] for t in tests if t["reference"] == "idealized" and t["length_kind"] == "common"}
    assert common == {12 * 80}
    pair = find_test(pipeline["result"], "bridging", "idealized", "nino3", "std", kind="pair")
    assert pair["record_months"] == 12 * 100 and pair["n_chunks"] == 3  # 3 members × one 100-year chunk
    # a 300-year reference holds 3 chunks of 100 years, fewer than the null needs: block-bootstrap records instead
    assert pair["null_method"] == "block_bootstrap"
    rean = find_test(pipeline["result"], "bridging", "reanalysis", "nino3", "std")
    assert rean["n_chunks"] == 6 and rean["null_method"] == "block_bootstrap"  # 3 members × 2 chunks of 43 years


def test_the_bridging_model_built_like_the_reanalysis_is_indistinguishable_from_it(pipeline):
    """The synthetic bridging model has the reanalysis' statistics and the operational model does not (too strong,
    shifted): the equal-footing tests must see exactly that (a mix-up of roles or references would not)."""
    result = pipeline["result"]
    bridging = [t for t in result["tests"] if t["source"] == "bridging" and t["reference"] == "reanalysis"]
    inside = [t["inside_null_band"] for t in bridging]
    # each test of a source of the reference's law falls outside its 90 % band one time in ten
    assert len(inside) == 15 and sum(inside) >= 12, [
        (t["index"], t["statistic"]) for t in bridging if not t["inside_null_band"]
    ]
    for statistic in ("std", "hellinger"):  # the operational pattern, 30 % too strong and shifted, is seen as such
        op = find_test(result, "operational", "reanalysis", "nino34", statistic)
        assert not op["inside_null_band"] and op["p_value"] < 0.05, statistic
    assert {c["name"]: c for c in result["acceptance"]["criteria"]}["residual_std_sst"]["passed"]
    assert result["maps"]["bridging"]["sst_regression_nino3"]["pattern_correlation"] > 0.95


def test_effects_split_curriculum_and_filter_with_p_values(pipeline):
    effects = pipeline["result"]["effects"]
    assert {e["effect"] for e in effects} == {"curriculum", "filter"}
    std = find_effect(pipeline["result"], "filter", "nino34", "std")
    # synthetic bridging amplitude 0.8, unshifted, against the free run's 1.2, shifted: a large, significant effect
    assert std["difference"] < -0.2 and std["p_value"] < 0.01 and std["se"] > 0
    for effect in ("curriculum", "filter"):
        for index in ("nino3", "nino34", "nino4"):
            for statistic in ("std", "skewness", "kurtosis"):
                assert find_effect(pipeline["result"], effect, index, statistic) is not None
            for ref in ("idealized", "reanalysis"):
                assert find_effect(pipeline["result"], effect, index, "hellinger", ref) is not None


def test_tables_open_with_the_summary_and_are_well_formed(pipeline):
    with open(pipeline["outputs"]["table_csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(pipeline["result"]["tests"])
    assert {r["null_method"] for r in rows} <= {"chunks", "block_bootstrap"}
    md = pipeline["outputs"]["table_md"].read_text()
    assert md.index("## Summary") < md.index("## Effects") < md.index("## Acceptance")
    assert "| Niño 3 | skewness |" in md
    # Every row of every Markdown table has its header's number of cells (a stray | would add one).
    columns = None
    for line in md.splitlines():
        if not line.startswith("|"):
            columns = None
            continue
        n = len(re.findall(r"(?<!\\)\|", line))
        columns = columns or n
        assert n == columns, line
    html = pipeline["outputs"]["summary_html"].read_text()
    assert html.count("<table>") == md.count("\n|---") and "Summary" in html
    # the report's pages: the equal-footing summary first, the tables with bootstrap intervals in it
    assert html.index("<h2>Summary") < html.index("<h2>DJF events") < html.index("<h2>Pooled moments")
    assert re.search(r"<td>-?\d+\.\d+ \[-?\d+\.\d+, -?\d+\.\d+\]</td>", html)
    tests_html = pipeline["outputs"]["tests_html"].read_text()
    assert tests_html.count("<tr>") == len(rows) + 1  # one row per test of comparison.csv, and the header
    acceptance_html = pipeline["outputs"]["acceptance_html"].read_text()
    criteria = pipeline["result"]["acceptance"]["criteria"]
    assert acceptance_html.count("<tr>") == len(criteria) + 1 and all(c["name"] in acceptance_html for c in criteria)


@pytest.mark.slow
def test_every_figure_is_written(pipeline, tmp_path, caplog):
    figures = {name: tmp_path / f"{name}.png" for name in FIGURES}
    with caplog.at_level(logging.WARNING):
        plot_model("OP", {**pipeline["inputs"], "comparison": pipeline["outputs"]["comparison"]}, figures, plotting={})
    # every figure's smallest text is legible at the report's width (bridging.diagnostics.figstyle)
    assert not [r.getMessage() for r in caplog.records if r.name == "bridging.diagnostics.figstyle"]
    for name, path in figures.items():
        assert path.stat().st_size > 5000, name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
