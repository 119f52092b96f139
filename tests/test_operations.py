"""Operations, on the real workflow with the tiny CI config: a complete run, the report, minimal reruns after
edits, resuming a killed run, and the same workflow submitted through a real single-node SLURM cluster.

One complete tiny run (both demo models, two realizations each; the session fixture ``tiny_run`` in conftest.py) is
shared with the SLURM test; every test works in its own scratch copy of the project, never in the checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from cf_check import cf_check_report
from workflow_helpers import RUN, SNAKEMAKE, TINY, planned_jobs, snakemake, tiny

from bridging.cf import missing_attributes
from bridging.layout import sentinel
from bridging.reportcheck.check import embedded, static_problems

pytestmark = pytest.mark.slow

MODELS = ("DEMO-CESM2", "DEMO-GFDL-CM4")


def _copy_run(src: Path, dest: Path) -> Path:
    """A copy of a completed run (project + data + results + .snakemake metadata), timestamps preserved."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


def test_tiny_run_outputs(tiny_run):
    run = tiny_run / RUN
    for model in MODELS:
        bridging = xr.open_zarr(run / f"stores/bridging_{model}.zarr")
        assert bridging.sizes["member"] == 2  # scale-out: two realizations per model
        assert bridging["sst"].dims == ("member", "time", "lat", "lon")
        assert bridging.sizes["time"] == 12 * 20  # as long as the pseudo-observation record
        assert np.isfinite(bridging["sst"].isel(time=0, member=0).values).any()
        comparison = json.loads((run / f"diagnostics/{model}/comparison.json").read_text())
        assert comparison
        assert (run / f"diagnostics/{model}/comparison.md").read_text().count("|") > 20
        assert (run / f"diagnostics/{model}/figures/explain_gain_responses.png").stat().st_size > 10_000
    resolved = (run / "provenance/config.resolved.yaml").read_text()
    assert "name: test" in resolved
    versions = json.loads((run / "provenance/versions.json").read_text())
    assert versions["packages"]["torch"].startswith("2.13.0")


def _outputs(run: Path) -> tuple[list[Path], list[Path]]:
    """The zarr stores and netCDF files of a run (hidden sidecars and temporaries left out)."""
    stores = sorted(p for p in run.rglob("*.zarr") if not any(part.startswith(".") for part in p.parts[-2:]))
    netcdfs = sorted(p for p in run.rglob("*.nc") if not p.name.startswith("."))
    return stores, netcdfs


def test_every_output_opens_without_warnings_and_is_cf_complete(tiny_run, tmp_path):
    """Every store and netCDF of the run opens with plain xarray, warnings as errors (consolidated metadata, no
    Snakemake file inside a store), has the project's CF attributes and a config hash, and a CF checker finds no
    error in any of them (the zarr stores through a netCDF copy of their first months)."""
    run = tiny_run / RUN
    stores, netcdfs = _outputs(run)
    assert len(stores) == 5 + 2 * 6, [p.relative_to(run) for p in stores]  # 3 sources, idealized ×2; 6 per model
    assert len([p for p in netcdfs if p.parent.parent.name == "sources"]) == 2 * 3 + 2 * 4 + 2
    opened = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in stores:
            assert not (path / ".snakemake_timestamp").exists(), path
            record = json.loads(Path(sentinel(str(path))).read_text())
            assert tiny_run / record["store"] == path and record["config_hash"]  # relative to the project
            opened[path] = xr.open_zarr(path)
        for path in netcdfs:
            opened[path] = xr.open_dataset(path)
    for path, ds in opened.items():
        rel = path.relative_to(run)
        if rel.parts[0] == "weights":  # regrid weights: an internal sparse matrix, not a result
            continue
        assert not missing_attributes(ds), (rel, missing_attributes(ds))
        assert ds.attrs["Conventions"] == "CF-1.11", rel
        provenance = json.loads(ds.attrs["provenance"])
        assert provenance["config_hash"] and ds.attrs["config_hash"] == provenance["config_hash"], rel
    for model in MODELS:
        bridging = opened[run / f"stores/bridging_{model}.zarr"]
        assert bridging.attrs["time_coverage_start"] == "0001-01"  # model years, stated as such
        assert "store" in bridging.attrs["climatology_source"]
    # Closed before the checker opens the same files: netCDF-C breaks a file opened twice in one process once one
    # handle closes (later opens fail with "NetCDF: HDF error"), which took down the next test's catalog loads.
    for ds in opened.values():
        ds.close()
    report = cf_check_report([p for p in opened if p.relative_to(run).parts[0] != "weights"], tmp_path)
    errors = {name: result["errors"] for name, result in report.items() if result["errors"]}
    assert not errors, json.dumps(errors, indent=1)[:4000]


def test_results_catalog_opens_every_output(tiny_run):
    """The run's two catalogs list every store and diagnostics file, and the README's intake-esm lines (the stores
    with intake-esm's defaults: threads, dask's "auto" chunks) open each."""
    import intake

    from bridging.io.catalog import load_datasets

    run = tiny_run / RUN
    stores = {p.relative_to(run) for p in run.glob("**/*.zarr")}
    netcdfs = {p.relative_to(run) for p in run.glob("**/*.nc")} - {p.relative_to(run) for p in run.glob("weights/*.nc")}
    listed = {}
    for part, catalog in (("stores", run / "catalog.json"), ("diagnostics", run / "diagnostics/catalog.json")):
        df = intake.open_esm_datastore(str(catalog)).df
        listed[part] = {Path(p.removeprefix("file://")).relative_to(run.resolve()) for p in df["path"]}
    assert listed == {"stores": stores, "diagnostics": netcdfs} and (len(stores), len(netcdfs)) == (17, 16)

    readme = (tiny_run / "README.md").read_text().split("## Using the results")[1].split("\n## ")[0]
    snippet = [code for code in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "intake" in code][0]
    scope: dict = {}
    exec(compile(snippet.replace("results/demo", str(run)), "README.md", "exec"), scope)  # noqa: S102 - our README
    dsets = {**scope["stores"], **scope["diagnostics"]}
    assert len(scope["stores"]) == 17 and len(dsets) == 33
    assert dsets["bridging.DEMO-GFDL-CM4"]["sst"].dims == ("member", "time", "lat", "lon")
    assert dsets["bridging.DEMO-CESM2"].sizes["member"] == 2
    assert "innovation_ratio" in dsets["assimilation.DEMO-CESM2"]
    assert "sst_regression_nino3" in dsets["maps.bridging_DEMO-CESM2"]
    assert "sosstsst" not in dsets["ingested.ORAS5"] and "sst" in dsets["ingested.ORAS5"]
    assert set(load_datasets(run / "catalog.json", kind="bridging")) == {f"bridging.{m}" for m in MODELS}


def test_report(tiny_run, tmp_path):
    """The report's sections in order, every item viewable in it (figures and HTML tables, no CSV / JSON
    attachment), nothing under "Other"; what a browser shows is the documented check `make report-check`."""
    report = tmp_path / "report.html"
    snakemake(tiny_run, "--report", str(report), *TINY, timeout=600)
    results, categories = embedded(report.read_text(errors="replace"))
    assert static_problems(results, categories) == []
    assert sorted(categories) == [
        "1. Evidence: comparison tables", "2. ENSO diagnostics", "3. Explainability", "4. Filter health",
        "5. Training and forecast gate",
    ]  # fmt: skip
    for category, per_model in categories.items():
        assert sorted(per_model) == sorted(MODELS), category
    names = {Path(p).name for p in results}
    assert {"summary.html", "tests.html", "acceptance.html", "filter_health.png", "forecast_gate.png",
            "autoencoder_curves.png", "forecast_curves.png"} <= names  # fmt: skip


def _dry_run_jobs(work: Path, *overlays: str) -> dict[str, int]:
    proc = snakemake(work, "-n", "all", *tiny(*overlays), timeout=600)
    if "Nothing to be done" in proc.stdout + proc.stderr:
        return {}
    return planned_jobs(proc.stdout)


def _overlay(work: Path, text: str) -> str:
    path = work / "config" / "edit.yaml"
    path.write_text(text)
    return str(path.relative_to(work))


def _per_model(catalog: bool = True, **rules: int) -> dict[str, int]:
    """Jobs per model, and the run's one `all` and (when an output changes) its one results catalog."""
    return (
        {name: count * len(MODELS) for name, count in rules.items()}
        | {"all": 1}
        | ({"results_catalog": 1} if catalog else {})
    )


def test_reruns_after_edits(tiny_run, tmp_path):
    work = _copy_run(tiny_run, tmp_path / "copy")
    assert _dry_run_jobs(work) == {}, "a complete run must be up to date"

    # (a) EnKF inflation: the assimilation and what reads it (the known-truth propagation test reads the bridging
    # store); not the free run (no analysis), models or inputs
    jobs = _dry_run_jobs(work, _overlay(work, "da: {inflation: 1.2}\n"))
    assert jobs == _per_model(
        assimilate=1, decode=1, diagnostics_source=1, diagnostics_compare=1, diagnostics_plots=1, explain=1,
        propagation=1, filter_health=1,
    )  # fmt: skip

    # (b) autoencoder λ: the autoencoder and everything downstream, not ingestion, stores, idealized runs, demo data
    jobs = _dry_run_jobs(work, _overlay(work, "autoencoder: {lambda_corr: 0.5}\n"))
    assert jobs == _per_model(
        train_autoencoder=1, encode=1, train_forecast=1, assimilate=1, free_run=1, decode=2,
        diagnostics_source=2, diagnostics_compare=1, diagnostics_plots=1, explain=1, propagation=1, filter_health=1,
    )  # fmt: skip

    # (c) a plotting option: figures only (the propagation rule draws one)
    jobs = _dry_run_jobs(work, _overlay(work, "diagnostics: {plotting: {dpi: 90}}\n"))
    assert jobs == _per_model(diagnostics_plots=1, explain=1, propagation=1, filter_health=1, catalog=False)

    # (e) a comment-only edit of a config file: nothing
    (work / "config/edit.yaml").unlink()
    test_yaml = work / "config/test.yaml"
    test_yaml.write_text(test_yaml.read_text() + "# a comment changes nothing\n")
    assert _dry_run_jobs(work) == {}

    # (d) an edit inside src/bridging/da/: the jobs that run that code and their downstream
    module = work / "src/bridging/da/localization.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    jobs = _dry_run_jobs(work)
    assert jobs == _per_model(
        assimilate=1, free_run=1, decode=2, diagnostics_source=2, diagnostics_compare=1, diagnostics_plots=1, explain=1,
        propagation=1, filter_health=1,
    )  # fmt: skip


def test_thread_count_reruns_nothing(tiny_run, tmp_path):
    """compute.torch_threads sizes the torch jobs (threads:) and changes no result: a complete run stays complete."""
    for threads in (1, 3):
        overlay = tmp_path / f"threads{threads}.yaml"
        overlay.write_text(f"compute: {{torch_threads: {threads}}}\n")
        assert _dry_run_jobs(tiny_run, str(overlay)) == {}, f"torch_threads: {threads} plans jobs"


def _wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_run_resumes_from_checkpoints(tiny_run, tmp_path):
    """Kill the run during the assimilation, start it again: it resumes from the filter checkpoint and the result
    equals the uninterrupted run's; no partial store is left where a later rule would read it."""
    work = _copy_run(tiny_run, tmp_path / "copy")
    model = MODELS[0]
    target = work / RUN / f"assimilation/{model}.zarr"
    reference = xr.open_zarr(tiny_run / RUN / f"assimilation/{model}.zarr")["members"].values
    shutil.rmtree(target)
    (work / RUN / f"assimilation/{model}_statistics.json").unlink()
    checkpoint = target.parent / f".{target.name}.resume" / "checkpoint.pt"
    env = {
        **os.environ,
        "OMP_WAIT_POLICY": "PASSIVE",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = Path(sentinel(str(target)))  # the rule's output that stands for the store
    done.unlink()
    args = [SNAKEMAKE, "--cores", "2", str(done.relative_to(work)), *TINY]
    proc = subprocess.Popen(
        args, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_for(checkpoint.exists, 600, "the first filter checkpoint")
        os.killpg(proc.pid, signal.SIGKILL)  # as a node failure would: no clean-up of any kind
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not target.exists(), "a killed assimilation must not leave its store in place"
    snakemake(work, "--unlock", *TINY, timeout=300)  # a killed Snakemake leaves its lock behind
    result = snakemake(work, "--cores", "2", str(done.relative_to(work)), *TINY, timeout=900)
    log = (work / RUN / f"logs/assimilate_{model}.log").read_text()
    assert "resum" in log.lower(), log[-2000:]
    resumed = xr.open_zarr(target)["members"].values
    np.testing.assert_array_equal(resumed, reference)
    assert result.returncode == 0
