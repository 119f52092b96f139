"""The tiny sweeps of config/test.yaml on top of a complete tiny run: `snakemake -n sweeps` plans nothing upstream of the filter and ONE filter job per sweep and
model; the batched R sweep completes with its summary, the λ sweep retrains its chain and runs its filter job, and the
hierarchy sweep's filter job assimilates CF23 with CFY22.
Looped sweeps, SST-only assimilation and determinism are tested on the library (tests/test_sweeps.py,
tests/test_da_run.py): the suite's time has no room for every sweep of the tiny config.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from workflow_helpers import TINY, planned_jobs, snakemake

from bridging.layout import RunLayout

pytestmark = pytest.mark.slow

MODELS = ("DEMO-CESM2", "DEMO-GFDL-CM4")
SWEEPS = {
    "ensemble_size": ["6", "10"],
    "obs_error": ["0.02", "0.08"],
    "observed_variables": ["sst", "sst+thermocline_depth"],
    "obs_noise": ["0.0", "1.0"],
    "obs_thinning": ["1", "2"],
    "lambda": ["0.5"],  # one value: the suite's time has room for one retrained chain per model
    "hierarchy": ["cf23", "cf23+cfy22"],
    "localization": ["false", "true"],
}
# every job of the main run that a sweep must not plan again: data, stores, idealized runs, models, latent stores,
# the main filter runs and the other sources' diagnostics
UPSTREAM = {
    "demo_data", "build_catalog", "regrid_weights", "ingest", "idealized_reference", "pseudo_obs", "train_autoencoder",
    "encode", "train_forecast", "assimilate", "free_run", "decode", "diagnostics_source", "diagnostics_idealized",
    "diagnostics_compare",
}  # fmt: skip


def test_sweeps_share_the_main_run_and_retrain_only_for_lambda(tiny_run, tmp_path):
    work = shutil.copytree(tiny_run, tmp_path / "project", symlinks=True)  # the session's run stays untouched
    run = RunLayout("results", "test")

    plan = snakemake(work, "-n", "sweeps", *TINY).stdout
    jobs = planned_jobs(plan)
    # the hierarchy's other model is new, not the main run's: one pseudo_obs job, for CFY22
    outputs = [line.split("output:", 1)[1] for line in plan.splitlines() if line.strip().startswith("output:")]
    assert jobs.pop("pseudo_obs") == 1 and [o for o in outputs if "pseudo_obs/" in o] == [
        " results/test/pseudo_obs/cfy22.zarr.done.json"
    ]
    assert not UPSTREAM & set(jobs), f"a sweep re-plans the main run: {UPSTREAM & set(jobs)}"
    assert jobs["sweep_filter"] == len(SWEEPS) * len(MODELS)  # one filter job per sweep and model, for all values
    n_points = sum(len(v) for v in SWEEPS.values()) * len(MODELS)
    assert jobs["sweep_decode"] == jobs["sweep_diagnostics_source"] == jobs["sweep_compare"] == n_points
    assert jobs["sweep_propagation"] == n_points
    assert jobs["sweep_summary"] == len(SWEEPS)
    # λ: each value its own autoencoder, latent stores and forecast model, by the main run's rules
    for rule in ("sweep_train_autoencoder", "sweep_encode", "sweep_train_forecast"):
        assert jobs[rule] == len(SWEEPS["lambda"]) * len(MODELS), rule

    # the batched sweep (both R values in one filter run per model) through to its summary
    summary = run.sweep_summary("obs_error", "csv")
    lambda_manifest = run.sweep_filter("lambda", MODELS[0])
    hierarchy_manifest = run.sweep_filter("hierarchy", MODELS[0])
    snakemake(work, "--cores", "2", summary, lambda_manifest, hierarchy_manifest, *TINY, timeout=1500)
    rows = list(csv.DictReader((work / summary).open()))
    assert [(r["model"], r["value"]) for r in rows] == [(m, v) for m in MODELS for v in SWEEPS["obs_error"]]
    for row in rows:
        for column in ("nino3_std", "nino3_skewness_ci_low", "nino4_hellinger", "nino4_hellinger_null_high",
                       "innovation_ratio", "min_decadal_consistency", "analysis_increment_rms",
                       "sst_truth_correlation", "thermocline_depth_truth_correlation_free_run",
                       "ep_per_century", "la_nina_per_century_ci_high", "nino3_nino4_correlation"):  # fmt: skip
            assert np.isfinite(float(row[column])), (column, row)
        assert row["withheld_innovation_ratio"] == ""  # every observable assimilated
    assert "| model |" in (work / run.sweep_summary("obs_error", "md")).read_text()
    assert "<table>" in (work / run.sweep_summary("obs_error", "html")).read_text()
    assert (work / run.sweep_summary("obs_error", "png")).stat().st_size > 10_000
    batched = json.loads((work / run.sweep_filter("obs_error", MODELS[0])).read_text())
    assert [g["name"] for g in batched["groups"]] == ["batched"]
    # λ: one filter run per value, each on its own models
    retrained = json.loads((work / lambda_manifest).read_text())
    assert [g["name"] for g in retrained["groups"]] == ["lambda_corr-0.5"]
    for label in SWEEPS["lambda"]:
        point = run.sweep_point("lambda", label)
        metrics = json.loads((work / point.model_file(MODELS[0], "autoencoder_metrics.json")).read_text())
        assert metrics["loss"]["lambda_corr"] == float(label)
        statistics = json.loads((work / retrained["points"][label]["statistics"]).read_text())
        assert np.isfinite(statistics["overall"]["innovation_ratio"][0])
    # the tiny hierarchy: CF23 alone, then CF23 and CFY22's three boxes as derived rows of one observation vector
    hierarchy = json.loads((work / hierarchy_manifest).read_text())
    assert [g["name"] for g in hierarchy["groups"]] == ["sources-cf23", "sources-cf23+cfy22"]
    statistics = json.loads((work / hierarchy["points"]["cf23+cfy22"]["statistics"]).read_text())
    assert [r["model"] for r in statistics["hierarchy"]["derived_rows"]] == ["cfy22"] * 3
    assert set(statistics["hierarchy"]["per_model"]) == {"cf23", "cfy22"}
    assert np.isfinite(statistics["hierarchy"]["per_model"]["cfy22"]["innovation_ratio"]).all()
    # the main run is complete and untouched: nothing of `all` to do
    assert not planned_jobs(snakemake(work, "-n", "all", *TINY).stdout)
