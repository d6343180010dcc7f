"""Canaries in tests: add a canary deployment to a copy of the repository (docs/adding-a-model.md,
Canary), and start the real processes canary analysis reads from (gateway, backends, Prometheus)."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlops.canary.canary_metrics import GATEWAY_JOB, GATEWAY_NAMESPACE
from mlops.local.local_servers import LocalServer, free_port, running, start, wait_ready

CANARY_URL = "http://{model}-canary-vllm.models.svc.cluster.local:8000"


def add_canary(
    repo: Path,
    env: str,
    version: str,
    weights_uri: str,
    *,
    weight: int = 10,
    model: str = "support-chat",
    weights_digest: str | None = None,
) -> list[str]:
    """Create `overlays/<env>/models/<model>-canary/` and route `weight`% of `model` to it.

    `weights_digest` defaults to `none` when the folder takes the stable one's bootstrap
    component (nothing served), else to a well-formed digest of no real weights.

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
        "  - ../../pull-through-cache\n"
        "  - ../../../../base/models/components/canary\n"
        # The stable folder's optional components too: a canary differs only in version (MLOPS075).
        + "".join(f"  - {c}\n" for c in _optional_components(stable_dir))
        + "patches:\n  - path: serving-args.yaml\n  - path: resources.yaml\n  - path: autoscaling.yaml\n"
    )
    (folder / "model-version.yaml").write_text(
        "# The model version this environment serves. Edited by `mlops promote` / `mlops rollback`.\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: model-version\n"
        f'data:\n  model: {model}\n  version: "{version}"                # MLflow registered model version\n'
        f"  weightsUri: {weights_uri}   # where the HF-format weights are\n"
        f"  weightsDigest: {weights_digest or _default_digest(stable_dir)}\n"
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


def _default_digest(stable_dir: Path) -> str:
    bootstrapping = any(c.endswith("/bootstrap") for c in _optional_components(stable_dir))
    return "none" if bootstrapping else "sha256:" + "c" * 64


def _optional_components(stable_dir: Path) -> list[str]:
    """The stable folder's components beyond model-version and the alias-sync hook."""
    listed = yaml.safe_load((stable_dir / "kustomization.yaml").read_text()).get("components") or []
    return [c for c in listed if not c.endswith(("/model-version", "/model-alias-sync"))]


FIXED_BACKEND = [sys.executable, str(Path(__file__).with_name("fixed_backend.py"))]
"""The fake model server the canary tests put behind the gateway (a script: it imports nothing of ours)."""
GATEWAY = [sys.executable, "-m", "gateway"]


def start_process(command: list[str], args: list[str], env: dict[str, str] | None = None) -> LocalServer:
    """Start `command args` on a free port and wait for /health; the caller stops it."""
    port = free_port()
    server = start(
        [*command, *args, "--host", "127.0.0.1", "--port", str(port)],
        url=f"http://127.0.0.1:{port}",
        name=Path(command[-1]).stem,
        env=env,
    )
    wait_ready(server, "/health", timeout=60, interval=0.05)
    return server


@contextlib.contextmanager
def start_prometheus(
    tmp: Path,
    targets: list[str],
    interval: str = "1s",
    others: list[str] | None = None,
    other_scrape: dict[str, Any] | None = None,
) -> Iterator[str]:
    """A real Prometheus (Debian's binary) scraping `targets` (host:port) every `interval`; yields its URL.

    `targets` get the gateway's target labels (job and namespace, as prometheus-operator gives
    them from base/gateway's ServiceMonitor); `others` are scraped as another pod's job in
    namespace `models`, where a forged gateway_* series would come from; `other_scrape` adds
    scrape-config keys to their job (`honor_labels`, `metric_relabel_configs`).
    """
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is not installed (Debian package prometheus)")
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": interval, "evaluation_interval": interval},
                "scrape_configs": [
                    {
                        "job_name": GATEWAY_JOB,
                        "static_configs": [{"targets": targets, "labels": {"namespace": GATEWAY_NAMESPACE}}],
                    },
                    *(
                        [
                            {
                                "job_name": "other",
                                "static_configs": [{"targets": others, "labels": {"namespace": "models"}}],
                                **(other_scrape or {}),
                            }
                        ]
                        if others
                        else []
                    ),
                ],
            }
        )
    )
    with running(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        url=f"http://127.0.0.1:{port}", ready_path="/-/ready", timeout=60, name="prometheus",
        log=tmp / "prometheus.log",
    ) as server:  # fmt: skip
        yield server.url
