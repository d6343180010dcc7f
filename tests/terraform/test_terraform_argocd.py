"""Terraform's Argo CD bootstrap and apps/ + clusters/<env> fit together."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from tfrepo import ENVS, REPO_ROOT, TERRAFORM, evaluate, locals_of, tfvars, unquote

BOOTSTRAP = TERRAFORM / "modules" / "argocd-bootstrap"
TEMPLATE_REFERENCE = re.compile(
    r"\.metadata\.(labels|annotations)\.([A-Za-z0-9_]+)|index \.metadata\.(labels|annotations) \"([^\"]+)\""
)


def _apps_documents() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((REPO_ROOT / "apps").rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict)
    ]


def _cluster_secret() -> tuple[set[str], set[str]]:
    """Label and annotation names terraform writes onto the in-cluster cluster secret."""
    local = locals_of(BOOTSTRAP)
    labels = {unquote(k) for k in local["labels"]}
    annotations = {unquote(k) for k in local["base_annotations"]}
    assert "local.base_annotations" in local["annotations"]
    return labels, annotations


def test_the_cluster_secret_is_an_argocd_cluster_labelled_with_its_env() -> None:
    local = locals_of(BOOTSTRAP)
    labels = {unquote(k): v for k, v in local["labels"].items()}
    assert unquote(labels["argocd.argoproj.io/secret-type"]) == "cluster"
    assert labels["env"] == "${var.env}"


def test_every_label_and_annotation_apps_reads_is_on_the_cluster_secret() -> None:
    labels, annotations = _cluster_secret()
    text = "\n".join(path.read_text() for path in sorted((REPO_ROOT / "apps").rglob("*.yaml")))
    used = {"labels": set(), "annotations": set()}
    for match in TEMPLATE_REFERENCE.finditer(text):
        kind, name = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        used[kind].add(name)
    assert used["labels"], "apps/ reads no label of the cluster secret: the pattern no longer matches"
    assert used["labels"] <= labels, f"apps/ reads labels terraform does not set: {used['labels'] - labels}"
    assert used["annotations"] <= annotations, (
        f"apps/ reads annotations terraform does not set: {used['annotations'] - annotations}"
    )


def test_applicationsets_select_the_env_label_terraform_sets() -> None:
    selected = set()
    for doc in _apps_documents():
        if doc.get("kind") != "ApplicationSet":
            continue
        for generator in re.findall(r"'key': 'env', 'operator': 'In', 'values': \[([^\]]*)\]", str(doc)):
            selected.update(v.strip(" '") for v in generator.split(","))
    assert selected, "no ApplicationSet selects clusters on the env label"
    assert {tfvars(env)["env"] for env in ENVS} <= selected


@pytest.mark.parametrize("env", ENVS)
def test_root_application_may_create_everything_in_clusters_env(env: str, rendered_clusters) -> None:
    kinds = {str(evaluate(k, {})) for k in locals_of(BOOTSTRAP)["root_kinds"]}
    namespace = unquote(locals_of(BOOTSTRAP)["namespace"])
    docs = rendered_clusters[env]
    assert docs, f"clusters/{env} renders nothing"
    outside = [
        f"{d['kind']} {d['metadata'].get('namespace')}/{d['metadata']['name']}"
        for d in docs
        if not d.get("apiVersion", "").startswith("argoproj.io/")
        or d["kind"] not in kinds
        or d["metadata"].get("namespace", namespace) != namespace
    ]
    assert not outside, f"clusters/{env} holds objects the bootstrap AppProject forbids: {outside}"


@pytest.mark.parametrize("env", ENVS)
def test_every_appproject_allows_the_repository_terraform_points_at(env: str, rendered_clusters) -> None:
    repo_url = tfvars(env)["platform_repo_url"]
    projects = [d for d in rendered_clusters[env] if d.get("kind") == "AppProject"]
    assert projects
    missing = [p["metadata"]["name"] for p in projects if repo_url not in p["spec"].get("sourceRepos", [])]
    assert not missing, f"{env}: AppProjects without terraform's platform_repo_url {repo_url}: {missing}"


def test_oci_chart_registries_are_registered_by_terraform() -> None:
    registered = {unquote(v) for v in locals_of(BOOTSTRAP)["oci_chart_repositories"].values()}
    oci = set()
    for doc in _apps_documents():
        for url in re.findall(r"'repoURL': '([^']+)'", str(doc)):
            if "://" not in url and "{{" not in url and not url.startswith("git@"):
                oci.add(url)
    assert oci <= registered, (
        f"charts from OCI registries Argo CD does not know (enableOCI): {oci - registered}"
    )
