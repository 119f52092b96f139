"""Atomic outputs under crashes: killed (SIGKILL) or interrupted (Ctrl-C) between the steps of the final move, the
output path holds the old or the new complete output (or gets the old one back at the next write), and no hidden
temporaries outlive the next write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import bridging.atomic as atomic
from bridging.atomic import atomic_output, check_writable
from bridging.errors import ConfigError


def _write_store(folder: Path, value: str, n: int = 5) -> None:
    """A folder like a zarr store: several files that only together form the output."""
    folder.mkdir(parents=True)
    for k in range(n):
        (folder / f"chunk{k}").write_text(value)


def _content(folder: Path) -> str | None:
    """The value of a complete folder, None when missing, 'partial' when its files disagree or are missing."""
    if not folder.exists():
        return None
    values = {(folder / f"chunk{k}").read_text() if (folder / f"chunk{k}").exists() else "" for k in range(5)}
    return values.pop() if len(values) == 1 and "" not in values else "partial"


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def _exchange_available(tmp_path: Path) -> bool:
    a, b = tmp_path / "xa", tmp_path / "xb"
    a.mkdir()
    b.mkdir()
    try:
        return atomic._exchange(a, b)
    finally:
        a.rmdir()
        b.rmdir()


KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
import bridging.atomic as atomic
atomic._RENAME_EXCHANGE = {exchange}
real_replace = os.replace
def replace(a, b):
    real_replace(a, b)
    os.kill(os.getpid(), signal.SIGKILL)  # killed right after the first rename of the final move
os.replace = replace
def remove(p):
    os.kill(os.getpid(), signal.SIGKILL)  # killed before the old copy is removed
atomic._remove = remove
path = Path(sys.argv[1])
with atomic.atomic_output(path) as tmp:
    tmp.mkdir()
    for k in range(5):
        (tmp / f"chunk{{k}}").write_text("new")
"""


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_killed_while_replacing_a_store_keeps_a_complete_output(tmp_path, exchange):
    if exchange and not _exchange_available(tmp_path):
        pytest.skip("this filesystem cannot exchange two names atomically")
    path = tmp_path / "out" / "store.zarr"
    _write_store(path, "old")
    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER.format(exchange=exchange))
    proc = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr[-2000:]
    if exchange:
        # one atomic step: the output was never missing, and the kill came after the new one was in place
        assert _content(path) == "new"
    # the next write of the same output first restores or keeps a complete output, then replaces it
    with atomic_output(path) as tmp:
        assert _content(path) in ("old", "new")
        _write_store(tmp, "newer")
    assert _content(path) == "newer"
    assert _siblings(path) == [], "stale temporaries must be removed at the next write"


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_ctrl_c_between_the_renames_keeps_the_old_output(tmp_path, monkeypatch, exchange):
    monkeypatch.setattr(atomic, "_RENAME_EXCHANGE", exchange, raising=False)
    path = tmp_path / "store.zarr"
    _write_store(path, "old")
    real_replace = os.replace
    calls = []

    def interrupted_replace(a, b):
        calls.append((a, b))
        real_replace(a, b)
        if len(calls) == 1 and Path(b).name.startswith(".store.zarr.old-"):
            raise KeyboardInterrupt  # Ctrl-C after the old store was moved aside, before the new one is in place

    def interrupt_after_exchange(stage):
        if stage == "placed":
            raise KeyboardInterrupt  # Ctrl-C after the atomic exchange, before the old store is removed

    monkeypatch.setattr(os, "replace", interrupted_replace)
    monkeypatch.setattr(atomic, "_test_hook", interrupt_after_exchange if exchange else None, raising=False)
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(path) as tmp:
            _write_store(tmp, "new")
    monkeypatch.undo()
    assert _content(path) in ("old", "new")
    if not exchange:
        assert _content(path) == "old", "an interrupted replacement must leave the old output in place"
    assert _siblings(path) == []


def test_a_file_is_replaced_in_one_step(tmp_path, monkeypatch):
    path = tmp_path / "table.json"
    path.write_text("old")
    seen = []
    real_replace = os.replace

    def watching_replace(a, b):
        seen.append(path.read_text() if path.exists() else None)  # what a reader sees before each rename
        real_replace(a, b)

    monkeypatch.setattr(os, "replace", watching_replace)
    with atomic_output(path) as tmp:
        tmp.write_text("new")
    monkeypatch.undo()
    assert path.read_text() == "new"
    assert seen == ["old"], "a file must never be moved away before its replacement is in place"


def test_stale_temporaries_of_a_killed_writer_are_removed_at_the_next_write(tmp_path):
    path = tmp_path / "store.zarr"
    _write_store(path, "old")
    _write_store(tmp_path / ".store.zarr.tmp-0123abcd", "partial")
    _write_store(tmp_path / ".store.zarr.old-89abcdef", "older")
    (tmp_path / ".other.zarr.tmp-0123abcd").mkdir()  # another output's temporary is not ours to remove
    with atomic_output(path) as tmp:
        _write_store(tmp, "new")
    assert _content(path) == "new"
    assert _siblings(path) == []
    assert (tmp_path / ".other.zarr.tmp-0123abcd").is_dir()


def test_a_missing_output_is_restored_from_its_moved_aside_copy(tmp_path):
    path = tmp_path / "store.zarr"
    _write_store(tmp_path / ".store.zarr.old-89abcdef", "old")
    _write_store(tmp_path / ".store.zarr.tmp-0123abcd", "partial")
    atomic.recover(path)
    assert _content(path) == "old"
    assert _siblings(path) == []


def test_files_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    path = tmp_path / "store.zarr"
    with atomic_output(path) as tmp:
        _write_store(tmp, "new")
        written = [str(tmp / f"chunk{k}") for k in range(5)]
    assert set(written) <= set(synced), synced
    assert str(tmp_path) in synced, "the folder holding the renamed output must be fsynced too"


def test_output_paths_are_checked_before_any_computation(tmp_path):
    with pytest.raises(ConfigError, match=r"must end in \.nc or \.zarr"):
        check_writable(tmp_path / "out.txt", (".nc", ".zarr"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="is not a folder"):
        check_writable(blocker / "sub" / "out.nc", (".nc",))
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="not writable"):
            check_writable(locked / "out.nc")
    assert (
        check_writable(tmp_path / "new" / "deeper" / "out.zarr", (".zarr",)) == tmp_path / "new" / "deeper" / "out.zarr"
    )
