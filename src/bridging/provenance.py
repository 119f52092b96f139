"""Per-run provenance: the resolved config, package versions and the git commit, written next to the results."""

from __future__ import annotations

import json
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

from . import __version__
from .atomic import write_text_atomic

PACKAGES = (
    "numpy", "scipy", "pandas", "xarray", "zarr", "dask", "netCDF4", "cftime", "numba",
    "torch", "intake-esm", "matplotlib", "pydantic", "snakemake", "snakemake-executor-plugin-slurm",
)


def git_commit(root: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"enso-bridge": __version__}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def write_provenance(config: dict, config_out: str | Path, versions_out: str | Path, root: str | Path = ".") -> None:
    write_text_atomic(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), config_out)
    record = {"git_commit": git_commit(root), "packages": package_versions()}
    write_text_atomic(json.dumps(record, indent=2, sort_keys=True) + "\n", versions_out)
