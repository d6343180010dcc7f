"""MLOPS050: the committed workflow YAML is what `mlops workflows compile` makes of workflows/*.py.

`mlops validate` runs the same comparison as `mlops workflows compile --check`
(`mlops.workflow_bridge.workflow_compiler.drifted`), so an overlay change that makes the generated workflows
stale (a model folder added, a canary plan removed) fails the same gate.

Compiling imports Hera and builds nine documents (about 3 s), so the result is kept under
`$MLOPS_CACHE_DIR/generated/`, keyed by everything the compiler reads: the source of the
`workflows` package and of the compiler, the installed Hera version, the model folders and
canary plans of each environment, and the committed generated files themselves.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.conventions.errors import MlopsError
from mlops.conventions.paths import ENVS, cache_root
from mlops.rendering.build_cache import write_cache_file
from mlops.validate.objects.problems import Problem
from mlops.validate.objects.violations import HINTS

if TYPE_CHECKING:
    from mlops.workflow_bridge.workflow_compiler import WorkflowModule


def check(repo: Path) -> list[Problem]:
    """Return one problem per generated file that is missing or differs from what workflows/ compiles to."""
    from mlops.workflow_bridge import workflow_compiler

    use_cache = os.environ.get("MLOPS_BUILD_CACHE", "1") != "0"
    # The drifted paths are a function of the fingerprint's inputs: a stale result is kept too.
    stored = cache_root() / "generated" / f"{_fingerprint(repo)}.json"
    drifted: list[str] | None = None
    if use_cache:
        try:
            drifted = [str(p) for p in json.loads(stored.read_text())]
        except (OSError, ValueError, TypeError):
            drifted = None
    if drifted is None:
        try:
            drifted = workflow_compiler.drifted(repo)
        except MlopsError as exc:  # a workflow module that does not build: the user's to fix, not a traceback
            return [Problem("workflows/", "(workflows)", "", str(exc), "MLOPS050", HINTS["MLOPS050"])]
        if use_cache:
            write_cache_file(stored, json.dumps(drifted))
    by_path = {
        path: workflow for workflow in workflow_compiler.WORKFLOWS for path in _generated_paths(workflow)
    }
    problems = [
        Problem(
            path,
            f"{by_path[path].kind}/{by_path[path].name}" if path in by_path else "(generated)",
            "",
            f"{'missing' if not (repo / path).is_file() else 'stale'}: differs from what "
            f"workflows/{by_path[path].module if path in by_path else '*'}.py compiles to; "
            f"run `{workflow_compiler.COMPILE_COMMAND}`",
            "MLOPS050",
            HINTS["MLOPS050"],
        )
        for path in drifted
    ]
    return problems


def _fingerprint(repo: Path) -> str:
    """Hash of every input of the compiler (see the module docstring)."""
    from mlops.workflow_bridge import workflow_compiler

    digest = hashlib.sha256()
    spec = importlib.util.find_spec("workflows")
    sources = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    files = sorted(f for folder in sources for f in folder.glob("*.py"))
    files.append(Path(workflow_compiler.__file__).resolve())
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    try:
        digest.update(importlib.metadata.version("hera").encode())
    except importlib.metadata.PackageNotFoundError:
        pass
    for env in ENVS:
        models = repo / "overlays" / env / "models"
        for folder in sorted(models.glob("*")) if models.is_dir() else []:
            if folder.is_dir():
                plan = (folder / "canary-plan.yaml").is_file()
                digest.update(f"{env}/{folder.name}:{plan}\0".encode())
    for workflow in workflow_compiler.WORKFLOWS:
        for path in _generated_paths(workflow):
            file = repo / path
            text = file.read_bytes() if file.is_file() else b"\1missing"
            digest.update(path.encode() + b"\0" + text + b"\0")
    return digest.hexdigest()


def _generated_paths(workflow: WorkflowModule) -> list[str]:
    from mlops.workflow_bridge import workflow_compiler

    return [workflow_compiler.base_path(workflow), *(workflow_compiler.patch_path(workflow, e) for e in ENVS)]
