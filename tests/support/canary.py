"""Add a canary deployment to a copy of the repository, the way docs/adding-a-model.md (Canary) says."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

CANARY_URL = "http://{model}-canary-vllm.models.svc.cluster.local:8000"


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
        "components:\n  - ../../../../base/models/model-version\n  - ../../model-alias-sync\n"
        "  - ../../../../base/models/canary\n"
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
