"""Resume checkpoints are tied to the code that wrote them: an edit in the modules a stage runs starts it afresh
(with a log line saying why), and a readable checkpoint that is not a state of this program counts as corrupt."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bridging.provenance import PACKAGE_ROOT, code_hash


def _package_copy(dest: Path) -> Path:
    shutil.copytree(PACKAGE_ROOT, dest / "bridging", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_code_hash_follows_the_modules_of_the_stage(tmp_path):
    root = _package_copy(tmp_path)
    package = root / "bridging"
    before = code_hash(["models", "stores.py"], root=package)
    assert code_hash(["stores.py", "models"], root=package) == before
    (package / "idealized" / "cf23.py").write_text("# an edit elsewhere\n", encoding="utf-8")
    assert code_hash(["models", "stores.py"], root=package) == before, "only the stage's own modules count"
    with open(package / "models" / "curriculum.py", "a", encoding="utf-8") as fh:
        fh.write("\n# an edit\n")
    assert code_hash(["models", "stores.py"], root=package) != before
    with pytest.raises(ValueError, match="no module"):
        code_hash(["no_such_module.py"], root=package)


SAVE_THEN_LOAD = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
from pathlib import Path
from bridging.models.training import training_checkpoint
output = Path(sys.argv[1])
state = training_checkpoint(output, "same-settings-and-data")
if sys.argv[2] == "save":
    state.save({"epoch": 3, "model": {}})
else:
    print("LOADED" if state.load() is not None else "AFRESH")
"""


def test_training_resume_starts_afresh_after_an_edit_of_the_models_package(tmp_path):
    root = _package_copy(tmp_path / "src")
    script = tmp_path / "resume.py"
    script.write_text(SAVE_THEN_LOAD)
    ckpt = tmp_path / "autoencoder.pt"  # the output whose resume checkpoint is saved and loaded

    def run(action):
        env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(
            [sys.executable, str(script), str(ckpt), action], capture_output=True, text=True, env=env, timeout=120
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    run("save")
    assert "LOADED" in run("load"), "unchanged code resumes"
    with open(root / "bridging" / "models" / "forecast.py", "a", encoding="utf-8") as fh:
        fh.write("\n# an edit between the interruption and the re-run\n")
    out = run("load")
    assert "AFRESH" in out and "written by other code" in out, out


def test_a_readable_training_checkpoint_that_is_not_a_state_is_corrupt(tmp_path, caplog):
    from bridging.models.training import training_checkpoint

    checkpoint = training_checkpoint(tmp_path / "forecast.pt", "fp")
    for payload in ([1, 2, 3], {"epoch": "three"}, torch.zeros(3)):
        torch.save(payload, checkpoint.path)
        with caplog.at_level(logging.WARNING):
            assert checkpoint.load() is None
        assert "corrupt resume checkpoint" in caplog.text
        caplog.clear()


def test_filter_resume_ignores_a_checkpoint_of_other_code(tmp_path, caplog):
    from bridging.da import checkpoint as da_checkpoint

    checkpoint = da_checkpoint.filter_checkpoint(tmp_path / "checkpoint.pt", "fp")
    record = {
        "fingerprint": "fp", "code_version": "0.0.1", "code_hash": "0123456789abcdef",
        "month": 24, "members": torch.zeros(2, 3), "recurrent": None, "rng_state": torch.zeros(8, dtype=torch.uint8), "adapt": None,
    }  # fmt: skip
    torch.save(record, checkpoint.path)
    with caplog.at_level(logging.INFO):
        assert da_checkpoint.load_filter_state(checkpoint, "cpu") is None
    assert "written by other code" in caplog.text
    torch.save({**record, "code_hash": da_checkpoint.filter_code_hash()}, checkpoint.path)
    assert da_checkpoint.load_filter_state(checkpoint, "cpu")["month"] == 24


def test_filter_fingerprint_includes_the_code(tmp_path, monkeypatch):
    from bridging.da import checkpoint as da_checkpoint

    (tmp_path / "input.zarr").mkdir()
    before = da_checkpoint.run_fingerprint([tmp_path / "input.zarr"], {"a": 1})
    monkeypatch.setattr(da_checkpoint, "filter_code_hash", lambda: "edited")
    assert da_checkpoint.run_fingerprint([tmp_path / "input.zarr"], {"a": 1}) != before


def test_a_readable_filter_checkpoint_that_is_not_a_state_is_corrupt(tmp_path, caplog):
    from bridging.da import checkpoint as da_checkpoint

    checkpoint = da_checkpoint.filter_checkpoint(tmp_path / "checkpoint.pt", "fp")
    for payload in ([1, 2, 3], {"fingerprint": "fp"}):
        torch.save(payload, checkpoint.path)
        with caplog.at_level(logging.WARNING):
            assert da_checkpoint.load_filter_state(checkpoint, "cpu") is None
        assert "corrupt resume checkpoint" in caplog.text
        caplog.clear()
