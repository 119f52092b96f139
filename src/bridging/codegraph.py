"""The library modules a script runs: the static import closure behind the workflow's rerun contract.

Each rule lists the library files its script runs as ``code`` inputs (``src()`` in ``workflow/rules/common.smk``), so
editing one of them re-runs the rule's jobs and what they feed. The list is derived here rather than written by hand:
starting from the script, every ``import`` and ``from … import`` statement naming a ``bridging`` module is followed,
at module level and inside function bodies alike (a lazy import still runs when the function does), with relative
imports resolved and the parent packages of every module included (importing ``bridging.da.run`` executes
``bridging/da/__init__.py`` first). Only ``bridging`` modules are followed; third-party packages are versioned by the
environment, not by the run.

The walk is static: it reads source files and imports nothing, so the Snakefile can call it at parse time. It is an
over-approximation where it cannot know better (an import under ``if TYPE_CHECKING:`` or in a function the script
never calls counts), never an under-approximation for ordinary import statements. Imports by string
(``importlib.import_module``) are not seen; the library uses none on the path of a rule script.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "bridging"


def module_file(src_root: Path, name: str) -> Path | None:
    """The file of module ``name`` (dotted) under ``src_root``: a package's ``__init__.py`` or a ``.py`` file."""
    base = Path(src_root).joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _absolute(node: ast.ImportFrom, package: str | None) -> str | None:
    """The absolute module name a ``from … import`` statement starts from (None when it cannot be resolved)."""
    if not node.level:
        return node.module
    if not package:
        return None  # a relative import outside a package (a script): Python refuses it too
    parts = package.split(".")
    if node.level - 1 > len(parts) - 1:
        return None
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_names(path: Path, module: str | None = None) -> set[str]:
    """Every module name an import statement of ``path`` may load, anywhere in the file.

    ``module`` is the dotted name of the file (``bridging.da.run``; None for a script), needed to resolve relative
    imports. For ``from a import b`` both ``a`` and ``a.b`` are returned: ``b`` may be a submodule or an attribute,
    which only the file system can tell (see :func:`import_closure`).
    """
    path = Path(path)
    stat = path.stat()
    return set(_imported_names(str(path), stat.st_mtime_ns, stat.st_size, module))


@functools.cache
def _imported_names(path: str, mtime_ns: int, size: int, module: str | None) -> frozenset[str]:
    """:func:`imported_names`, parsed once per file version (the workflow walks the same modules for every rule)."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    if module is None:
        package = None
    elif Path(path).name == "__init__.py":
        package = module
    else:
        package = module.rpartition(".")[0] or None
    names: set[str] = set()
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            if base is None:
                continue
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return frozenset(names)


def _statements(nodes: list) -> Iterable[ast.AST]:
    """Every statement of a block and of the blocks nested in it (function and class bodies, branches, handlers):
    an import is a statement, so expressions need not be visited."""
    for node in nodes:
        yield node
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                yield from _statements(block)


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def import_closure(script: Path, src_root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Module name → file of every ``package`` module that running ``script`` may import, directly or transitively.

    ``src_root`` is the folder holding the package (``src``). Names that are not modules (attributes imported with
    ``from … import``) and modules of other packages are left out.
    """
    src_root = Path(src_root)
    found: dict[str, Path] = {}
    todo: list[tuple[Path, str | None]] = [(Path(script), None)]
    while todo:
        path, module = todo.pop()
        for name in sorted(imported_names(path, module)):
            if name.split(".")[0] != package:
                continue
            for candidate in _with_parents(name):
                if candidate in found:
                    continue
                file = module_file(src_root, candidate)
                if file is None:
                    continue
                found[candidate] = file
                todo.append((file, candidate))
    return dict(sorted(found.items()))


def closure_parts(script: Path, src_root: Path, package: str = PACKAGE, exclude: Iterable[str] = ()) -> list[str]:
    """The closure of :func:`import_closure` as paths relative to the package folder (``da/run.py``), the form of the
    workflow's ``src()`` arguments; modules under an ``exclude`` subpackage (``settings``) are left out."""
    root = Path(src_root) / package
    excluded = tuple(exclude)
    parts = []
    for file in import_closure(script, src_root, package).values():
        rel = file.relative_to(root).as_posix()
        if any(rel == e or rel.startswith(f"{e}/") for e in excluded):
            continue
        parts.append(rel)
    return sorted(parts)
