"""vLLM answers only the holder of the backend key, and only the gateway holds it (docs/security.md).

The rendered manifests wire one Secrets Manager secret into vLLM's `--api-key` (namespace
models) and the gateway's key file (namespace gateway); a vLLM started the way the demo starts
it refuses a client without the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from mlops.local.local_servers import free_port
from mlops.local.local_vllm import serve
from mlops.rendering.render import render_kustomization
from mlops.rendering.vllm_args import deployment_args, local_args, vllm_container
from support.vllm_servers import dev_args

KEY_FILE = "/etc/gateway/backend-key/key"


def _objects(repo: Path, folder: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in render_kustomization(repo, folder)}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_vllm_takes_its_key_from_the_models_secret(repo_root: Path, env: str) -> None:
    deployment = _objects(repo_root, f"overlays/{env}/models/support-chat")[
        ("Deployment", "support-chat-vllm")
    ]
    container = vllm_container(deployment)
    assert "--api-key=$(VLLM_API_KEY)" in container["args"]
    (variable,) = [v for v in container["env"] if v["name"] == "VLLM_API_KEY"]
    reference = variable["valueFrom"]["secretKeyRef"]
    platform = _objects(repo_root, f"overlays/{env}/platform")
    secret = platform[("ExternalSecret", reference["name"])]
    assert secret["metadata"]["namespace"] == deployment["metadata"]["namespace"] == "models"
    (data,) = secret["spec"]["data"]
    assert data["secretKey"] == reference["key"]
    assert data["remoteRef"]["key"] == f"mlops/{env}/vllm-api-key"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_gateway_mounts_the_same_key(repo_root: Path, env: str) -> None:
    objects = _objects(repo_root, f"overlays/{env}/gateway")
    pod = objects[("Deployment", "gateway")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    variables = {v["name"]: v.get("value") for v in container["env"]}
    assert variables["GATEWAY_BACKEND_API_KEY_FILE"] == KEY_FILE
    (mount,) = [m for m in container["volumeMounts"] if KEY_FILE.startswith(m["mountPath"] + "/")]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret = objects[("ExternalSecret", volume["secret"]["secretName"])]
    (data,) = secret["spec"]["data"]
    assert KEY_FILE == f"{mount['mountPath']}/{data['secretKey']}"
    assert data["remoteRef"]["key"] == f"mlops/{env}/vllm-api-key"


def test_a_local_run_keeps_the_key_off_the_command_line(repo_root: Path) -> None:
    (deployment,) = [
        d
        for d in render_kustomization(repo_root, "overlays/dev/models/support-chat")
        if d["kind"] == "Deployment"
    ]
    args = local_args(deployment_args(deployment), Path("/weights"), port=8001)
    assert not [a for a in args if a.startswith("--api-key")]
    assert args[0] == "/weights" and "--port=8001" in args


@pytest.mark.slow
def test_vllm_refuses_a_client_without_the_key(
    repo_root: Path, trained_model_dir: Path, tmp_path: Path
) -> None:
    args, _version = dev_args()
    key = "backend-key-for-this-test"
    argv = local_args(args, trained_model_dir, port=free_port())
    with serve(repo_root, argv, tmp_path / "vllm.log", env={"VLLM_API_KEY": key}, timeout=600) as server:
        assert httpx.get(f"{server.url}/v1/models", timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer not-the-key"}
        assert httpx.get(f"{server.url}/v1/models", headers=wrong, timeout=10).status_code == 401
        chat = {"model": "support-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
        assert httpx.post(f"{server.url}/v1/chat/completions", json=chat, timeout=30).status_code == 401
        right = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{server.url}/v1/models", headers=right, timeout=10).status_code == 200
        # probes and Prometheus need no key
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 200
