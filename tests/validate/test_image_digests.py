"""MLOPS143: prod's third-party images are pinned by digest or listed to pin (planted defects)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops.validate.objects.violations import HINTS
from support.validate_cli import by_folder, validate_lines

REGISTRY = "444455556666.dkr.ecr.us-west-2.amazonaws.com"
LIST = "docs/dependencies.md"


def _replace(repo: Path, path: str, old: str, new: str) -> None:
    file = repo / path
    text = file.read_text()
    assert old in text, f"{path} no longer contains {old!r}: update the planted defect"
    file.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    # alpine/git leaves the release step's list, still pinned by tag only.
    _replace(repo_copy, LIST, "| `alpine/git:v2.47.2` |", "| (removed) |")
    # A chart image moves to a tag nobody listed ...
    _replace(
        repo_copy,
        "apps/upstream/metrics-server/values-prod.yaml",
        f"  repository: {REGISTRY}/k8s/metrics-server/metrics-server\n",
        f"  repository: {REGISTRY}/k8s/metrics-server/metrics-server\n  tag: v0.8.2\n",
    )
    # ... while one pinned by digest needs no row (the KEDA webhooks row goes, a digest comes).
    _replace(repo_copy, LIST, "| `ghcr.io/kedacore/keda-admission-webhooks:2.20.2` |", "| (removed) |")
    _replace(
        repo_copy,
        "apps/upstream/keda/values-prod.yaml",
        "    repository: kedacore/keda-admission-webhooks\n",
        "    repository: kedacore/keda-admission-webhooks\n    tag: 2.20.2@sha256:" + "0" * 64 + "\n",
    )
    return validate_lines(repo_copy, crds_dir, "prod")


def _hinted(line: str) -> str:
    return f"{line} [MLOPS143: {HINTS['MLOPS143']}]"


def test_a_workflow_image_neither_pinned_nor_listed(lines: list[str]) -> None:
    git = [
        line for line in lines if "[MLOPS143:" in line and f"{REGISTRY}/docker-hub/alpine/git:v2.47.2" in line
    ]
    assert git, lines
    assert all(
        line.endswith(
            _hinted(
                f"prod runs {REGISTRY}/docker-hub/alpine/git:v2.47.2 by tag, and {LIST} (Digests to pin) "
                "does not list alpine/git:v2.47.2: a moved tag changes what prod runs"
            )
        )
        for line in git
    ), git


def test_a_chart_image_on_an_unlisted_tag(lines: list[str]) -> None:
    assert _hinted(
        "apps/upstream/metrics-server/values-prod.yaml: chart/metrics-server: image.repository: prod "
        f"runs {REGISTRY}/k8s/metrics-server/metrics-server:v0.8.2 by tag, and {LIST} (Digests to pin) "
        "does not list registry.k8s.io/metrics-server/metrics-server:v0.8.2: a moved tag changes what "
        "prod runs"
    ) in by_folder(lines)


def test_a_digest_needs_no_row(lines: list[str]) -> None:
    assert not [line for line in lines if "keda-admission-webhooks" in line]


def test_only_the_planted_digest_problems(lines: list[str]) -> None:
    planted = [line for line in lines if "[MLOPS143:" in line]
    assert len(planted) == 1 + len([line for line in planted if "alpine/git" in line]), planted
