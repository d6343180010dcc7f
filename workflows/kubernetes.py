"""Kubernetes pieces every workflow step shares: security contexts, resources, GPU placement.

Each piece that also goes into a raw manifest (the PyTorchJob's pod template) is defined
once as the plain dict Kubernetes reads, in the order the manifest prints it; the Hera
model the steps use is validated from that same dict, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from hera.workflows import models as m

from . import container_images as images

NAMESPACE = "argo"
"""Where the workflows, their step pods and the PyTorchJob run."""
MLFLOW_TRACKING_URI = "http://mlflow.mlflow.svc.cluster.local:5000"
GIT_TOKEN_SECRET = "git-bot-token"
"""Kubernetes Secret made by the ExternalSecret from Secrets Manager `mlops/<env>/git-bot-token`."""
MLFLOW_TRAINER_SECRET = "mlflow-trainer"
"""MLflow login of the trainer identity (runs, versions, gate tags): `mlops/<env>/mlflow-trainer`."""
MLFLOW_GIT_BOT_SECRET = "mlflow-git-bot"
"""MLflow login of the promotion identity (environment aliases): `mlops/<env>/mlflow-git-bot`."""


def mlflow_login_manifest(secret: str) -> list[dict[str, Any]]:
    """The variables MLflow's client logs in with, from `secret`'s `username` and `password` keys."""
    keys = (("MLFLOW_TRACKING_USERNAME", "username"), ("MLFLOW_TRACKING_PASSWORD", "password"))
    return [{"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}} for name, key in keys]


def mlflow_login(secret: str) -> list[m.EnvVar]:
    """`mlflow_login_manifest` as the Hera models the steps use."""
    return [m.EnvVar.model_validate(env) for env in mlflow_login_manifest(secret)]


GPU_NODEPOOL = "gpu"
GPU_TOLERATION = m.Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")

TMP_MOUNT = m.VolumeMount(name="tmp", mount_path="/tmp")
"""The workflow's `tmp` emptyDir: every root filesystem is read-only, tools still write /tmp."""

IMAGE_UID = 10001
"""The user images/trainer and images/git-bot create (`useradd --uid 10001`) and run as.
Their pods run as it too: another UID has no passwd entry or home there (MLOPS014)."""

_RESTRICTED: dict[str, Any] = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
_IMAGE_USER: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": IMAGE_UID,
    "runAsGroup": IMAGE_UID,
    "fsGroup": IMAGE_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def restricted_manifest() -> dict[str, Any]:
    """Container security context of every step that does not need root, as a manifest's dict."""
    return copy.deepcopy(_RESTRICTED)


def restricted() -> m.SecurityContext:
    """Container security context of every step that does not need root."""
    return m.SecurityContext.model_validate(restricted_manifest())


def image_user_manifest() -> dict[str, Any]:
    """Pod security context of a pod that runs an image built here, as a manifest's dict."""
    return copy.deepcopy(_IMAGE_USER)


def image_user() -> m.PodSecurityContext:
    """Pod security context of a step that runs an image built here: the image's own user."""
    return m.PodSecurityContext.model_validate(image_user_manifest())


def requests_equal_limits(amounts: Mapping[str, Any]) -> dict[str, Any]:
    """Resources with requests equal to limits, as a manifest's dict: steps are sized, not bursting."""
    return {"requests": dict(amounts), "limits": dict(amounts)}


def resources(cpu: str, memory: str, gpus: str | None = None) -> m.ResourceRequirements:
    """Requests equal to limits: steps are sized, not bursting."""
    amounts = {"cpu": cpu, "memory": memory, **({"nvidia.com/gpu": gpus} if gpus else {})}
    return m.ResourceRequirements.model_validate(requests_equal_limits(amounts))


def gpu_affinity() -> m.Affinity:
    """Schedule onto the GPU NodePool that Karpenter provisions (base/karpenter)."""
    term = m.NodeSelectorTerm(
        match_expressions=[
            m.NodeSelectorRequirement(key="karpenter.sh/nodepool", operator="In", values=[GPU_NODEPOOL])
        ]
    )
    return m.Affinity(
        node_affinity=m.NodeAffinity(
            required_during_scheduling_ignored_during_execution=m.NodeSelector(node_selector_terms=[term])
        )
    )


IN_CLUSTER_TAG_PREFIX = "wf-"
"""Tags the in-cluster builds push start with this; CI pushes only a 40-hex commit or X.Y.Z.

ECR tags are immutable, so two producers writing the same tag make the second push fail
(ImageTagAlreadyExistsException); apart, CI and the workflow can build the same commit
at once. `mlops validate` (MLOPS110) checks that the two schemes never meet."""


def built_tag(commit: str) -> str:
    """The tag an in-cluster build of `commit` pushes: `wf-<commit>`."""
    return f"{IN_CLUSTER_TAG_PREFIX}{commit}"


def image_ref(registry: str, image: images.RepositoryImage, commit: str) -> str:
    """The reference of an image of this repository built in the cluster: `<registry>/<repo>:wf-<commit>`."""
    return f"{registry}/{image.repository}:{built_tag(commit)}"
