"""The monitors select what the other components actually deploy, on ports that exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlops.conventions.paths import ENVS
from mlops.rendering.render import render_targets, targets

SCRAPED_COMPONENTS = ("models/", "mlflow", "workflows", "gateway")


@pytest.fixture(scope="module")
def scraped(repo_root: Path) -> dict[str, list[dict[str, Any]]]:
    """Per environment, the rendered objects of the components the platform's monitors scrape."""
    wanted = [
        t for env in ENVS for t in targets(repo_root, env) if t.component.startswith(SCRAPED_COMPONENTS)
    ]
    objects: dict[str, list[dict[str, Any]]] = {env: [] for env in ENVS}
    for rendered in render_targets(repo_root, wanted):
        objects[rendered.env].extend(rendered.documents)
    return objects


def _monitor(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"overlays/*/monitoring renders no {kind} {name}"
    return found[0]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        present = expr["key"] in labels
        if expr["operator"] == "Exists" and not present:
            return False
        if expr["operator"] == "In" and labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def _relabelled_pod_labels(endpoint: dict[str, Any]) -> set[str]:
    prefix = "__meta_kubernetes_pod_label_"
    return {
        source.removeprefix(prefix)
        for relabel in endpoint.get("relabelings", [])
        for source in relabel.get("sourceLabels", [])
        if source.startswith(prefix)
    }


def _label_key(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label)


def _check_pod_monitor(
    monitor: dict[str, Any], namespace: str, pod_template: dict[str, Any], what: str
) -> None:
    labels = pod_template["metadata"]["labels"]
    assert namespace in monitor["spec"]["namespaceSelector"]["matchNames"], what
    assert _selects(monitor["spec"]["selector"], labels), (
        f"{monitor['metadata']['name']} does not select {what}"
    )
    ports = {p.get("name") for c in pod_template["spec"]["containers"] for p in c.get("ports", [])}
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        assert endpoint["port"] in ports, f"{what} has no container port {endpoint['port']!r}"
        missing = _relabelled_pod_labels(endpoint) - {_label_key(k) for k in labels}
        if missing:
            # Labels set by an operator (training.kubeflow.org/*) are not in our templates.
            assert all(m.startswith("training_kubeflow_org_") for m in missing), (
                f"{what} lacks labels {missing}"
            )


@pytest.mark.parametrize("env", ENVS)
def test_vllm_pod_monitor_selects_every_model_server(
    env: str, scraped: dict[str, list[dict[str, Any]]], monitoring_objects: dict[str, list[dict[str, Any]]]
) -> None:
    monitor = _monitor(monitoring_objects[env], "PodMonitor", "vllm")
    servers = [
        o
        for o in scraped[env]
        if o["kind"] == "Deployment"
        and o["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "vllm"
    ]
    assert servers, f"{env}: no vLLM Deployment rendered"
    for deployment in servers:
        what = f"{env} Deployment {deployment['metadata']['name']}"
        _check_pod_monitor(monitor, deployment["metadata"]["namespace"], deployment["spec"]["template"], what)


@pytest.mark.parametrize("env", ENVS)
def test_trainer_pod_monitor_selects_the_pytorchjob_master_only(
    env: str, scraped: dict[str, list[dict[str, Any]]], monitoring_objects: dict[str, list[dict[str, Any]]]
) -> None:
    monitor = _monitor(monitoring_objects[env], "PodMonitor", "trainer")
    jobs = [
        # Argo fills {{...}} at run time; a placeholder keeps the YAML parseable.
        yaml.safe_load(re.sub(r"\{\{[^}]*\}\}", "placeholder", template["resource"]["manifest"]))
        for o in scraped[env]
        if o["kind"] == "WorkflowTemplate"
        for template in o["spec"]["templates"]
        if "resource" in template and "kind: PyTorchJob" in template["resource"].get("manifest", "")
    ]
    assert jobs, f"{env}: no WorkflowTemplate creates a PyTorchJob"
    for job in jobs:
        specs = job["spec"]["pytorchReplicaSpecs"]
        what = f"{env} PyTorchJob master of {job['metadata']['generateName']}"
        _check_pod_monitor(monitor, job["metadata"]["namespace"], specs["Master"]["template"], what)
        if "Worker" in specs:
            assert not _selects(
                monitor["spec"]["selector"], specs["Worker"]["template"]["metadata"]["labels"]
            )


@pytest.mark.parametrize("env", ENVS)
def test_mlflow_service_monitor_selects_the_mlflow_service(
    env: str, scraped: dict[str, list[dict[str, Any]]], monitoring_objects: dict[str, list[dict[str, Any]]]
) -> None:
    monitor = _monitor(monitoring_objects[env], "ServiceMonitor", "mlflow")
    services = [
        o
        for o in scraped[env]
        if o["kind"] == "Service"
        and o["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
        and _selects(monitor["spec"]["selector"], o["metadata"].get("labels", {}))
    ]
    assert services, f"{env}: the mlflow ServiceMonitor selects no Service"
    for service in services:
        ports = {p.get("name") for p in service["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports, (
            f"{service['metadata']['name']}: {ports}"
        )


@pytest.mark.parametrize("env", ENVS)
def test_gateway_ships_a_service_monitor_for_its_service(
    env: str, scraped: dict[str, list[dict[str, Any]]]
) -> None:
    # The gateway's ServiceMonitor lives in base/gateway; the SLO rules depend on it.
    monitors = [
        o for o in scraped[env] if o["kind"] == "ServiceMonitor" and o["metadata"]["namespace"] == "gateway"
    ]
    services = [o for o in scraped[env] if o["kind"] == "Service" and o["metadata"]["namespace"] == "gateway"]
    assert monitors, f"{env}: overlays/{env}/gateway renders no ServiceMonitor"
    for monitor in monitors:
        selected = [
            s for s in services if _selects(monitor["spec"]["selector"], s["metadata"].get("labels", {}))
        ]
        assert selected, f"{env}: ServiceMonitor {monitor['metadata']['name']} selects no gateway Service"
        ports = {p.get("name") for s in selected for p in s["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
