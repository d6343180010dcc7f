"""Every pod a manifest makes: a workload's template, a PyTorchJob replica, an Argo container template."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mlops.validate.objects.problems import mapping

_WORKLOAD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

ARGO_WORKFLOW_KINDS = {"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"}


@dataclass
class Container:
    """One container (init containers too) of a `Pod`, with the field path it was found at."""

    path: list[Any]
    spec: dict[str, Any]

    @property
    def init(self) -> bool:
        """Whether it is an init container (its limits do not add up with the others')."""
        return "initContainers" in self.path


@dataclass
class Pod:
    """A pod as a policy sees it, wherever it is written (Deployment, Argo template, PyTorchJob)."""

    path: list[Any]
    security_context: dict[str, Any]
    tolerations: list[Any]
    annotations: dict[str, Any]
    containers: list[Container]
    volumes: list[dict[str, Any]] = field(default_factory=list)
    service_account: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    """The labels its pods get (the template's `metadata.labels`): what selectors match."""


def pods(doc: dict[str, Any]) -> Iterator[Pod]:
    """Every pod `doc` makes: a workload's template, each PyTorchJob replica, each Argo container template."""
    kind = doc.get("kind")
    meta_annotations = annotations_of(doc)
    if kind == "Pod":
        yield _pod_from_spec([], doc.get("spec") or {}, meta_annotations, labels_of(doc))
    elif kind in _WORKLOAD_TEMPLATE_PATHS:
        template: Any = doc
        for key in _WORKLOAD_TEMPLATE_PATHS[kind]:
            template = (template or {}).get(key) if isinstance(template, dict) else None
        if isinstance(template, dict):
            path = list(_WORKLOAD_TEMPLATE_PATHS[kind])
            yield _pod_from_spec(
                [*path, "spec"],
                template.get("spec") or {},
                {**meta_annotations, **annotations_of(template)},
                labels_of(template),
            )
    elif kind == "PyTorchJob":
        replicas = (doc.get("spec") or {}).get("pytorchReplicaSpecs") or {}
        for role, replica in replicas.items():
            template = (replica or {}).get("template") or {}
            yield _pod_from_spec(
                ["spec", "pytorchReplicaSpecs", role, "template", "spec"],
                template.get("spec") or {},
                {**meta_annotations, **annotations_of(template)},
                labels_of(template),
            )
    elif kind in ARGO_WORKFLOW_KINDS:
        yield from _argo_pods(doc, meta_annotations)


def _argo_pods(doc: dict[str, Any], annotations: dict[str, Any]) -> Iterator[Pod]:
    spec = doc.get("spec") or {}
    prefix = ["spec"]
    if doc.get("kind") == "CronWorkflow":
        spec, prefix = spec.get("workflowSpec") or {}, ["spec", "workflowSpec"]
    workflow_sc = spec.get("securityContext") or {}
    workflow_tolerations = spec.get("tolerations") or []
    workflow_volumes = spec.get("volumes") or []
    pod_annotations = {**annotations, **((spec.get("podMetadata") or {}).get("annotations") or {})}
    pod_labels = (spec.get("podMetadata") or {}).get("labels") or {}
    for index, template in enumerate(spec.get("templates") or []):
        if not isinstance(template, dict):
            continue
        path = [*prefix, "templates", index]
        containers = []
        for key in ("container", "script"):
            if isinstance(template.get(key), dict):
                containers.append(Container([*path, key], template[key]))
        for key in ("initContainers", "sidecars"):
            for i, c in enumerate(template.get(key) or []):
                containers.append(Container([*path, key, i], c))
        for i, c in enumerate((template.get("containerSet") or {}).get("containers") or []):
            containers.append(Container([*path, "containerSet", "containers", i], c))
        if not containers:
            continue  # steps, dag, resource, suspend: no pod of ours
        mounted = {
            m.get("name")
            for c in containers
            for m in (c.spec.get("volumeMounts") or [])
            if isinstance(m, dict)
        }
        yield Pod(
            path=path,
            security_context={**workflow_sc, **(template.get("securityContext") or {})},
            tolerations=[*workflow_tolerations, *(template.get("tolerations") or [])],
            annotations={**pod_annotations, **((template.get("metadata") or {}).get("annotations") or {})},
            containers=containers,
            # Argo adds the workflow's volumes to a pod that mounts them, beside the template's own.
            volumes=[
                *(v for v in workflow_volumes if isinstance(v, dict) and v.get("name") in mounted),
                *(v for v in template.get("volumes") or [] if isinstance(v, dict)),
            ],
            service_account=template.get("serviceAccountName") or spec.get("serviceAccountName"),
            labels={**pod_labels, **((template.get("metadata") or {}).get("labels") or {})},
        )


def _pod_from_spec(
    path: list[Any], spec: dict[str, Any], annotations: dict[str, Any], labels: dict[str, Any]
) -> Pod:
    containers = [
        Container([*path, key, i], c)
        for key in ("initContainers", "containers")
        for i, c in enumerate(spec.get(key) or [])
        if isinstance(c, dict)
    ]
    return Pod(
        path=path,
        security_context=spec.get("securityContext") or {},
        tolerations=spec.get("tolerations") or [],
        annotations=annotations,
        containers=containers,
        volumes=[v for v in spec.get("volumes") or [] if isinstance(v, dict)],
        service_account=spec.get("serviceAccountName"),
        labels=labels,
    )


def annotations_of(obj: dict[str, Any]) -> dict[str, Any]:
    """Return `metadata.annotations` of an object or pod template (empty when absent or malformed)."""
    meta = mapping(obj, "metadata")
    annotations = meta.get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def labels_of(obj: dict[str, Any]) -> dict[str, Any]:
    """Return `metadata.labels` of an object or pod template (empty when absent or malformed)."""
    labels = mapping(obj, "metadata").get("labels")
    return labels if isinstance(labels, dict) else {}
