"""Fixtures for the terraform checks: the rendered overlays of every environment, built once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mlops.render import render_envs
from tfrepo import ENVS, REPO_ROOT


@pytest.fixture(scope="session")
def rendered() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Environment -> every object its overlays and clusters/<env> render to (through `mlops.render`)."""
    by_env: dict[str, list[dict[str, Any]]] = {env: [] for env in ENVS}
    for result in render_envs(REPO_ROOT, ENVS):
        by_env[result.env].extend(result.documents)
    yield by_env
