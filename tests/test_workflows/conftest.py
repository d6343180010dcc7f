"""Fixtures for the workflow tests: the compiled YAML as rendered per environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlops.rendering.render import render_kustomization


@pytest.fixture(scope="session")
def rendered(repo_root: Path) -> dict[str, list[dict[str, Any]]]:
    """`overlays/<env>/workflows` built by kustomize, per environment."""
    return {env: render_kustomization(repo_root, f"overlays/{env}/workflows") for env in ("dev", "prod")}
