"""The rendered gateway of each environment: its routes parse, and point at Services that exist."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from gateway.routes import parse_routes
from mlops.conventions.paths import ENVS
from mlops.rendering.render import render_kustomization


def _services(objects: list[dict]) -> set[tuple[str, str, int]]:
    return {
        (o["metadata"]["name"], o["metadata"].get("namespace", ""), p["port"])
        for o in objects
        if o["kind"] == "Service"
        for p in o["spec"]["ports"]
    }


@pytest.mark.parametrize("env", ENVS)
def test_routes_point_at_rendered_model_services(repo_root: Path, env: str) -> None:
    gateway = render_kustomization(repo_root, f"overlays/{env}/gateway")
    config_map = next(
        o for o in gateway if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "gateway-routes"
    )
    routes = parse_routes(
        yaml.safe_load(config_map["data"]["routes.yaml"]), f"overlays/{env}/gateway/routes.yaml"
    )

    models_dir = repo_root / "overlays" / env / "models"
    services: set[tuple[str, str, int]] = set()
    for overlay in sorted(p for p in models_dir.iterdir() if (p / "kustomization.yaml").exists()):
        services |= _services(render_kustomization(repo_root, overlay))
    for model, route in routes.items():
        for backend in route.backends:
            url = urlsplit(backend.url)
            name, namespace = (url.hostname or "").split(".")[:2]
            assert (name, namespace, url.port) in services, (
                f"overlays/{env}/gateway/routes.yaml: models.{model}.backends.{backend.name}.url "
                f"{backend.url} is no Service rendered under overlays/{env}/models/"
            )


@pytest.mark.parametrize("env", ENVS)
def test_gateway_pods_mount_the_rendered_routes_and_keys(repo_root: Path, env: str) -> None:
    objects = {
        (o["kind"], o["metadata"]["name"]): o
        for o in render_kustomization(repo_root, f"overlays/{env}/gateway")
    }
    pod = objects[("Deployment", "gateway")]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert ("ConfigMap", volumes["routes"]["configMap"]["name"]) in objects
    secret = objects[("ExternalSecret", volumes["api-keys"]["secret"]["secretName"])]
    assert secret["spec"]["data"][0]["remoteRef"]["key"] == f"mlops/{env}/gateway-api-keys"
    env_vars = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert env_vars["GATEWAY_ROUTES_FILE"] == mounts["routes"] + "/routes.yaml"
    assert (
        env_vars["GATEWAY_API_KEYS_FILE"] == mounts["api-keys"] + "/" + secret["spec"]["data"][0]["secretKey"]
    )


@pytest.mark.parametrize("env", ENVS)
def test_gateway_runs_one_worker_per_cpu_of_its_limit(repo_root: Path, env: str) -> None:
    objects = render_kustomization(repo_root, f"overlays/{env}/gateway")
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "gateway")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    workers = next(e for e in container["env"] if e["name"] == "GATEWAY_WORKERS")
    assert workers["valueFrom"]["resourceFieldRef"] == {
        "containerName": container["name"],
        "resource": "limits.cpu",
    }
    # Without a CPU limit the downward API hands over the node's allocatable CPUs: dozens of workers.
    assert container["resources"]["limits"]["cpu"]
