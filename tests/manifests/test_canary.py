"""A canary of support-chat in prod, added as docs/adding-a-model.md (Canary) says, in a scratch copy.

The stable and canary deployments serve the same model name (the gateway routes `support-chat`
to both by weight), yet neither's Service, Deployment, PDB or topology spread selects the
other's pods; validation passes, and the gateway's routes resolve to rendered Services.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from gateway.routes import parse_routes
from mlops.conventions.errors import MlopsError
from mlops.conventions.paths import default_crds_dir
from mlops.rendering.manifest_diff import compare
from mlops.rendering.render import render_kustomization
from mlops.repository import model_version_file
from mlops.validate.runner.engine import validate
from support.canary import add_canary

STABLE = "overlays/prod/models/support-chat"
CANARY = "overlays/prod/models/support-chat-canary"
CANARY_URI = "s3://mlops-prod-mlflow-artifacts/1/feedc0de/artifacts/model"


@pytest.fixture
def with_canary(scratch_repo: Path) -> Path:
    add_canary(scratch_repo, "prod", "2", CANARY_URI, weight=10)
    return scratch_repo


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def _selectors(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    deployment = _one(docs, "Deployment")
    (spread,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    services = {d["metadata"]["name"].endswith("-headless"): d for d in docs if d["kind"] == "Service"}
    return {
        "Service": services[False]["spec"]["selector"],
        "headless Service": services[True]["spec"]["selector"],
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "PodDisruptionBudget": _one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        "topologySpreadConstraints": spread["labelSelector"]["matchLabels"],
    }


def _pod_labels(docs: list[dict[str, Any]]) -> dict[str, str]:
    return _one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_stable_and_canary_select_only_their_own_pods(with_canary: Path) -> None:
    stable = render_kustomization(with_canary, STABLE)
    canary = render_kustomization(with_canary, CANARY)
    for mine, other, name in ((stable, canary, "stable"), (canary, stable, "canary")):
        for kind, selector in _selectors(mine).items():
            assert _matches(selector, _pod_labels(mine)), f"{name} {kind} does not select its own pods"
            assert not _matches(selector, _pod_labels(other)), (
                f"{name} {kind} {selector} selects the other's pods"
            )

    stable_pod, canary_pod = _pod_labels(stable), _pod_labels(canary)
    # Same registered model (served name, metrics label), different deployment and version.
    assert stable_pod["mlops.platform/model"] == canary_pod["mlops.platform/model"] == "support-chat"
    assert (stable_pod["mlops.platform/track"], canary_pod["mlops.platform/track"]) == ("stable", "canary")
    assert (stable_pod["app.kubernetes.io/version"], canary_pod["app.kubernetes.io/version"]) == ("1", "2")
    vllm = next(c for c in _one(canary, "Deployment")["spec"]["template"]["spec"]["containers"])
    assert {e["name"]: e.get("value") for e in vllm["env"]}["MODEL_NAME"] == "support-chat"
    annotations = _one(canary, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["mlops.platform/weights-uri"] == CANARY_URI
    names = {(d["kind"], d["metadata"]["name"]) for d in canary}
    assert names.isdisjoint({(d["kind"], d["metadata"]["name"]) for d in stable})
    assert _one(canary, "ScaledObject")["spec"]["scaleTargetRef"]["name"] == "support-chat-canary-vllm"


def _queue_pods(scaled_object: dict[str, Any], pods: list[str]) -> list[str]:
    """The pods whose queue the ScaledObject's query sums (matchers on `pod`, fully anchored like PromQL)."""
    query = scaled_object["spec"]["triggers"][0]["metadata"]["query"]
    assert 'model_name="support-chat"' in query and "vllm:num_requests_waiting" in query
    matchers = re.findall(r'pod(=~|!~)"([^"]*)"', query)
    assert matchers, query
    return [
        pod for pod in pods if all((re.fullmatch(rx, pod) is not None) == (op == "=~") for op, rx in matchers)
    ]


def test_each_deployment_scales_on_its_own_queue(with_canary: Path) -> None:
    # Pod names as the ReplicaSets make them: <deployment>-<template hash>-<suffix>.
    stable_pods = ["support-chat-vllm-6d9f8b7c5d-x2k4p", "support-chat-vllm-6d9f8b7c5d-q8r7t"]
    canary_pods = ["support-chat-canary-vllm-7f5c9d8b6-m3n9z"]
    pods = stable_pods + canary_pods
    assert _queue_pods(_one(render_kustomization(with_canary, STABLE), "ScaledObject"), pods) == stable_pods
    assert _queue_pods(_one(render_kustomization(with_canary, CANARY), "ScaledObject"), pods) == canary_pods


def test_no_two_model_deployments_select_each_others_pods(rendered, repo_root: Path) -> None:
    """In this repository as it is: every model Service/Deployment/PDB selects its own pods only."""
    for env in ("dev", "prod"):
        folders = sorted(p.name for p in (repo_root / "overlays" / env / "models").iterdir() if p.is_dir())
        docs = {name: rendered.docs(f"overlays/{env}/models/{name}") for name in folders}
        for name, mine in docs.items():
            for other_name, other in docs.items():
                for kind, selector in _selectors(mine).items():
                    selects = _matches(selector, _pod_labels(other))
                    assert selects == (name == other_name), f"{env} {name} {kind} vs pods of {other_name}"


def test_canary_validates_and_the_90_10_routes_point_at_rendered_services(with_canary: Path) -> None:
    report = validate(with_canary, ("prod",), default_crds_dir(Path(__file__).resolve().parents[2]))
    assert report.problems == [], "\n".join(str(p) for p in report.problems)

    gateway = render_kustomization(with_canary, "overlays/prod/gateway")
    config_map = next(
        o for o in gateway if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "gateway-routes"
    )
    routes = parse_routes(yaml.safe_load(config_map["data"]["routes.yaml"]), "routes.yaml")
    services = {
        (o["metadata"]["name"], o["metadata"]["namespace"], p["port"])
        for path in (STABLE, CANARY)
        for o in render_kustomization(with_canary, path)
        if o["kind"] == "Service"
        for p in o["spec"]["ports"]
    }
    backends = {b.name: b for b in routes["support-chat"].backends}
    assert {name: b.weight for name, b in backends.items()} == {"stable": 90, "canary": 10}
    for backend in backends.values():
        url = urlsplit(backend.url)
        assert (*(url.hostname or "").split(".")[:2], url.port) in services, backend.url


def test_version_file_of_a_canary_names_the_stable_model(with_canary: Path) -> None:
    assert model_version_file.deployments_in(with_canary, "prod") == ["support-chat", "support-chat-canary"]
    state = model_version_file.load(with_canary, "prod", "support-chat-canary")
    assert (state.model, state.version, state.weights_uri) == ("support-chat", "2", CANARY_URI)

    path = with_canary / CANARY / "model-version.yaml"
    path.write_text(path.read_text().replace("model: support-chat", "model: faq-bot"))
    with pytest.raises(
        MlopsError, match=r"folder 'support-chat-canary' is a deployment of model 'support-chat'"
    ):
        model_version_file.load(with_canary, "prod", "support-chat-canary")


def test_diff_lists_the_canary_version_next_to_the_stable_one(
    scratch_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    before = tmp_path_factory.mktemp("before")
    for name in ("base", "overlays", "apps", "clusters"):
        shutil.copytree(scratch_repo / name, before / name)
    add_canary(scratch_repo, "prod", "2", CANARY_URI)
    comparison = compare(before, scratch_repo, envs=("prod",))
    assert [(v.env, v.model, v.old, v.new) for v in comparison.versions] == [
        ("prod", "support-chat-canary", None, "2")
    ]
    assert comparison.failures == []
    assert any(c.path == CANARY and c.resource.startswith("Deployment") for c in comparison.changes)
