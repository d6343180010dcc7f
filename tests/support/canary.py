"""Canaries in tests: add a canary deployment to a copy of the repository (docs/adding-a-model.md,
Canary), and start the real processes canary analysis reads from (gateway, backends, Prometheus)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from support.servers import free_port

CANARY_URL = "http://{model}-canary-vllm.models.svc.cluster.local:8000"
# `gateway` is an installed package; `support.fixed_backend` lives in tests/.
TESTS = Path(__file__).resolve().parents[1]


def add_canary(
    repo: Path, env: str, version: str, weights_uri: str, *, weight: int = 10, model: str = "support-chat"
) -> list[str]:
    """Create `overlays/<env>/models/<model>-canary/` and route `weight`% of `model` to it.

    Returns the paths written, relative to `repo`.
    """
    stable_dir = repo / "overlays" / env / "models" / model
    canary = f"{model}-canary"
    folder = stable_dir.parent / canary
    folder.mkdir()
    # Same serving args and GPUs as the stable deployment; at most one replica.
    for name in ("serving-args.yaml", "resources.yaml"):
        shutil.copy2(stable_dir / name, folder / name)
    (folder / "autoscaling.yaml").write_text(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: vllm\n"
        "spec:\n  minReplicaCount: 1\n  maxReplicaCount: 1\n"
    )
    (folder / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"namePrefix: {canary}-\n"
        "resources:\n  - ../../../../base/models/vllm\n  - model-version.yaml\n"
        "components:\n  - ../../../../base/models/components/model-version\n  - ../../model-alias-sync\n"
        "  - ../../../../base/models/components/canary\n"
        "patches:\n  - path: serving-args.yaml\n  - path: resources.yaml\n  - path: autoscaling.yaml\n"
    )
    (folder / "model-version.yaml").write_text(
        "# The model version this environment serves. Edited by `mlops promote` / `mlops rollback`.\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: model-version\n"
        f'data:\n  model: {model}\n  version: "{version}"                # MLflow registered model version\n'
        f"  weightsUri: {weights_uri}   # where the HF-format weights are\n"
    )
    routes_file = repo / "overlays" / env / "gateway" / "routes.yaml"
    routes = yaml.safe_load(routes_file.read_text())
    backends = routes["models"][model]["backends"]
    backends["stable"]["weight"] = 100 - weight
    backends["canary"] = {"url": CANARY_URL.format(model=model), "weight": weight}
    routes_file.write_text(yaml.safe_dump(routes, sort_keys=False))
    base = f"overlays/{env}/models/{canary}"
    return [
        *(f"{base}/{name}" for name in sorted(p.name for p in folder.iterdir())),
        f"overlays/{env}/gateway/routes.yaml",
    ]


def start_process(
    module: str, args: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `python -m module args` (gateway code) on a free port; wait for /health; return it, its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args, "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(TESTS), **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{module} exited with {process.returncode} before answering")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{module} did not answer /health within 60 s")


@contextlib.contextmanager
def start_prometheus(tmp: Path, targets: list[str], interval: str = "1s") -> Iterator[str]:
    """A real Prometheus (Debian's binary) scraping `targets` (host:port) every `interval`; yields its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is not installed (Debian package prometheus)")
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": interval, "evaluation_interval": interval},
                "scrape_configs": [{"job_name": "gateway", "static_configs": [{"targets": targets}]}],
            }
        )
    )
    log = (tmp / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with {process.returncode}: see {tmp / 'prometheus.log'}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus was not ready within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
