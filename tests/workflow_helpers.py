"""Helpers for the tests that run the real workflow: a scratch copy of the project and snakemake invocations."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TINY = ("--configfile", "config/test.yaml")  # the tiny CI overlay


def tiny(*overlays: str) -> tuple[str, ...]:
    """The tiny overlay plus further overlays, in ONE --configfile option: Snakemake's --configfile takes several
    files, and a second --configfile option replaces the first instead of adding to it."""
    return ("--configfile", "config/test.yaml", *overlays)


RUN = "results/test"  # its run folder


def project_files(root: Path = ROOT) -> list[str]:
    """Tracked and untracked-but-not-ignored files: what a fresh clone (plus local edits) holds."""
    out = subprocess.run(
        ["git", "-C", str(root), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (root / f).is_file()]


def copy_project(dest: Path, root: Path = ROOT) -> Path:
    """A scratch copy of the project, so workflow tests never touch the checkout's results/ or data/."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in project_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 1800, check: bool = True, env: dict | None = None):
    full_env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **(env or {})}
    full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}"
    proc = subprocess.run(
        [SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=timeout, env=full_env
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def planned_jobs(output: str) -> dict[str, int]:
    """Rule → job count from the 'Job stats' table of a dry run (empty dict when nothing is to be done)."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("Job stats:"):
            for row in lines[i + 3 :]:
                m = re.match(r"^(\S+)\s+(\d+)\s*$", row.strip())
                if not m:
                    break
                if m.group(1) != "total":
                    counts[m.group(1)] = int(m.group(2))
            break
    return counts


# Run in a fresh interpreter: parsing the Snakefile changes sys.path, the environment and Snakemake's global state.
_RULES_PROBE = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, Quietness, ResourceSettings

configfiles = [Path(f) for f in sys.argv[1:]]
with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    workflow_api = api.workflow(
        resource_settings=ResourceSettings(cores=1), config_settings=ConfigSettings(configfiles=configfiles),
        snakefile=Path("Snakefile"), workdir=Path("."),
    )
    rules = {}
    for rule in workflow_api._workflow.rules:
        script = str((Path(rule.snakefile).parent / rule.script).resolve()) if rule.script else None
        rules[rule.name] = {"script": script, "code": [str(Path(f).resolve()) for f in rule.input.get("code", [])]}
print("RULES-JSON " + json.dumps(rules))
"""


def workflow_rules(workdir: Path = ROOT, *configfiles: str) -> dict[str, dict]:
    """Rule → {"script": absolute path or None, "code": absolute paths of its `code` inputs}, as Snakemake parsed
    them (so `use rule … with:` inheritance and every helper in common.smk are accounted for)."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run(
        [sys.executable, "-c", _RULES_PROBE, *configfiles], cwd=workdir, capture_output=True, text=True, timeout=300,
        env=env,
    )  # fmt: skip
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RULES-JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise AssertionError(
            f"parsing the workflow failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return json.loads(line[len("RULES-JSON ") :])
