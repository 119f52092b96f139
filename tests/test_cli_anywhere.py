"""The command line from any directory: the defaults come from the package, not from config/ of the checkout, and
every subcommand spells ``--config`` the same way (``--config FILE [FILE ...]``, repeatable)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bridging.cli import build_parser
from bridging.commands._options import add_config_option
from bridging.fixtures.mock import mock_oras5

EXE = Path(sys.executable).parent / "bridging"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _config_actions(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in p._actions if "config" in a.dest or any("config" in s for s in a.option_strings)]


def test_every_subcommand_has_help():
    for name, p in _subparsers().items():
        with pytest.raises(SystemExit) as exit_:
            p.parse_args(["--help"])
        assert exit_.value.code == 0, name


def test_one_spelling_of_config_everywhere():
    reference = argparse.ArgumentParser()
    add_config_option(reference)
    (ref,) = _config_actions(reference)
    with_config = []
    for name, p in _subparsers().items():
        for action in _config_actions(p):
            spelled = (action.option_strings, action.nargs, type(action), action.metavar, action.default, action.help)
            assert spelled == (ref.option_strings, ref.nargs, type(ref), ref.metavar, ref.default, ref.help), name
            with_config.append(name)
    # every command that reads settings takes --config; regrid, thermocline and catalog take their settings as options
    assert set(_subparsers()) - set(with_config) == {"catalog", "regrid", "thermocline"}
    args = _subparsers()["nino-stats"].parse_args(["f.nc", "--config", "a.yaml", "b.yaml", "--config", "c.yaml"])
    assert args.config == ["a.yaml", "b.yaml", "c.yaml"]


def _run(args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(EXE), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_config_and_ingest_from_a_directory_outside_the_checkout(tmp_path, project_root):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert not (elsewhere / "config").exists()

    proc = _run(["config"], elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout) == yaml.safe_load((project_root / "config/config.default.yaml").read_text())
    overlay = elsewhere / "mine.yaml"
    overlay.write_text("da: {inflation: 1.2}\n")
    proc = _run(["config", "--config", overlay], elsewhere)
    assert proc.returncode == 0 and yaml.safe_load(proc.stdout)["da"]["inflation"] == 1.2, proc.stderr
    proc = _run(["config", "--write"], elsewhere)
    assert proc.returncode == 2 and "not the project's checkout" in proc.stderr and not (elsewhere / "config").exists()
    assert _run(["ingest", "--help"], elsewhere).returncode == 0

    mock_oras5(elsewhere / "data", first_year=2014, n_years=1, resolution=8.0)
    assert _run(["catalog", "data", "--out", "catalog.json"], elsewhere).returncode == 0
    overlay.write_text(
        yaml.safe_dump({"demo": {"enabled": False}, "data": {"reanalysis": {"years": [2014, 2014]}}}, sort_keys=False)
    )
    proc = _run(
        ["ingest", "--catalog", "catalog.json", "--source", "ORAS5", "--out", "s.zarr", "--config", overlay], elsewhere
    )
    assert proc.returncode == 0, proc.stderr
    assert (elsewhere / "s.zarr").is_dir() and (elsewhere / "s.weights.nc").is_file()
