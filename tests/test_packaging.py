"""Packaging invariants: one set of pins everywhere, the README commands, CI runs exactly the README's test command."""

from __future__ import annotations

import re
import tomllib

import yaml


def _requirement_pins(path):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name, _, ver = line.partition("==")
        assert ver, f"{path.name}: {line!r} is not pinned exactly"
        pins[name.lower()] = ver
    return pins


def test_conda_env_matches_requirements(project_root):
    req = _requirement_pins(project_root / "requirements.txt")
    env = yaml.safe_load((project_root / "envs/bridging.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = {}
    for item in pip_section:
        if item.startswith("-"):
            continue
        name, _, ver = item.partition("==")
        env_pins[name.lower()] = ver
    assert env_pins == req


def test_pyproject_covers_requirements_and_pins_torch(project_root):
    meta = tomllib.loads((project_root / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~ ]", d, maxsplit=1)[0].lower() for d in meta["dependencies"]}
    req = _requirement_pins(project_root / "requirements.txt")
    assert "torch==2.13.0" in meta["dependencies"]
    assert req["torch"] == "2.13.0"
    assert set(req) - {"snakemake-executor-plugin-slurm"} <= names | {"snakemake-executor-plugin-slurm"}
    assert names <= set(req), f"unpinned dependencies: {names - set(req)}"


def test_readme_starts_with_the_two_commands(project_root):
    text = (project_root / "README.md").read_text()
    head = text[:1500]
    assert "make run" in head and "make test" in head


def test_ci_runs_the_readme_test_command(project_root):
    lines = [ln.strip() for ln in (project_root / ".ci/run").read_text().splitlines()]
    commands = [
        ln for ln in lines if ln and not ln.startswith("#") and not ln.startswith("set ") and not ln.startswith("cd ")
    ]
    assert commands == ["make test"]
