"""Argo CD: what each cluster root generates, and whether its projects let it sync."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml

# Upstream versions `mlops validate` checks custom resources against (../shared/crds/<name>-v<version>).
CRD_VERSIONS = {
    "karpenter": "1.14.1",
    "external-secrets": "2.9.0",
    "keda": "2.20.2",
}
CLUSTER = "clusters/{env}"


def _appsets(rendered, env: str) -> list[dict[str, Any]]:
    return [d for d in rendered.docs(CLUSTER.format(env=env)) if d["kind"] == "ApplicationSet"]


def _projects(rendered, env: str) -> dict[str, dict[str, Any]]:
    docs = rendered.docs(CLUSTER.format(env=env))
    return {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "AppProject"}


def _list_elements(appset: dict[str, Any]) -> list[dict[str, Any]]:
    for generator in appset["spec"]["generators"]:
        for child in generator.get("matrix", {}).get("generators", []):
            if "list" in child:
                return child["list"]["elements"]
    return []


def _directories(appset: dict[str, Any], env: str) -> list[str]:
    found = []
    for generator in appset["spec"]["generators"]:
        for child in generator.get("matrix", {}).get("generators", []):
            for d in child.get("git", {}).get("directories", []):
                found.append(d["path"].replace("{{.metadata.labels.env}}", env))
    return found


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_appset_takes_env_from_the_cluster_and_syncs_itself(rendered, env):
    projects = _projects(rendered, env)
    for appset in _appsets(rendered, env):
        spec = appset["spec"]
        name = appset["metadata"]["name"]
        assert spec["goTemplate"] is True and spec["goTemplateOptions"] == ["missingkey=error"], name
        assert "{{.metadata.labels.env}}" in spec["template"]["metadata"]["name"], name
        assert "dev" not in yaml.safe_dump(spec["template"]) and "prod" not in yaml.safe_dump(
            spec["template"]
        )
        app = spec["template"]["spec"]
        assert app["project"] in projects, f"{name}: project {app['project']} is not defined"
        assert app["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}, name
        assert "ServerSideApply=true" in app["syncPolicy"]["syncOptions"], name
        assert app["syncPolicy"]["retry"]["backoff"], name


def test_chart_versions_match_the_validated_crds_and_have_values(rendered, repo_root):
    (charts,) = [a for a in _appsets(rendered, "dev") if _list_elements(a)]
    versions = {e["chart"]: e["version"] for e in _list_elements(charts)}
    for chart, version in CRD_VERSIONS.items():
        assert versions[chart] == version
    for chart in versions:
        for env in ("dev", "prod"):
            assert (repo_root / f"apps/upstream/{chart}/values-{env}.yaml").is_file(), (
                f"{chart} has no {env} values"
            )


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_projects_permit_everything_their_overlays_render(rendered, repo_root: Path, env):
    """Argo CD refuses to sync an object its project does not list: catch that before a cluster does."""
    projects = _projects(rendered, env)
    checked = 0
    for appset in _appsets(rendered, env):
        project = projects[appset["spec"]["template"]["spec"]["project"]]
        namespaces = {d["namespace"] for d in project["destinations"]}
        allowed_cluster = {(k["group"], k["kind"]) for k in project.get("clusterResourceWhitelist") or []}
        allowed_ns = {(k["group"], k["kind"]) for k in project.get("namespaceResourceWhitelist") or []}
        for pattern in _directories(appset, env):
            for path in sorted(
                p
                for p in rendered.by_path
                if fnmatch.fnmatch(p, pattern) and p.count("/") == pattern.count("/")
            ):
                for doc in rendered.docs(path):
                    group = doc["apiVersion"].rpartition("/")[0]
                    namespace = doc["metadata"].get("namespace")
                    what = f"{path}: {doc['kind']}/{doc['metadata']['name']}"
                    if namespace is None:
                        assert (group, doc["kind"]) in allowed_cluster, f"{what} is not whitelisted"
                    else:
                        assert namespace in namespaces, f"{what}: namespace {namespace} is not a destination"
                        assert (group, doc["kind"]) in allowed_ns or ("*", "*") in allowed_ns, (
                            f"{what} is not whitelisted"
                        )
                    checked += 1
    assert checked > 30


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_service_account_keeps_a_role_annotation(rendered, env):
    """Pod Identity everywhere: no terraform role trusts IRSA (modules/pod-identity-role), so no
    rendered ServiceAccount carries eks.amazonaws.com/role-arn."""
    annotated = {
        f"{path}: {doc['metadata']['name']}"
        for path, docs in rendered.by_path.items()
        if path.startswith(f"overlays/{env}/")
        for doc in docs
        if doc["kind"] == "ServiceAccount"
        and "eks.amazonaws.com/role-arn" in (doc["metadata"].get("annotations") or {})
    }
    assert not annotated


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_object_is_owned_by_two_applications(rendered, env):
    """Two Applications applying one object fight over it on every sync."""
    owner: dict[tuple[str, str, str, str], str] = {}
    for path, docs in rendered.by_path.items():
        if not path.startswith(f"overlays/{env}/"):
            continue
        for doc in docs:
            key = (
                doc["apiVersion"].rpartition("/")[0],
                doc["kind"],
                doc["metadata"].get("namespace", ""),
                doc["metadata"]["name"],
            )
            assert key not in owner, f"{key} is rendered by both {owner[key]} and {path}"
            owner[key] = path


# Objects chart aws-load-balancer-controller 1.17.1 fills with a CA made at render time
# (templates/_helpers.tpl webhookCerts: namePrefix "aws-load-balancer" + "-tls"/"-webhook").
_ADMISSION = "admissionregistration.k8s.io"
LBC_GENERATED = {
    ("", "Secret", "aws-load-balancer-tls"): "/data",
    (_ADMISSION, "MutatingWebhookConfiguration", "aws-load-balancer-webhook"): "caBundle",
    (_ADMISSION, "ValidatingWebhookConfiguration", "aws-load-balancer-webhook"): "caBundle",
}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_load_balancer_controller_keeps_its_first_webhook_cert_and_leaves_services_alone(
    rendered, repo_root: Path, env
):
    values_file = repo_root / f"apps/upstream/aws-load-balancer-controller/values-{env}.yaml"
    values = yaml.safe_load(values_file.read_text())
    # The chart's default (true) puts a failurePolicy: Fail webhook on every Service creation.
    assert values.get("enableServiceMutatorWebhook") is False
    (charts,) = [a for a in _appsets(rendered, env) if _list_elements(a)]
    app = charts["spec"]["template"]["spec"]
    ignored = {(d.get("group", ""), d["kind"], d["name"]): d for d in app.get("ignoreDifferences", [])}
    for key, field in LBC_GENERATED.items():
        assert key in ignored, f"{key} is re-generated on every render and must be ignored"
        paths = ignored[key].get("jsonPointers", []) + ignored[key].get("jqPathExpressions", [])
        assert any(field in p for p in paths), (key, paths)
    assert "RespectIgnoreDifferences=true" in app["syncPolicy"]["syncOptions"]
