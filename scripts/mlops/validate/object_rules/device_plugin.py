"""MLOPS013: an environment whose pods request `nvidia.com/gpu` installs something that advertises it.

`nvidia.com/gpu` is an extended resource: a node has it only when a device plugin registers
it with the kubelet ("Kubernetes ... implements device plugins to let Pods access
specialized hardware features such as GPUs"; the vendor's plugin must be deployed,
https://kubernetes.io/docs/tasks/manage-gpus/scheduling-gpus/). The EKS-optimized AL2023
NVIDIA AMIs bring the driver and the container toolkit but not the plugin ("you must ...
install the NVIDIA device plugin for Kubernetes",
https://docs.aws.amazon.com/eks/latest/userguide/ml-eks-optimized-ami.html), so without it
every GPU pod stays Pending while Karpenter keeps launching GPU nodes for it. Accepted: an
Application of the NVIDIA charts `nvidia-device-plugin`
(https://github.com/NVIDIA/k8s-device-plugin, deployments/helm/nvidia-device-plugin) or
`gpu-operator`, or a rendered DaemonSet running the `k8s-device-plugin` image.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from mlops.rendering.render import RenderedKustomization
from mlops.validate.object_rules.pod_policies import GPU_RESOURCE
from mlops.validate.objects import appsets
from mlops.validate.objects.env_objects import env_view
from mlops.validate.objects.pod_specs import pods
from mlops.validate.objects.problems import Problem
from mlops.validate.objects.violations import HINTS
from mlops.validate.objects.workloads import rendered_pods

DEVICE_PLUGIN_CHARTS = ("nvidia-device-plugin", "gpu-operator")
DEVICE_PLUGIN_IMAGE = "k8s-device-plugin"


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """Report each GPU pod of `env` when nothing in `env` installs an NVIDIA device plugin."""
    if _installs_device_plugin(repo, env, rendered):
        return
    for found in rendered_pods(rendered):
        for container in found.pod.containers:
            resources = container.spec.get("resources") or {}
            if any(GPU_RESOURCE in (resources.get(k) or {}) for k in ("requests", "limits")):
                yield Problem(
                    found.file,
                    found.resource,
                    found.field(*container.path[len(found.pod.path) :], "resources"),
                    f"requests {GPU_RESOURCE} but clusters/{env} installs no NVIDIA device plugin "
                    f"({' or '.join(DEVICE_PLUGIN_CHARTS)} chart, or a {DEVICE_PLUGIN_IMAGE} DaemonSet): "
                    f"no node advertises {GPU_RESOURCE} and the pod stays Pending",
                    "MLOPS013",
                    HINTS["MLOPS013"],
                )
                break


def _installs_device_plugin(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> bool:
    for _file, app in env_view(repo, env, rendered).applications:
        if any(chart in DEVICE_PLUGIN_CHARTS for chart in appsets.helm_charts(app)):
            return True
    return any(
        DEVICE_PLUGIN_IMAGE in str(container.spec.get("image", ""))
        for result in rendered
        for doc in result.documents
        if isinstance(doc, dict) and doc.get("kind") == "DaemonSet"
        for pod in pods(doc)
        for container in pod.containers
    )
