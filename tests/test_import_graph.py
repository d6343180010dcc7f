"""The package graph of docs/architecture.md holds: each package imports only what it may."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {
    "mlops": REPO / "scripts" / "mlops",
    "workflows": REPO / "workflows",
    "gateway": REPO / "images" / "gateway" / "gateway",
    "trainer": REPO / "images" / "trainer" / "trainer",
    "registry_access": REPO / "images" / "mlflow" / "registry_access",
}
"""The installed packages (pyproject.toml's `packages`) and the folder each one is."""
OUTERMOST = {"support", "benchmarks", "tests"}
"""Test helpers and benchmarks: they may import the packages, never the other way round."""

# Which modules of mlops the workflows may import: leaves that know nothing of the compiler,
# so that `mlops.workflow_bridge.workflow_compiler -> workflows -> mlops.<these>` never closes a cycle.
WORKFLOWS_MAY_IMPORT = {
    "mlops",
    "mlops.conventions.paths",
    "mlops.conventions.write_inputs",
    "mlops.conventions.argo_json",
    "mlops.conventions.image_refs",
    "mlops.conventions.deployment",
}
# The two modules of mlops that import the workflows at module level: they compile or run them.
MLOPS_WORKFLOW_BRIDGES = {"mlops.workflow_bridge.workflow_compiler", "mlops.workflow_bridge.workflow_local"}

FORBIDDEN: dict[str, set[str]] = {
    "mlops": {"gateway", "trainer"} | OUTERMOST,
    "workflows": {"gateway", "trainer"} | OUTERMOST,
    "gateway": {"mlops", "workflows", "trainer"} | OUTERMOST,
    "trainer": {"mlops", "workflows", "gateway"} | OUTERMOST,
    "registry_access": {"mlops", "workflows", "gateway", "trainer"} | OUTERMOST,
}
"""Package -> the top-level names it may not import, at module level or inside a function."""


@dataclass(frozen=True)
class Import:
    """One import statement: where it is, what it names, whether it runs when the module loads."""

    file: Path
    line: int
    module: str
    at_module_level: bool

    def __str__(self) -> str:
        where = self.file.relative_to(REPO) if self.file.is_relative_to(REPO) else self.file
        return f"{where}:{self.line}: import {self.module}"


def _module_name(package: str, file: Path) -> str:
    parts = file.relative_to(PACKAGES[package]).with_suffix("").parts
    return ".".join([package, *(p for p in parts if p != "__init__")])


def imports_of(package: str, file: Path) -> Iterator[Import]:
    """Every absolute import in a file (relative ones stay inside the package)."""
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    # module level: the body, and the bodies of its if/try blocks (TYPE_CHECKING, fallbacks)
    top: set[int] = set()
    for node in tree.body:
        top.add(id(node))
        for block in ("body", "orelse", "finalbody", "handlers"):
            for child in getattr(node, block, []) if isinstance(node, ast.If | ast.Try) else []:
                top.add(id(child))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if (
                "." not in node.module
            ):  # `from mlops import write_inputs`: the module mlops.conventions.write_inputs
                names += [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            yield Import(file, node.lineno, name, id(node) in top)


def package_imports(package: str) -> list[Import]:
    """Every import in every module of an installed package."""
    return [found for file in sorted(PACKAGES[package].rglob("*.py")) for found in imports_of(package, file)]


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_a_package_imports_none_of_what_it_may_not(package):
    bad = [str(i) for i in package_imports(package) if i.module.split(".")[0] in FORBIDDEN[package]]
    assert not bad, (
        f"{package} may not import {sorted(FORBIDDEN[package])} (docs/architecture.md):\n" + "\n".join(bad)
    )


def test_workflows_import_only_the_leaves_of_mlops():
    bad = [
        str(i)
        for i in package_imports("workflows")
        if i.module.split(".")[0] == "mlops" and i.module not in WORKFLOWS_MAY_IMPORT
    ]
    assert not bad, f"workflows may import only {sorted(WORKFLOWS_MAY_IMPORT)} of mlops:\n" + "\n".join(bad)


def test_the_mlops_modules_the_workflows_use_never_reach_back_to_the_workflows():
    """The closure of what those leaves import, inside mlops, holds neither bridge nor workflows."""
    seen: set[str] = set()
    queue = sorted(WORKFLOWS_MAY_IMPORT - {"mlops"})
    while queue:
        module = queue.pop()
        if module in seen:
            continue
        seen.add(module)
        file = PACKAGES["mlops"] / f"{module.removeprefix('mlops.').replace('.', '/')}.py"
        if not file.is_file():
            file = file.with_suffix("") / "__init__.py"
        for found in imports_of("mlops", file):
            if found.at_module_level and found.module.split(".")[0] in {"mlops", "workflows"}:
                if found.module.startswith("workflows") or found.module in MLOPS_WORKFLOW_BRIDGES:
                    pytest.fail(f"{found}: {module} is imported by workflows, so it may not import this")
                if (PACKAGES["mlops"] / f"{found.module.removeprefix('mlops.')}.py").is_file():
                    queue.append(found.module)
    assert "mlops.conventions.paths" in seen


def test_only_the_compiler_and_run_local_import_the_workflows_when_mlops_loads():
    bad = [
        str(i)
        for i in package_imports("mlops")
        if i.module.split(".")[0] == "workflows"
        and i.at_module_level
        and _module_name("mlops", i.file) not in MLOPS_WORKFLOW_BRIDGES
    ]
    assert not bad, "a module of mlops imports workflows when it loads:\n" + "\n".join(bad)


def test_a_planted_forbidden_import_is_found(tmp_path, monkeypatch):
    planted = tmp_path / "gateway"
    planted.mkdir()
    (planted / "app.py").write_text(
        "from __future__ import annotations\n\n\ndef f():\n    import mlops.rendering.render\n"
    )
    monkeypatch.setitem(PACKAGES, "gateway", planted)
    with pytest.raises(AssertionError, match=r"app.py:5: import mlops.rendering.render"):
        test_a_package_imports_none_of_what_it_may_not("gateway")


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_each_package_is_imported_from_its_own_folder(package):
    """Installed, not shadowed: a folder of tests/ with the same name must not win."""
    module = importlib.import_module(package)
    assert Path(module.__file__ or "").resolve() == PACKAGES[package] / "__init__.py", (
        f"{package} came from {module.__file__ or 'a namespace folder'}: install the packages "
        "(make venv) and run `python -m pytest` from the repository root"
    )
