"""Fixtures for the terraform checks: the rendered overlays and clusters/<env>, built once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mlops.rendering.render import CLUSTER_COMPONENT, RenderedKustomization, render_envs
from tfrepo import ENVS, REPO_ROOT


@pytest.fixture(scope="session")
def render_results() -> Iterator[list[RenderedKustomization]]:
    """Every kustomization of every environment, through `mlops.rendering.render` (the one render path)."""
    yield render_envs(REPO_ROOT, ENVS)


@pytest.fixture(scope="session")
def rendered(render_results: list[RenderedKustomization]) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Environment -> every object its overlays and clusters/<env> render to."""
    by_env: dict[str, list[dict[str, Any]]] = {env: [] for env in ENVS}
    for result in render_results:
        by_env[result.env].extend(result.documents)
    yield by_env


@pytest.fixture(scope="session")
def rendered_clusters(
    render_results: list[RenderedKustomization],
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Environment -> the objects of clusters/<env>, what terraform's root Application syncs."""
    by_env: dict[str, list[dict[str, Any]]] = {env: [] for env in ENVS}
    for result in render_results:
        if result.component == CLUSTER_COMPONENT:
            by_env[result.env].extend(result.documents)
    yield by_env
