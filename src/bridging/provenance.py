"""Per-run provenance: the resolved config, package versions and the git commit, written next to the results;
and :func:`code_hash`, the identity of the code a stage runs (resume checkpoints carry it)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

from . import __version__
from .atomic import write_text_atomic

PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "zarr",
    "dask",
    "netCDF4",
    "cftime",
    "numba",
    "torch",
    "intake-esm",
    "matplotlib",
    "pydantic",
    "snakemake",
    "snakemake-executor-plugin-slurm",
)


#: the package's source folder (src/bridging, or site-packages/bridging when installed)
PACKAGE_ROOT = Path(__file__).resolve().parent
#: modules every stage runs (the same core as the workflow's src() inputs)
CORE_MODULES = ("__init__.py", "errors.py", "runtime.py", "atomic.py")


def code_hash(modules: Sequence[str], *, root: str | Path | None = None) -> str:
    """A short hash of the package version and the source of ``modules``: files or packages relative to the
    package folder (``"models"``, ``"da"``, ``"stores.py"``), always with :data:`CORE_MODULES`.

    A resume checkpoint written by other code (an edit in one of these files, another version) must not be
    continued: the finished output would mix two programs' numbers."""
    root = Path(root) if root is not None else PACKAGE_ROOT
    files: set[Path] = set()
    for module in (*CORE_MODULES, *modules):
        path = root / module
        if path.is_dir():
            files.update(path.rglob("*.py"))
        elif path.is_file():
            files.add(path)
        else:
            raise ValueError(f"code_hash: no module {module} under {root}")
    h = hashlib.sha256(__version__.encode())
    for path in sorted(files):
        h.update(f"\0{path.relative_to(root).as_posix()}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def git_commit(root: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
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
