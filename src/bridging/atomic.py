"""Atomic outputs: at every instant ``path`` holds the old complete output or the new complete one, never a part.

A writer writes to a hidden temporary sibling ``.<name>.tmp-<id>`` (same filesystem). On success every file and
folder of the temporary is fsynced, then it takes the output's place:

* a file, or anything where nothing stood: one ``os.replace`` (atomic);
* a folder (a zarr store) over a folder: one atomic exchange of the two names (Linux ``renameat2`` with
  ``RENAME_EXCHANGE``); the old content, now under the temporary's name, is removed afterwards. Where the exchange
  is not available the old folder is first renamed to ``.<name>.old-<id>``: a process killed in the instant
  between the two renames leaves ``path`` missing, and the next :func:`atomic_output` (or :func:`recover`) of that
  path puts the old folder back before anything else.

On any exception, KeyboardInterrupt included, the temporary is removed and an old output already moved aside is put
back. A process killed outright (SIGKILL, power loss) leaves hidden siblings; the next write of the same output
removes them (one writer per output at a time, as Snakemake guarantees), restoring the old output first if the
output itself is missing.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import re
import shutil
import sys
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

#: Use the atomic exchange of two names for folders when the platform has it (set False to test the fallback).
_RENAME_EXCHANGE = sys.platform.startswith("linux")
#: Called with a stage name ("moved-old", "placed") between the steps of the final move; tests use it to kill or
#: interrupt the process exactly there.
_test_hook = None

_AT_FDCWD = -100
_RENAME_EXCHANGE_FLAG = 2


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _hook(stage: str) -> None:
    if _test_hook is not None:
        _test_hook(stage)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the names ``a`` and ``b``; False when the platform or filesystem cannot."""
    if not _RENAME_EXCHANGE:
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE_FLAG) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_path(path: Path, directory: bool) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as err:  # some filesystems cannot fsync folders
        if err.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    """fsync every file and folder under ``path`` (a file or a folder), so a rename never publishes unwritten data."""
    if path.is_symlink() or not path.is_dir():
        _fsync_path(path, directory=False)
        return
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            full = Path(dirpath) / name
            if not full.is_symlink():
                _fsync_path(full, directory=False)
        _fsync_path(Path(dirpath), directory=True)


def _siblings(path: Path, kind: str) -> list[Path]:
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.{kind}-[0-9a-f]{{8}}$")
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    return [path.parent / n for n in names if pattern.match(n)]


def recover(path: str | Path) -> None:
    """Undo what a killed writer of ``path`` left: put a moved-aside old output back if ``path`` is missing, and
    remove stale temporaries and old copies."""
    path = Path(path)
    olds = _siblings(path, "old")
    if olds and not (path.exists() or path.is_symlink()):
        newest = max(olds, key=lambda p: p.lstat().st_ctime_ns)  # a rename updates ctime: the last one moved aside
        os.replace(newest, path)
        log.warning(
            "%s: restored the previous output from %s (a writer was killed while replacing it)", path, newest.name
        )
        olds.remove(newest)
    stale = olds + _siblings(path, "tmp")
    for p in stale:
        _remove(p)
    if stale:
        log.info(
            "%s: removed %d stale temporar%s of an interrupted write",
            path,
            len(stale),
            "y" if len(stale) == 1 else "ies",
        )


def _place(tmp: Path, path: Path) -> None:
    """Move the complete temporary into place (see the module docstring); on failure leave the old output there."""
    _fsync_tree(tmp)
    old_is_dir = path.is_dir() and not path.is_symlink()
    if not old_is_dir:
        os.replace(tmp, path)  # atomic for a file over a file, or into a free name
        _hook("placed")
    elif tmp.is_dir() and _exchange(tmp, path):
        _hook("placed")
        _remove(tmp)  # now the old content
    else:
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
        try:
            os.replace(path, old)
            _hook("moved-old")
            os.replace(tmp, path)
        except BaseException:
            if (old.exists() or old.is_symlink()) and not (path.exists() or path.is_symlink()):
                os.replace(old, path)
            raise
        _hook("placed")
        _remove(old)
    _fsync_path(path.parent, directory=True)


@contextlib.contextmanager
def atomic_output(path: str | Path):
    """Yield a temporary path to write ``path`` (file or directory, e.g. a zarr store) to; it replaces ``path`` on
    success. What a killed earlier writer of ``path`` left is cleaned up first (:func:`recover`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{path}: the writer produced nothing")
        _place(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def check_writable(path: str | Path, suffixes: tuple[str, ...] | None = None) -> Path:
    """Refuse an output path before any computation: a suffix not among ``suffixes``, or a folder that cannot be
    created or written. Raises :class:`~bridging.errors.ConfigError` naming the path."""
    from .errors import ConfigError

    path = Path(path)
    if suffixes is not None and path.suffix not in suffixes:
        raise ConfigError(f"{path}: output must end in {' or '.join(suffixes)}")
    parent = path.absolute().parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{path}: cannot create the output folder ({existing} is not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{path}: the folder {existing} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{path}: exists and is not writable")
    return path


def variable_length_strings(ds):
    """Fixed-width unicode arrays (what numpy and xarray produce, also when reading a store back) have no zarr v3
    specification yet; variable-length strings do (in both formats), so every string variable is written as one."""
    fixed = [name for name, var in ds.variables.items() if var.dtype.kind == "U"]
    if not fixed:
        return ds
    return ds.assign({name: ds[name].astype(object) for name in fixed if name in ds.data_vars}).assign_coords(
        {name: ds[name].astype(object) for name in fixed if name in ds.coords}
    )


#: the zarr format every store is written in unless a writer is given one (``outputs.zarr_format``; rule scripts
#: set it from their params through :func:`bridging.runtime.script_context`)
DEFAULT_ZARR_FORMAT = 3
_zarr_format = DEFAULT_ZARR_FORMAT


def set_zarr_format(zarr_format: int | None) -> int:
    """Set the zarr format of this process' stores (2 or 3; None keeps it); returns the one in force."""
    global _zarr_format
    if zarr_format is not None:
        if int(zarr_format) not in (2, 3):
            raise ValueError(f"zarr_format must be 2 or 3, not {zarr_format!r}")
        _zarr_format = int(zarr_format)
    return _zarr_format


def zarr_write_options(zarr_format: int | None = None) -> dict:
    """``to_zarr`` keywords of the project's stores: the format in force (or ``zarr_format``) and no consolidation
    while writing; :func:`consolidate` writes the consolidated metadata once the last write is done."""
    return {"zarr_format": set_zarr_format(None) if zarr_format is None else int(zarr_format), "consolidated": False}


def consolidate(path: str | Path) -> None:
    """Write the consolidated metadata of a finished store (call after its last write, before it is moved into
    place), so ``xr.open_zarr`` reads one metadata document and warns about nothing.

    zarr-python warns on every consolidation of a format-3 store that consolidated metadata is not yet part of the
    v3 specification (zarr-python and xarray read it; a reader that does not simply lists the store): the warning
    says nothing about this store, so it is not passed on."""
    import warnings

    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part", category=UserWarning)
        zarr.consolidate_metadata(str(path))


def write_zarr_atomic(ds, path: str | Path, *, encoding: dict | None = None, zarr_format: int | None = None) -> Path:
    """Write an xarray Dataset as a zarr store (consolidated metadata) atomically."""
    ds = variable_length_strings(ds)
    with atomic_output(path) as tmp:
        ds.to_zarr(tmp, mode="w", encoding=encoding or {}, **zarr_write_options(zarr_format))
        consolidate(tmp)
    return Path(path)


def write_text_atomic(text: str, path: str | Path) -> Path:
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)
