"""The package graph of docs/architecture.md holds: each package and room imports only what it may."""

from __future__ import annotations

import ast
import importlib
import shutil
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

FORBIDDEN: dict[str, set[str]] = {
    "mlops": {"gateway", "trainer"} | OUTERMOST,
    "workflows": {"gateway", "trainer"} | OUTERMOST,
    "gateway": {"mlops", "workflows", "trainer"} | OUTERMOST,
    "trainer": {"mlops", "workflows", "gateway"} | OUTERMOST,
    "registry_access": {"mlops", "workflows", "gateway", "trainer"} | OUTERMOST,
}
"""Package -> the top-level names it may not import, at module level or inside a function."""

# The rooms of mlops (docs/architecture.md) and, for each, the rooms and packages it may import,
# at module level or inside a function. `mlops` is the package root (its __version__, importing
# nothing); `mlops.cli` stands for the entry point (cli.py, __main__.py). `workflows` is here too:
# it meets mlops only through mlops.conventions, and only the bridge imports it back.
_BELOW_VALIDATE = {"mlops", "mlops.conventions", "mlops.repository", "mlops.rendering"}
ROOMS: dict[str, set[str]] = {
    "mlops": set(),
    "mlops.conventions": {"mlops"},
    "workflows": {"mlops", "mlops.conventions"},
    "mlops.repository": {"mlops", "mlops.conventions"},
    "mlops.rendering": {"mlops", "mlops.conventions", "mlops.repository"},
    "mlops.validate.objects": _BELOW_VALIDATE,
    "mlops.validate.schema_checks": _BELOW_VALIDATE | {"mlops.validate.objects"},
    "mlops.validate.object_rules": _BELOW_VALIDATE | {"mlops.validate.objects"},
    "mlops.canary": _BELOW_VALIDATE | {"mlops.validate.objects"},
    "mlops.workflow_bridge": {"mlops", "mlops.conventions", "workflows"},
    "mlops.validate.env_rules": _BELOW_VALIDATE
    | {
        "mlops.validate.objects",
        "mlops.validate.schema_checks",
        "mlops.validate.object_rules",
        "mlops.canary",
        "mlops.workflow_bridge",
    },
    "mlops.validate.trust_rules": _BELOW_VALIDATE
    | {
        "mlops.validate.objects",
        "mlops.validate.schema_checks",
        "mlops.validate.object_rules",
        "mlops.canary",
    },
    "mlops.validate.runner": _BELOW_VALIDATE
    | {
        "mlops.validate.objects",
        "mlops.validate.schema_checks",
        "mlops.validate.object_rules",
        "mlops.validate.env_rules",
        "mlops.validate.trust_rules",
        "mlops.canary",
    },
    "mlops.release": _BELOW_VALIDATE | {"mlops.canary", "mlops.validate.env_rules"},
    "mlops.local": _BELOW_VALIDATE
    | {"mlops.canary", "mlops.release", "mlops.validate.runner", "mlops.workflow_bridge"},
    "mlops.commands": _BELOW_VALIDATE
    | {
        "mlops.canary",
        "mlops.release",
        "mlops.local",
        "mlops.workflow_bridge",
        "mlops.validate.schema_checks",
        "mlops.validate.env_rules",
        "mlops.validate.runner",
    },
    "mlops.cli": {"mlops", "mlops.conventions", "mlops.commands"},
}
"""Room -> what it may import. Together they form no cycle (test_the_allowed_rooms_form_no_cycle)."""

# The rooms whose modules import the workflows when they load: they compile or run them.
MLOPS_WORKFLOW_BRIDGES = {"mlops.workflow_bridge"}


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
            # `from mlops.release import promotion`: the module mlops.release.promotion
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            yield Import(file, node.lineno, name, id(node) in top)


def package_imports(package: str) -> list[Import]:
    """Every import in every module of an installed package."""
    return [found for file in sorted(PACKAGES[package].rglob("*.py")) for found in imports_of(package, file)]


def room_of(module: str) -> str | None:
    """The room a dotted module belongs to (the longest room that holds it), or None outside them."""
    if module in {"mlops.cli", "mlops.__main__"}:
        return "mlops.cli"
    held = [room for room in ROOMS if module == room or module.startswith(room + ".")]
    return max(held, key=len) if held else None


def room_edges(package: str) -> list[tuple[str, str, Import]]:
    """(from room, to room, the import) for each import of a package that crosses rooms."""
    edges = []
    for found in package_imports(package):
        source, target = room_of(_module_name(package, found.file)), room_of(found.module)
        # `from mlops.release import promotion` also yields `mlops.release`, the room's __init__
        # that names no module: only the full name (mlops.release.promotion) counts.
        if found.module in ROOMS and found.module not in {"mlops", "workflows"}:
            continue
        if source and target and source != target:
            edges.append((source, target, found))
    return edges


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of a directed graph, as the nodes along it, or [] when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for after in sorted(graph.get(node, ())):
            if state.get(after) == 1:
                return [*path[path.index(after) :], after]
            if after not in state and (found := visit(after)):
                return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_a_package_imports_none_of_what_it_may_not(package):
    bad = [str(i) for i in package_imports(package) if i.module.split(".")[0] in FORBIDDEN[package]]
    assert not bad, (
        f"{package} may not import {sorted(FORBIDDEN[package])} (docs/architecture.md):\n" + "\n".join(bad)
    )


def test_the_allowed_rooms_form_no_cycle():
    cycle = _cycle(ROOMS)
    assert not cycle, "ROOMS allows a cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("package", ["mlops", "workflows"])
def test_each_room_imports_only_the_rooms_it_may(package):
    bad = [
        f"{found}: {source} may not import {target} (may: {', '.join(sorted(ROOMS[source])) or 'nothing'})"
        for source, target, found in room_edges(package)
        if target not in ROOMS[source]
    ]
    assert not bad, "an import runs against the rooms of docs/architecture.md:\n" + "\n".join(bad)


def test_every_module_of_mlops_is_in_a_room():
    """A module at the package root, or in a folder no room names, has no allowed directions."""
    lost = [
        str(file.relative_to(REPO))
        for file in sorted(PACKAGES["mlops"].rglob("*.py"))
        if room_of(_module_name("mlops", file)) in {None, "mlops"} and file.name != "__init__.py"
    ]
    assert not lost, "modules outside every room (give each a room in ROOMS and the docs):\n" + "\n".join(
        lost
    )


def test_only_the_bridge_imports_the_workflows_when_mlops_loads():
    bad = [
        str(i)
        for i in package_imports("mlops")
        if i.module.split(".")[0] == "workflows"
        and i.at_module_level
        and room_of(_module_name("mlops", i.file)) not in MLOPS_WORKFLOW_BRIDGES
    ]
    assert not bad, "a module of mlops imports workflows when it loads:\n" + "\n".join(bad)


def test_the_gateway_modules_import_one_another_in_one_direction():
    """Type-only imports count: a cycle of them is still two modules that each need the other."""
    graph: dict[str, set[str]] = {}
    for found in package_imports("gateway"):
        target = found.module
        if target.split(".")[0] == "gateway" and (PACKAGES["gateway"] / f"{target[8:]}.py").is_file():
            graph.setdefault(_module_name("gateway", found.file), set()).add(target)
    cycle = _cycle(graph)
    assert not cycle, "the gateway's modules import one another in a circle: " + " -> ".join(cycle)


def test_a_planted_forbidden_import_is_found(tmp_path, monkeypatch):
    planted = tmp_path / "gateway"
    planted.mkdir()
    (planted / "app.py").write_text(
        "from __future__ import annotations\n\n\ndef f():\n    import mlops.rendering.render\n"
    )
    monkeypatch.setitem(PACKAGES, "gateway", planted)
    with pytest.raises(AssertionError, match=r"app.py:5: import mlops.rendering.render"):
        test_a_package_imports_none_of_what_it_may_not("gateway")


def test_a_planted_back_edge_between_rooms_is_found(tmp_path, monkeypatch):
    """A copy of mlops whose conventions reach up to the write path, inside a function."""
    copy = tmp_path / "mlops"
    shutil.copytree(PACKAGES["mlops"], copy, ignore=shutil.ignore_patterns("crd_schemas", "__pycache__"))
    paths = copy / "conventions" / "paths.py"
    lines = paths.read_text(encoding="utf-8").count("\n")
    paths.write_text(
        paths.read_text(encoding="utf-8") + "\n\ndef _planted():\n    from mlops.release import promotion\n"
    )
    monkeypatch.setitem(PACKAGES, "mlops", copy)
    with pytest.raises(
        AssertionError,
        match=rf"conventions/paths.py:{lines + 4}: import mlops.release.promotion: "
        r"mlops.conventions may not import mlops.release \(may: mlops\)",
    ):
        test_each_room_imports_only_the_rooms_it_may("mlops")


def test_a_planted_back_edge_from_the_workflows_is_found(tmp_path, monkeypatch):
    """The workflows reaching past mlops.conventions would close workflows -> mlops -> workflows."""
    copy = tmp_path / "workflows"
    shutil.copytree(PACKAGES["workflows"], copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "planted.py").write_text("from mlops.workflow_bridge.workflow_compiler import WORKFLOWS\n")
    monkeypatch.setitem(PACKAGES, "workflows", copy)
    with pytest.raises(
        AssertionError, match=r"planted.py:1: .*workflows may not import mlops.workflow_bridge"
    ):
        test_each_room_imports_only_the_rooms_it_may("workflows")


def test_a_planted_circle_in_the_gateway_is_found(tmp_path, monkeypatch):
    copy = tmp_path / "gateway"
    shutil.copytree(PACKAGES["gateway"], copy, ignore=shutil.ignore_patterns("__pycache__"))
    exchange = copy / "exchange.py"
    exchange.write_text(
        exchange.read_text(encoding="utf-8")
        + "\n\nfrom typing import TYPE_CHECKING\n\n"
        + "if TYPE_CHECKING:\n    from gateway.server import GatewayServer\n"
    )
    monkeypatch.setitem(PACKAGES, "gateway", copy)
    with pytest.raises(AssertionError, match=r"in a circle: gateway\.\w+ -> .*gateway\.server"):
        test_the_gateway_modules_import_one_another_in_one_direction()


def test_a_planted_cycle_in_the_allowed_rooms_is_found(monkeypatch):
    monkeypatch.setitem(ROOMS, "mlops.conventions", {"mlops", "mlops.release"})
    with pytest.raises(AssertionError, match=r"ROOMS allows a cycle: .*mlops.conventions -> mlops.release"):
        test_the_allowed_rooms_form_no_cycle()


def test_pyproject_lists_every_folder_python_imports_as_a_package_of_mlops():
    """What a wheel holds: a room missing from `packages` would be missing from the install."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {
        _module_name("mlops", folder / "__init__.py")
        for folder in [PACKAGES["mlops"], *PACKAGES["mlops"].rglob("*")]
        if folder.is_dir() and folder.name.isidentifier() and folder.name != "__pycache__"
    }
    assert folders - listed == set(), f"add to pyproject.toml's packages: {sorted(folders - listed)}"
    assert {p for p in listed if p.startswith("mlops")} - folders == set()


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_each_package_is_imported_from_its_own_folder(package):
    """Installed, not shadowed: a folder of tests/ with the same name must not win."""
    module = importlib.import_module(package)
    assert Path(module.__file__ or "").resolve() == PACKAGES[package] / "__init__.py", (
        f"{package} came from {module.__file__ or 'a namespace folder'}: install the packages "
        "(make venv) and run `python -m pytest` from the repository root"
    )
