"""MLOPS140: prod's third-party images come through the ECR pull-through cache (planted defects)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops.conventions.image_refs import PULL_THROUGH_CACHE, split_registry, through_cache, upstream_of
from mlops.rendering.terraform_hcl import locals_of, unquote
from mlops.validate.objects.violations import HINTS
from support.validate_cli import by_folder, plant, validate_lines

MODEL = "overlays/prod/models/support-chat"
VLLM = "Deployment/support-chat-vllm"
REGISTRY = "444455556666.dkr.ecr.us-west-2.amazonaws.com"


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    # vLLM straight from Docker Hub (the model no longer lists the cache component) ...
    plant(repo_copy, f"{MODEL}/kustomization.yaml", "  - ../../pull-through-cache\n", "")
    # ... and the mlflow image from an ECR prefix that is no cache rule.
    plant(
        repo_copy,
        "overlays/prod/mlflow/kustomization.yaml",
        f"{REGISTRY}/mlops/mlflow",
        f"{REGISTRY}/hub/mlflow",
    )
    return validate_lines(repo_copy, crds_dir, "prod")


def _hinted(line: str) -> str:
    return f"{line} [MLOPS140: {HINTS['MLOPS140']}]"


def test_a_docker_hub_image_pulled_directly_in_prod(lines: list[str]) -> None:
    assert _hinted(
        f"{MODEL}: {VLLM}: spec.template.spec.containers[0].image: vllm/vllm-openai:v0.32.0 "
        "comes straight from docker.io: pull it as <prod registry>/docker-hub/vllm/vllm-openai:v0.32.0"
    ) in by_folder(lines)
    assert _hinted(
        f"{MODEL}: {VLLM}: spec.template.spec.initContainers[0].image: amazon/aws-cli:2.36.7 "
        "comes straight from docker.io: pull it as <prod registry>/docker-hub/amazon/aws-cli:2.36.7"
    ) in by_folder(lines)


def test_an_ecr_prefix_that_is_no_cache_rule(lines: list[str]) -> None:
    assert _hinted(
        "overlays/prod/mlflow: Deployment/mlflow: spec.template.spec.containers[0].image: "
        f"{REGISTRY}/hub/mlflow:0.4.0 names ECR repository prefix hub/, which is neither mlops/ nor a "
        "pull-through cache rule "
        "(docker-hub, ecr-public, ghcr, k8s, quay)"
    ) in by_folder(lines)


def test_only_the_planted_images_are_reported(lines: list[str]) -> None:
    # The workflows' images (git, aws-cli, BuildKit, python) already come through the cache.
    assert len([line for line in lines if "[MLOPS140:" in line]) == 3


def test_image_references_through_the_cache_and_back() -> None:
    assert split_registry("python:3.11") == ("docker.io", "library/python:3.11")
    assert split_registry("localhost:5000/x:1") == ("localhost:5000", "x:1")
    assert through_cache(REGISTRY, "alpine/git:v2.47.2") == f"{REGISTRY}/docker-hub/alpine/git:v2.47.2"
    assert (
        through_cache(REGISTRY, "quay.io/prometheus/prometheus:v3")
        == f"{REGISTRY}/quay/prometheus/prometheus:v3"
    )
    assert upstream_of(f"{REGISTRY}/docker-hub/library/python:3.11") == "python:3.11"
    assert upstream_of(f"{REGISTRY}/ghcr/kubeflow/x:v1") == "ghcr.io/kubeflow/x:v1"
    assert upstream_of(f"{REGISTRY}/mlops/gateway:0.2.0") == f"{REGISTRY}/mlops/gateway:0.2.0"
    with pytest.raises(KeyError):
        through_cache(REGISTRY, "nvcr.io/nvidia/pytorch:25.01")


def test_the_cache_prefixes_are_terraforms_rules(repo_root: Path) -> None:
    upstreams = unquote(locals_of(repo_root / "terraform/modules/pull-through-cache")["upstreams"])
    expected = {
        ("registry-1.docker.io" if host == "docker.io" else host): p for host, p in PULL_THROUGH_CACHE.items()
    }
    assert {unquote(url): unquote(prefix) for prefix, url in upstreams.items()} == expected
