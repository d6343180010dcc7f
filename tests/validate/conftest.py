"""Fixtures for `mlops validate`: a throw-away copy of the repository to plant problems in."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlops.conventions.paths import default_crds_dir


def _ignore(folder: str, names: list[str]) -> set[str]:
    # Hidden folders hold the venv, git, caches and local state (hundreds of MB); kustomize needs
    # none. .github stays: the delivery checks read the image pipeline (MLOPS023/028).
    hidden = {n for n in names if n.startswith(".") and n != ".github"}
    return hidden | {n for n in names if n in ("__pycache__", "node_modules")}


@pytest.fixture(scope="session")
def crds_dir(repo_root: Path) -> Path:
    path = default_crds_dir(repo_root)
    if not path.is_dir():
        pytest.fail(f"CRD schemas not found at {path}: unset MLOPS_CRDS_DIR or point it at upstream CRDs")
    return path


@pytest.fixture(scope="module")
def repo_copy(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the repository (without .venv, .git, caches) that a test module may change."""
    target = tmp_path_factory.mktemp("repo") / "main"
    shutil.copytree(repo_root, target, ignore=_ignore, symlinks=True)
    yield target
    shutil.rmtree(target, ignore_errors=True)
