"""MLOPS143: prod's third-party images are pinned by digest or listed to pin (planted defects)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlops.validate.objects.violations import HINTS
from support.validate_cli import plant, validate_lines

REGISTRY = "444455556666.dkr.ecr.us-west-2.amazonaws.com"
LIST = "docs/dependencies.md"


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    # alpine/git leaves the release step's list, still pinned by tag only.
    plant(repo_copy, LIST, "| `alpine/git:v2.47.2` |", "| (removed) |")
    # A chart image moves to a tag nobody listed ...
    plant(
        repo_copy,
        "apps/upstream/metrics-server/values-prod.yaml",
        f"  repository: {REGISTRY}/k8s/metrics-server/metrics-server\n",
        f"  repository: {REGISTRY}/k8s/metrics-server/metrics-server\n  tag: v0.8.2\n",
    )
    # ... while one pinned by digest needs no row (the KEDA webhooks row goes, a digest comes).
    plant(repo_copy, LIST, "| `ghcr.io/kedacore/keda-admission-webhooks:2.20.2` |", "| (removed) |")
    plant(
        repo_copy,
        "apps/upstream/keda/values-prod.yaml",
        "    repository: kedacore/keda-admission-webhooks\n",
        "    repository: kedacore/keda-admission-webhooks\n    tag: 2.20.2@sha256:" + "0" * 64 + "\n",
    )
    # A chart's values lose their image block: its defaults would run from a public registry.
    plant(
        repo_copy,
        "apps/upstream/external-dns/values-prod.yaml",
        f"image:\n  repository: {REGISTRY}/k8s/external-dns/external-dns\n",
        "",
    )
    # A chart with no image block leaves the "Not routed yet" list.
    plant(
        repo_copy,
        LIST,
        "- **dcgm-exporter 4.8.2 and nvidia-device-plugin 0.20.0**",
        "- **nvidia-device-plugin 0.20.0**",
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


def test_a_chart_image_on_an_unlisted_tag(lines: list[str], repo_copy: Path) -> None:
    values = "apps/upstream/metrics-server/values-prod.yaml"
    # The problem names the line of the field it is about (image.repository).
    line = 1 + (repo_copy / values).read_text().splitlines().index(
        f"  repository: {REGISTRY}/k8s/metrics-server/metrics-server"
    )
    assert (
        _hinted(
            f"{values}:{line}: chart/metrics-server: image.repository: prod "
            f"runs {REGISTRY}/k8s/metrics-server/metrics-server:v0.8.2 by tag, and {LIST} (Digests to pin) "
            "does not list registry.k8s.io/metrics-server/metrics-server:v0.8.2: a moved tag changes what "
            "prod runs"
        )
        in lines
    )


@pytest.mark.parametrize("chart", ["external-dns", "dcgm-exporter"])
def test_a_chart_that_names_no_image_and_is_not_listed_as_unrouted(lines: list[str], chart: str) -> None:
    # No image field to point at: the line is wherever the source finder lands in the file.
    unlined = [re.sub(r"^([^:]+\.yaml):\d+:", r"\1:", line) for line in lines]
    assert (
        _hinted(
            f"apps/upstream/{chart}/values-prod.yaml: chart/{chart}: image: prod runs the {chart} chart's "
            "default images: this file names no image block, so they come from a public registry by tag, "
            "past the pull-through cache and the digest list; set its image repositories to the cache, or "
            f'name {chart} under "Not routed yet" in {LIST} with the reason'
        )
        in unlined
    ), [line for line in lines if chart in line]


def test_a_chart_listed_as_unrouted_needs_no_image(lines: list[str]) -> None:
    assert not [
        line for line in lines if "nvidia-device-plugin/values-prod.yaml" in line and "MLOPS143" in line
    ]


def test_a_digest_needs_no_row(lines: list[str]) -> None:
    assert not [line for line in lines if "keda-admission-webhooks" in line]


def test_only_the_planted_digest_problems(lines: list[str]) -> None:
    planted = [line for line in lines if "[MLOPS143:" in line]
    assert len(planted) == 3 + len([line for line in planted if "alpine/git" in line]), planted
