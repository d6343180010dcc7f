"""Policies on every pod: resources, images, security, GPU tolerations, disk limits (MLOPS001-007, 015)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlops.validate.objects.pod_specs import Pod
from mlops.validate.objects.problems import field_path, mapping
from mlops.validate.objects.violations import EXEMPT_PREFIX, Violation

GPU_RESOURCE = "nvidia.com/gpu"

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

# Immutable tags: a full release `v1.2.3` or `1.2.3` (optionally `-rc.1`), or a 40-hex git commit.
_IMMUTABLE_TAG = re.compile(r"^(v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?|[0-9a-f]{40})$")

_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")

_SUFFIX = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}


def quantity(value: Any) -> float | None:
    """Return a Kubernetes quantity (`60Gi`, `500M`, `2`) as a number; None when it is not one."""
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIX:
        return None
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def _gib(amount: float) -> str:
    return f"{amount / 2**30:g}Gi"


def pod_ephemeral_storage_limit(pod: Pod) -> float | None:
    """Return the kubelet's pod ephemeral-storage limit: max(sum of containers', largest init container's).

    None when no container sets one (the kubelet then enforces no pod-level limit).
    """
    limits = [
        (c.init, quantity(((c.spec.get("resources") or {}).get("limits") or {}).get("ephemeral-storage")))
        for c in pod.containers
    ]
    if all(amount is None for _, amount in limits):
        return None
    app = sum(amount or 0 for init, amount in limits if not init)
    init = max((amount or 0 for is_init, amount in limits if is_init), default=0)
    return max(app, init)


def _check_ephemeral_storage(pod: Pod) -> Iterator[Violation]:
    """MLOPS015: the pod's disk-backed emptyDirs fit inside the ephemeral-storage limit of its containers.

    The kubelet sums the containers' `limits.ephemeral-storage` into one pod limit (the
    larger of the app containers' sum and the largest init container's, as
    `resourcehelper.PodLimits` computes it) and evicts the pod when its containers' writable
    layers, logs *and non-memory emptyDirs* together use more: "if the sum of the local
    ephemeral storage usage from all containers and also the Pod's emptyDir volumes exceeds
    the overall Pod storage limit, then the kubelet also marks the Pod for eviction"
    (https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
    #resource-emptydir-container; kubelet `podEphemeralStorageLimitEviction` in
    pkg/kubelet/eviction/eviction_manager.go). An emptyDir's own `sizeLimit` does not raise
    that limit, so a 60Gi weights emptyDir in a pod limited to 4Gi is evicted mid-download.
    `medium: Memory` emptyDirs count against memory instead and are left out.
    """
    limit = pod_ephemeral_storage_limit(pod)
    if limit is None:
        return
    sized = [
        (str(v.get("name")), quantity((v.get("emptyDir") or {}).get("sizeLimit")))
        for v in pod.volumes
        if isinstance(v.get("emptyDir"), dict) and (v["emptyDir"].get("medium") or "") != "Memory"
    ]
    total = sum(amount for _, amount in sized if amount)
    if total > limit:
        parts = ", ".join(f"{name} {_gib(amount)}" for name, amount in sized if amount)
        yield Violation(
            field_path([*pod.path, "volumes"]),
            f"disk-backed emptyDirs need {_gib(total)} ({parts}) but the containers' "
            f"ephemeral-storage limits allow the pod {_gib(limit)}: the kubelet evicts it when they fill",
            "MLOPS015",
        )


def image_problem(image: str, env: str, *, templated: bool = False) -> tuple[str, str] | None:
    """Return (policy id, message) when `image` breaks MLOPS002/003, else None.

    In a workflow (`templated`), a tag that is wholly an Argo expression such as
    `{{workflow.parameters.git-commit}}` is set at run time (the training workflow passes
    the commit it built), so MLOPS003 cannot judge it, nor `wf-{{...}}`, the tag the
    workflow's own builds push (MLOPS110); `:latest` is still refused. So is a digest that
    is wholly an Argo expression (`@{{inputs.parameters.image-digest}}`): the workflow looks
    the digest up in ECR when it runs.
    """
    if _DIGEST.search(image):
        return None
    if templated and re.search(r"@\{\{[^{}]+\}\}$", image):
        return None
    name = image.rsplit("/", 1)[-1]
    tag = name.split(":", 1)[1] if ":" in name else ""
    if not tag:
        return "MLOPS002", f'image "{image}" has no tag'
    if tag == "latest":
        return "MLOPS002", f'image "{image}" uses :latest'
    if templated and re.fullmatch(r"(?:wf-)?\{\{[^{}]+\}\}", tag):
        return None
    if env == "prod" and not _IMMUTABLE_TAG.match(tag):
        return "MLOPS003", f'prod image "{image}" is not pinned (tag "{tag}" may move)'
    return None


def check_pod(pod: Pod, env: str, templated: bool) -> Iterator[Violation]:
    """MLOPS001-007 and MLOPS015 on one pod; `templated`: its images may carry Argo expressions."""
    exempt = {
        key[len(EXEMPT_PREFIX) :].upper()
        for key, value in pod.annotations.items()
        if key.startswith(EXEMPT_PREFIX) and str(value).strip()
    }
    pod_sc = pod.security_context
    gpu = False
    for container in pod.containers:
        spec, path = container.spec, container.path
        resources = mapping(spec, "resources")
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        missing = [f"requests.{r}" for r in ("cpu", "memory") if r not in requests]
        missing += [f"limits.{r}" for r in ("memory",) if r not in limits]
        if missing:
            yield Violation(
                field_path([*path, "resources"]), f"container has no {', '.join(missing)}", "MLOPS001"
            )
        if GPU_RESOURCE in requests or GPU_RESOURCE in limits:
            gpu = True
        image = spec.get("image")
        if isinstance(image, str) and (problem := image_problem(image, env, templated=templated)):
            yield Violation(field_path([*path, "image"]), problem[1], problem[0])
        sc = mapping(spec, "securityContext")
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True and "MLOPS004" not in exempt:
            yield Violation(
                field_path([*path, "securityContext", "runAsNonRoot"]),
                "container may run as root",
                "MLOPS004",
            )
        if sc.get("readOnlyRootFilesystem") is not True and "MLOPS005" not in exempt:
            yield Violation(
                field_path([*path, "securityContext", "readOnlyRootFilesystem"]),
                "root filesystem is writable",
                "MLOPS005",
            )
        drop = ((sc.get("capabilities") or {}).get("drop")) or []
        if "ALL" not in drop and "MLOPS006" not in exempt:
            yield Violation(
                field_path([*path, "securityContext", "capabilities", "drop"]),
                "capabilities are not dropped (ALL)",
                "MLOPS006",
            )
    yield from _check_ephemeral_storage(pod)
    if gpu and not any(_tolerates_gpu(t) for t in pod.tolerations):
        yield Violation(
            field_path([*pod.path, "tolerations"]),
            "pod requests nvidia.com/gpu but does not tolerate the nvidia.com/gpu NoSchedule taint",
            "MLOPS007",
        )


def _tolerates_gpu(toleration: Any) -> bool:
    if not isinstance(toleration, dict):
        return False
    key_ok = toleration.get("key") == GPU_RESOURCE or (
        not toleration.get("key") and toleration.get("operator") == "Exists"
    )
    return key_ok and toleration.get("effect") in (None, "", "NoSchedule")
