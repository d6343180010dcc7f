"""Fixtures for the manifest tests: every environment rendered once, and a scratch copy of the manifests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlops.rendering.render import render_envs

# What kustomize needs to build overlays and cluster roots; a scratch copy holds only these.
# What `mlops validate` reads besides the manifests: the image pipeline, terraform (roles,
# ECR: MLOPS016, MLOPS023-029) and the images' Dockerfiles (their users: MLOPS014).
MANIFEST_DIRS = ("base", "overlays", "apps", "clusters", "terraform", "images", ".github", "docs")
# validate reads the release version (MLOPS023) from pyproject.toml and the reachability matrix
# (MLOPS080) from docs/security.md
MANIFEST_FILES = ("pyproject.toml",)


class Rendered:
    """The rendered documents of every kustomization of dev and prod, by folder."""

    def __init__(self, repo: Path) -> None:
        self.by_path = {r.path: r.documents for r in render_envs(repo)}

    def docs(self, path: str) -> list[dict[str, Any]]:
        return self.by_path[path]

    def one(self, path: str, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.by_path[path] if d["kind"] == kind and d["metadata"]["name"] == name]
        assert len(found) == 1, f"{path}: expected one {kind}/{name}, found {len(found)}"
        return found[0]


@pytest.fixture(scope="session")
def rendered(repo_root: Path) -> Rendered:
    return Rendered(repo_root)


@pytest.fixture
def scratch_repo(repo_root: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the repository's manifests that a test may edit."""
    for name in MANIFEST_DIRS:
        shutil.copytree(
            repo_root / name, tmp_path / name, ignore=shutil.ignore_patterns(".terraform", "__pycache__")
        )
    for name in MANIFEST_FILES:
        shutil.copy2(repo_root / name, tmp_path / name)
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)
