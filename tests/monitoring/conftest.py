"""Fixtures: promtool, and the PrometheusRules of each environment as plain rule files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlops.conventions.paths import ENVS
from mlops.rendering.render import render_envs


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: `make test` installs it (Debian package prometheus)")
    return path


@pytest.fixture(scope="session")
def monitoring_objects(repo_root: Path) -> dict[str, list[dict[str, Any]]]:
    """The rendered `overlays/<env>/monitoring` of every environment."""
    return {
        rendered.env: rendered.documents for rendered in render_envs(repo_root, ENVS, component="monitoring")
    }


@pytest.fixture(scope="session")
def rule_files(
    monitoring_objects: dict[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Per environment, a folder with one `<PrometheusRule name>.yaml` rule file per PrometheusRule."""
    folders = {}
    for env, objects in monitoring_objects.items():
        folder = tmp_path_factory.mktemp(f"rules-{env}")
        for obj in objects:
            if obj.get("kind") == "PrometheusRule":
                text = yaml.safe_dump(obj["spec"], sort_keys=False)
                (folder / f"{obj['metadata']['name']}.yaml").write_text(text)
        folders[env] = folder
    return folders
