"""Shared test setup: keep BLAS/torch pools small (two cores shared with the workflow), and project paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One complete run of the whole workflow with the tiny CI config, in a scratch copy of the project."""
    from workflow_helpers import TINY, copy_project, snakemake

    work = copy_project(tmp_path_factory.mktemp("tiny") / "project")
    snakemake(work, "--cores", "2", "all", *TINY, timeout=1500)
    return work
