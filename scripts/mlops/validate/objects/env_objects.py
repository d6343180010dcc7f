"""What an environment's cluster would hold: every rendered object, its Application, its namespace.

The reference, ownership and model checks (`references`, `ownership`, `model_versions`) judge
an environment as a whole, all kustomizations together, the way the cluster sees them once
Argo CD has synced every Application. This module builds that view once per environment:

    view = env_view(repo, env, rendered)
    view.objects        # [EnvObject]: file, document, group, kind, namespace, name, owner
    view.applications   # [(file, Application)] as the ApplicationSets generate them

An object without `metadata.namespace` of a namespaced kind lands in its Application's
`spec.destination.namespace`, and a cluster-scoped one loses any namespace, as Argo CD
normalizes its target objects (argoproj/argo-cd `controller/state.go`, NormalizeTargetObjects).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects import appsets
from mlops.validate.objects.problems import mapping, resource_name

CLUSTER_SCOPED_KINDS = frozenset(
    {
        # core and built-in API groups
        "Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding",
        "CustomResourceDefinition", "PriorityClass", "IngressClass", "RuntimeClass", "CSIDriver",
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
        # the add-ons' CRDs whose `scope` is Cluster (scripts/mlops/crd_schemas)
        "NodePool", "NodeClaim", "EC2NodeClass", "ClusterSecretStore", "ClusterExternalSecret",
        "ClusterWorkflowTemplate", "ClusterTriggerAuthentication", "IngressClassParams",
    }
)  # fmt: skip
"""Kinds that have no namespace: Argo CD gives them none, and selectors never reach them."""


@dataclass(frozen=True)
class EnvObject:
    """One object the environment's cluster would hold, and where it was rendered."""

    file: str
    document: dict[str, Any] = field(repr=False, hash=False, compare=False)
    group: str
    kind: str
    namespace: str
    """"" for cluster-scoped kinds."""
    name: str

    @property
    def resource(self) -> str:
        """`Kind/name`, as problem lines print it."""
        return resource_name(self.document)

    @property
    def labels(self) -> dict[str, Any]:
        """`metadata.labels` (empty when absent)."""
        return mapping(mapping(self.document, "metadata"), "labels")


@dataclass
class EnvView:
    """An environment as its cluster would hold it (see the module docstring)."""

    env: str
    objects: list[EnvObject]
    applications: list[tuple[str, dict[str, Any]]]
    folder_apps: dict[str, list[dict[str, Any]]]
    """Rendered folder -> the Applications whose source path is that folder."""

    def find(self, kind: str, namespace: str, name: str) -> EnvObject | None:
        """Return the object of `kind` named `name` in `namespace` ("" for cluster-scoped), if rendered."""
        return self._index().get((kind, namespace, name))

    def of_kind(self, *kinds: str) -> list[EnvObject]:
        """Every object of one of `kinds`."""
        return [o for o in self.objects if o.kind in kinds]

    def _index(self) -> dict[tuple[str, str, str], EnvObject]:
        if not hasattr(self, "_by_key"):
            self._by_key = {(o.kind, o.namespace, o.name): o for o in reversed(self.objects)}
        return self._by_key


_CACHE: list[tuple[object, str, EnvView]] = []


def env_view(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> EnvView:
    """Return `env`'s view; built once per `rendered` sequence (every environment-wide check shares it)."""
    for key, cached_env, view in _CACHE:
        if key is rendered and cached_env == env:
            return view
    view = _build(repo, env, rendered)
    _CACHE[:] = [(rendered, env, view)]
    return view


def group_of(doc: dict[str, Any]) -> str:
    """The API group of a manifest (`apps` of `apps/v1`; "" for the core group `v1`)."""
    api_version = str(doc.get("apiVersion") or "")
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def destination_namespace(app: dict[str, Any]) -> str:
    """An Application's `spec.destination.namespace` ("" when unset)."""
    return str(mapping(mapping(app, "spec"), "destination").get("namespace") or "")


def source_folders(app: dict[str, Any]) -> list[str]:
    """The repository folders an Application renders (`source.path`, `sources[].path`; charts excluded)."""
    spec = mapping(app, "spec")
    sources = [spec.get("source"), *(spec.get("sources") or [])]
    return [
        str(Path(str(s["path"]).strip("/") or "."))
        for s in sources
        if isinstance(s, dict) and s.get("path") is not None and not s.get("chart")
    ]


def _build(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> EnvView:
    applications = appsets.generated_applications(repo, env, rendered)
    folder_apps: dict[str, list[dict[str, Any]]] = {}
    for _file, app in applications:
        for folder in source_folders(app):
            folder_apps.setdefault(folder, []).append(app)
    objects = []
    for result in rendered:
        if result.env != env:
            continue
        apps = folder_apps.get(result.path) or []
        default_ns = destination_namespace(apps[0]) if apps else ""
        for doc in result.documents:
            if not isinstance(doc, dict):
                continue
            meta = mapping(doc, "metadata")
            kind = str(doc.get("kind") or "")
            namespace = "" if kind in CLUSTER_SCOPED_KINDS else str(meta.get("namespace") or default_ns)
            objects.append(
                EnvObject(result.path, doc, group_of(doc), kind, namespace, str(meta.get("name") or ""))
            )
    return EnvView(env, objects, applications, folder_apps)
