"""The workflow as users meet it: the DAG, lint, thin scripts, config errors at load."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_helpers import ROOT, planned_jobs, snakemake

EXPECTED_RULES = {
    "all",
    "demo_data",
    "build_catalog",
    "regrid_weights",
    "ingest",
    "idealized_reference",
    "pseudo_obs",
    "train_autoencoder",
    "encode",
    "train_forecast",
    "assimilate",
    "decode",
    "results_catalog",
}


def _dry_run(*extra):
    return snakemake(ROOT, "-n", "--forceall", "all", *extra, timeout=300)


def test_dry_run_shows_the_whole_dag():
    jobs = planned_jobs(_dry_run().stdout)
    missing = EXPECTED_RULES - set(jobs)
    assert not missing, f"rules missing from the DAG: {missing}"
    assert jobs["train_autoencoder"] == 2 and jobs["assimilate"] == 2  # one per operational model
    assert jobs["ingest"] == 3  # two operational models and the reanalysis


def test_lint_is_clean():
    proc = snakemake(ROOT, "--lint", check=False, timeout=300)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    assert "Lints for" not in text, text[-3000:]


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", "src", "tests", "bench", "scripts"),
        ("ruff", "format", "--check", "src", "tests", "bench", "scripts"),
        ("snakefmt", "--check", "Snakefile", "workflow/rules"),
    ],
    ids=["ruff-check", "ruff-format", "snakefmt"],
)
def test_code_is_linted_and_formatted(command):
    """What `make lint` runs besides Snakemake's lint (settings in pyproject.toml: line length 120)."""
    tool = Path(sys.executable).with_name(command[0])
    proc = subprocess.run([str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def test_bad_config_fails_at_load_naming_the_key(tmp_path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("da:\n  inflaton: 1.1\n")
    proc = snakemake(ROOT, "-n", "--configfile", str(overlay), check=False, timeout=300)
    assert proc.returncode != 0
    assert "da.inflaton: unknown key" in proc.stdout + proc.stderr


def test_config_errors_name_the_overlay_and_duplicate_keys(tmp_path):
    """Duplicate YAML keys are an error naming the file; a bad value names the overlay that set it."""
    duplicate = tmp_path / "duplicate.yaml"
    duplicate.write_text("da:\n  inflation: 1.2\nautoencoder:\n  epochs: 3\nda:\n  ensemble_size: 20\n")
    proc = snakemake(ROOT, "-n", "--configfile", str(duplicate), check=False, timeout=300)
    assert proc.returncode != 0
    assert f"{duplicate}: duplicate key 'da' at line 5" in proc.stdout + proc.stderr
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("run:\n  name: '..'\n")
    proc = snakemake(ROOT, "-n", "--configfile", "config/test.yaml", str(overlay), check=False, timeout=300)
    assert proc.returncode != 0
    assert re.search(rf"run\.name: .*not allowed.*\[set in {re.escape(str(overlay))}\]", proc.stdout + proc.stderr)


SCRIPT_MAX_STATEMENTS = 8


@pytest.mark.parametrize("script", sorted((ROOT / "scripts").glob("*.py")), ids=lambda p: p.name)
def test_scripts_are_thin(script: Path):
    """A rule script imports from bridging and calls it: no functions, classes, loops or branches of its own."""
    tree = ast.parse(script.read_text())
    for node in ast.walk(tree):
        assert not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.For, ast.While, ast.If, ast.Lambda)), (
            f"{script.name}: logic belongs in src/bridging ({type(node).__name__} at line {node.lineno})"
        )
        if isinstance(node, ast.ImportFrom):
            assert node.module and node.module.split(".")[0] == "bridging", f"{script.name}: imports {node.module}"
        if isinstance(node, ast.Import):
            pytest.fail(f"{script.name}: plain import {[a.name for a in node.names]}")
    statements = sum(isinstance(n, ast.stmt) for n in ast.walk(tree))
    assert statements <= SCRIPT_MAX_STATEMENTS, f"{script.name}: {statements} statements"


def test_every_rule_declares_the_conventions():
    """params from config, src code as input, log, benchmark, threads, resources, conda, script."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "workflow/rules").glob("*.smk")))
    rules = re.split(r"\n(?=rule \w+:)", text)
    for block in rules:
        m = re.match(r"rule (\w+):", block)
        if not m or not any(k in block for k in ("script:", "shell:", "run:")):
            continue  # target rules (all, diagnostics) only collect inputs
        name = m.group(1)
        for key in ("log:", "benchmark:", "threads:", "resources:", "conda:", "script:", "code=src("):
            assert key in block, f"rule {name} lacks {key}"


def test_workflow_profile_does_not_silently_override_the_slurm_profile():
    """Snakemake reads profiles/default on every run, also under --profile profiles/slurm, and its keys win key by
    key: a key set in both with different values would make the SLURM profile say one thing and do another."""
    import yaml

    default = yaml.safe_load((ROOT / "profiles/default/config.yaml").read_text())
    slurm = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    shadowed = {k: (slurm[k], default[k]) for k in set(default) & set(slurm) if slurm[k] != default[k]}
    assert not shadowed, f"profiles/default overrides these profiles/slurm keys: {shadowed}"
    assert slurm["executor"] == "slurm"
    assert all(
        slurm["set-resources"][rule]["gpu"] == 1 for rule in ("train_autoencoder", "train_forecast", "assimilate")
    )
