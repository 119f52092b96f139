"""The tiny workflow through a real single-node SLURM cluster (slurmctld + slurmd + munge from Debian, started and
stopped by this test) with `snakemake --profile profiles/slurm` and the official executor plugin.

Checks that the jobs really went through SLURM (its job table, the plugin's per-job logs, SLURM_JOB_ID inside the
jobs), that the GPU rules asked SLURM for a GPU, and that the outputs equal those of the local tiny run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from workflow_helpers import ROOT, RUN, copy_project, snakemake, tiny

from bridging.layout import sentinel

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

MODEL = "DEMO-CESM2"
GPU_RULES = ("train_autoencoder", "train_forecast", "assimilate")


def _cannot_run_daemons() -> str | None:
    if os.geteuid() != 0:
        return "starting slurmctld/slurmd and installing them needs root"
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        return "no Debian packaging (apt-get) to install SLURM and no slurmctld on PATH"
    return None


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    reason = _cannot_run_daemons()
    if reason:
        pytest.skip(f"SLURM test skipped: this machine cannot run the SLURM daemons ({reason})")
    state = tmp_path_factory.mktemp("slurm-state")
    env = {**os.environ, "STATE": str(state)}
    start = subprocess.run(
        ["bash", str(ROOT / "tests/slurm/start_slurm.sh")], env=env, capture_output=True, text=True, timeout=900
    )
    if start.returncode != 0:
        subprocess.run(["bash", str(ROOT / "tests/slurm/stop_slurm.sh")], env=env, timeout=60)
        pytest.fail(f"could not start the SLURM cluster:\n{start.stdout[-3000:]}\n{start.stderr[-3000:]}")
    yield state
    subprocess.run(["bash", str(ROOT / "tests/slurm/stop_slurm.sh")], env=env, timeout=60)


def _slurm_jobs(run_dir: Path) -> dict[str, dict]:
    """Jobs SLURM knows (finished ones stay listed for MinJobAge), keyed by job id: name, state, rule, GPUs."""
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "-O", "JobID:20|,Name:60|,State:20|,Comment:40|,tres-per-job:40|"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    jobs = {}
    for line in out.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) >= 5 and fields[0]:
            # the executor plugin puts "rule_<rule>[_wildcards_<values>]" into the job comment
            rule = fields[3].removeprefix("rule_").split("_wildcards_")[0]
            jobs[fields[0]] = {"name": fields[1], "state": fields[2], "rule": rule, "tres": fields[4]}
    return jobs


def test_tiny_workflow_through_slurm(slurm_cluster, tiny_run, tmp_path):
    work = copy_project(tmp_path / "project")
    overlay = work / "config" / "one_model.yaml"
    # One operational model keeps the SLURM run short; the demo data (which holds both models) are identical.
    overlay.write_text(f"data:\n  operational:\n    - {{name: {MODEL}, source_id: {MODEL}}}\n")
    target = sentinel(f"{RUN}/stores/bridging_{MODEL}.zarr")  # a store is made through its sentinel file
    started = time.monotonic()
    proc = snakemake(
        work,
        "--profile", "profiles/slurm",
        target,
        *tiny(str(overlay.relative_to(work))),
        # this test node has 2 CPUs: the profile's cluster-sized thread counts would never be scheduled
        "--set-threads", "train_autoencoder=2", "train_forecast=2", "assimilate=2", "ingest=2",
        "--slurm-init-seconds-before-status-checks", "2",
        "--latency-wait", "5",
        timeout=1800,
    )  # fmt: skip
    wall = time.monotonic() - started
    print(f"SLURM tiny workflow: {wall:.0f} s")

    jobs = _slurm_jobs(work)
    by_rule = {}
    for job in jobs.values():
        by_rule.setdefault(job["rule"], []).append(job)
    for rule in ("demo_data", "ingest", "pseudo_obs", *GPU_RULES, "decode"):
        assert rule in by_rule, (
            f"rule {rule} did not run as a SLURM job; SLURM saw {sorted(by_rule)}\n{proc.stdout[-3000:]}"
        )
        assert all(j["state"] == "COMPLETED" for j in by_rule[rule]), by_rule[rule]
    for rule in GPU_RULES:
        assert all("gpu" in j["tres"] for j in by_rule[rule]), f"{rule} did not request a GPU: {by_rule[rule]}"
    assert "gpu" not in by_rule["ingest"][0]["tres"]
    logs = list((work / ".snakemake/slurm_logs").rglob("*.log"))
    assert any("rule_train_autoencoder" in str(p) for p in logs)
    job_log = (work / RUN / f"logs/train_autoencoder_{MODEL}.log").read_text()
    assert "SLURM job" in job_log

    # the same numbers as the local run
    for store, var in (
        (f"stores/{MODEL}.zarr", "sst"),
        ("pseudo_obs/cf23.zarr", "observations"),
        (f"latent/{MODEL}/operational.zarr", "z"),
        (f"stores/bridging_{MODEL}.zarr", "sst"),
    ):
        ours = xr.open_zarr(work / RUN / store, consolidated=False)[var].values
        local = xr.open_zarr(tiny_run / RUN / store, consolidated=False)[var].values
        np.testing.assert_allclose(ours, local, rtol=1e-5, atol=1e-5, equal_nan=True, err_msg=store)
