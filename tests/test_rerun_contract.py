"""The rerun contract: every rule lists, as `code` inputs, each library module its script runs.

A job re-runs when one of its inputs changes; for the library code that is only true of the files listed in its
`code=src(...)` inputs. The modules a script runs are the static import closure of the script (bridging.codegraph:
`import` / `from … import` statements at module level and inside functions, relative imports resolved, parent
packages included). The settings package is left out on purpose (see `src()` in workflow/rules/common.smk): a
changed default changes the params of the rules that use it, which re-runs exactly those.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from workflow_helpers import ROOT, TINY, workflow_rules

from bridging.codegraph import closure_parts, import_closure, imported_names

SRC = ROOT / "src"
PACKAGE_DIR = SRC / "bridging"
#: subpackages deliberately not among the code inputs (their edits reach jobs through params)
NOT_CODE_INPUTS = ("settings",)


def missing_code_inputs(script: Path, code_inputs, src_root: Path = SRC, exclude=NOT_CODE_INPUTS) -> list[str]:
    """The modules (relative to the package folder) that ``script`` imports, directly or transitively, and that are
    not among ``code_inputs`` (paths of files); empty when the rule keeps the contract."""
    listed = {Path(f).resolve() for f in code_inputs}
    package_dir = Path(src_root) / "bridging"
    closure = closure_parts(script, src_root, exclude=exclude)
    return [part for part in closure if (package_dir / part).resolve() not in listed]


# ---------------------------------------------------------------------------------------------- the checker itself
def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def toy(tmp_path) -> Path:
    """A small `bridging` package: module-level, lazy, relative and parent-package imports, an attribute import,
    an import cycle, a settings module, and a module nobody imports."""
    _write(tmp_path / "src", {
        "bridging/__init__.py": "",
        "bridging/settings/__init__.py": "from .values import DEFAULT\n",
        "bridging/settings/values.py": "DEFAULT = 1\n",
        "bridging/stage/__init__.py": "from .cycle import step\n",
        "bridging/stage/cycle.py": """
            import numpy as np
            from ..settings import DEFAULT
            from . import noise
            from .stats import summary

            def step():
                from ..io.readers import read  # lazy
                return read()
        """,
        "bridging/stage/noise.py": "from .cycle import step  # a cycle\n",
        "bridging/stage/stats.py": "def summary(): ...\n",
        "bridging/io/__init__.py": "",
        "bridging/io/readers.py": """
            import bridging.grid as grid

            class Reader:
                def open(self):
                    from bridging.deep.inner import value
                    return value
        """,
        "bridging/grid.py": "",
        "bridging/deep/__init__.py": "",
        "bridging/deep/inner.py": "value = 1\n",
        "bridging/unused.py": "",
    })  # fmt: skip
    _write(tmp_path, {"scripts/stage.py": "from bridging.stage.cycle import step\nfrom os import path\n"})
    return tmp_path


def test_closure_follows_module_level_lazy_relative_and_parent_imports(toy):
    closure = import_closure(toy / "scripts/stage.py", toy / "src")
    assert sorted(closure) == [
        "bridging",
        "bridging.deep",
        "bridging.deep.inner",  # imported inside a method of a class
        "bridging.grid",  # `import bridging.grid as grid`
        "bridging.io",
        "bridging.io.readers",  # imported inside a function
        "bridging.settings",
        "bridging.settings.values",  # through the settings package's own relative import
        "bridging.stage",  # the parent package runs before its submodule
        "bridging.stage.cycle",
        "bridging.stage.noise",  # `from . import noise`: a submodule, not an attribute
        "bridging.stage.stats",
    ]
    assert closure["bridging.stage"] == toy / "src/bridging/stage/__init__.py"
    # the relative import of a package file resolves against the package itself
    assert "bridging.settings.values" in imported_names(toy / "src/bridging/settings/__init__.py", "bridging.settings")


def test_closure_parts_leave_out_the_excluded_packages(toy):
    parts = closure_parts(toy / "scripts/stage.py", toy / "src", exclude=("settings",))
    assert "stage/cycle.py" in parts and "__init__.py" in parts
    assert not any(p.startswith("settings/") for p in parts)
    assert "unused.py" not in parts


def test_checker_reports_a_module_missing_from_an_incomplete_list(toy):
    pkg = toy / "src/bridging"
    complete = [pkg / p for p in closure_parts(toy / "scripts/stage.py", toy / "src", exclude=("settings",))]
    assert missing_code_inputs(toy / "scripts/stage.py", complete, toy / "src") == []
    # a list that forgets a transitive, lazily imported module (two imports away from the script)
    incomplete = [f for f in complete if f != pkg / "deep/inner.py"]
    assert missing_code_inputs(toy / "scripts/stage.py", incomplete, toy / "src") == ["deep/inner.py"]
    # and one that forgets a parent package
    assert missing_code_inputs(toy / "scripts/stage.py", complete[1:], toy / "src") == ["__init__.py"]


# ---------------------------------------------------------------------------------------------- the workflow
@pytest.fixture(scope="module")
def rules() -> dict[str, dict]:
    return workflow_rules(ROOT, *TINY[1:])


def test_every_rule_with_a_script_lists_its_import_closure(rules):
    scripted = {name: r for name, r in rules.items() if r["script"]}
    assert len(scripted) >= 18, sorted(scripted)
    broken = {name: missing_code_inputs(Path(r["script"]), r["code"]) for name, r in scripted.items()}
    broken = {name: missing for name, missing in broken.items() if missing}
    assert not broken, f"code inputs miss modules their scripts import: {broken}"


def test_code_inputs_are_library_files_and_leave_out_settings(rules):
    for name, r in rules.items():
        for f in r["code"]:
            rel = Path(f).relative_to(PACKAGE_DIR)  # raises for a file outside src/bridging
            assert Path(f).is_file() and rel.suffix == ".py", (name, f)
            assert rel.parts[0] not in NOT_CODE_INPUTS, (name, f)


@pytest.mark.parametrize(
    ("rule", "modules"),
    [
        # modules the hand-written lists missed (issue 15; the filter no longer imports diagnostics/indices.py since
        # da/ was split, but it checkpoints through resume.py, which hashes the code through provenance.py)
        ("assimilate", ["resume.py", "provenance.py"]),
        ("free_run", ["resume.py", "provenance.py"]),
        ("decode", ["grid.py", "observables.py"]),
        # explain draws through diagnostics/explain_plots.py (its figures' style and map panel with it)
        ("explain", ["diagnostics/explain_plots.py", "diagnostics/figstyle.py", "diagnostics/geomap.py",
                     "diagnostics/indices.py", "idealized/reconstruction.py"]),
        ("filter_health", ["diagnostics/filter_health.py", "diagnostics/figstyle.py", "atomic.py"]),
    ],
)  # fmt: skip
def test_the_modules_the_handwritten_lists_missed_are_code_inputs(rules, rule, modules):
    listed = {Path(f).relative_to(PACKAGE_DIR).as_posix() for f in rules[rule]["code"]}
    assert set(modules) <= listed, sorted(set(modules) - listed)
