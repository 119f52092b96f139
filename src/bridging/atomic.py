"""Atomic outputs: a failed or interrupted write leaves nothing where a later step would read it.

Everything is written to a hidden temporary sibling (same filesystem) and renamed into place at the end;
on any exception the temporary is removed and a pre-existing output is left untouched until the rename.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(path: str | Path):
    """Yield a temporary path to write ``path`` (file or directory, e.g. a zarr store) to; rename on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{path}: the writer produced nothing")
        if path.exists():
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def variable_length_strings(ds):
    """Fixed-width unicode arrays (what numpy and xarray produce, also when reading a store back) have no zarr v3
    specification yet; variable-length strings do, so every string variable is written as one."""
    fixed = [name for name, var in ds.variables.items() if var.dtype.kind == "U"]
    if not fixed:
        return ds
    return ds.assign({name: ds[name].astype(object) for name in fixed if name in ds.data_vars}).assign_coords(
        {name: ds[name].astype(object) for name in fixed if name in ds.coords}
    )


def write_zarr_atomic(ds, path: str | Path, *, encoding: dict | None = None) -> Path:
    """Write an xarray Dataset as a zarr v3 store atomically."""
    ds = variable_length_strings(ds)
    with atomic_output(path) as tmp:
        ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False, encoding=encoding or {})
    return Path(path)


def write_text_atomic(text: str, path: str | Path) -> Path:
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)
