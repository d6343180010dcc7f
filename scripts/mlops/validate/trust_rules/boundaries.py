"""MLOPS081-083: stores serve named namespaces, ML projects hold no boundary kinds, privileged namespaces.

- MLOPS081: every ClusterSecretStore has `spec.conditions` naming exactly one namespace in
  `namespaces` (no `namespaceSelector`, no `namespaceRegexes`: a namespace's labels and name
  are chosen by whoever creates it; two namespaces on one store share every key its role
  reads), every rendered ExternalSecret that reads a ClusterSecretStore sits in the namespace
  it serves, and reads only keys terraform's reader role of that namespace may read
  (`secret_readers` in terraform/modules/workload-roles, the role `provider.aws.role` names).
  Without conditions a ClusterSecretStore serves ExternalSecrets in every namespace; with them
  the controller refuses the others ("Used to constrain a ClusterSecretStore to specific
  namespaces", external-secrets v2.9.0 CRD `external-secrets.io_clustersecretstores.yaml`,
  `spec.conditions`; `provider.aws.role`: "Role is a Role ARN which the provider will
  assume"; https://external-secrets.io/latest/api/clustersecretstore/).
- MLOPS082: an AppProject that is not a platform project (`platform`, `platform-*`)
  whitelists no RBAC kind (`rbac.authorization.k8s.io`), no NetworkPolicy, no SecretStore or
  ClusterSecretStore, and no `*`; and the project model folders (`overlays/<env>/models/*`)
  deploy through whitelists no ExternalSecret. Argo CD syncs any kind a project's
  `namespaceResourceWhitelist`/`clusterResourceWhitelist` lists into its destinations
  (https://argo-cd.readthedocs.io/en/stable/user-guide/projects/), so a pull request to one
  of its folders could grant itself RBAC, open a NetworkPolicy or read any secret a store
  serves there.
- MLOPS083: a namespace that enforces Pod Security `privileged`
  (`pod-security.kubernetes.io/enforce: privileged`; privileged allows host namespaces,
  hostPath and privileged containers, https://kubernetes.io/docs/concepts/security/pod-security-standards/)
  is a destination of platform projects only (a destination `*` reaches it too).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlops.rendering.render import RenderedKustomization
from mlops.rendering.terraform_hcl import locals_of, unquote
from mlops.validate.objects.env_objects import env_view
from mlops.validate.objects.problems import Problem, mapping
from mlops.validate.objects.violations import HINTS

PLATFORM_PROJECTS = ("platform", "platform-*")
"""AppProjects the platform team owns: the only ones that may set boundaries."""
BOUNDARY_KINDS = (
    ("rbac.authorization.k8s.io", "*"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("external-secrets.io", "SecretStore"),
    ("external-secrets.io", "ClusterSecretStore"),
)
"""(group, kind) an ML project may not whitelist; `*` is any kind of the group."""
MODEL_FOLDERS = "overlays/*/models/*"
READERS_FILE = "terraform/modules/workload-roles/main.tf"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"


def _problem(file: str, resource: str, field: str, message: str, policy_id: str) -> Problem:
    return Problem(file, resource, field, message, policy_id, HINTS[policy_id])


def _documents(rendered: Sequence[RenderedKustomization], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for result in rendered:
        for doc in result.documents:
            if isinstance(doc, dict) and doc.get("kind") == kind:
                yield result.path, doc


def _name(doc: dict[str, Any]) -> str:
    return str(mapping(doc, "metadata").get("name", "(no name)"))


def check_secret_stores(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """MLOPS081: each ClusterSecretStore names its namespaces; ExternalSecrets use a store serving them."""
    served: dict[str, set[str]] = {}
    readers = _secret_readers(repo)
    for file, store in _documents(rendered, "ClusterSecretStore"):
        name = _name(store)
        conditions = mapping(store, "spec").get("conditions")
        if not conditions:
            yield _problem(
                file,
                f"ClusterSecretStore/{name}",
                "spec.conditions",
                "no conditions: the store serves ExternalSecrets in every namespace, so any namespace "
                "can read every secret its role may read",
                "MLOPS081",
            )
            continue
        namespaces: set[str] = set()
        for index, condition in enumerate(conditions):
            if not isinstance(condition, dict):
                continue
            for loose in ("namespaceSelector", "namespaceRegexes"):
                if isinstance(condition, dict) and condition.get(loose) is not None:
                    yield _problem(
                        file,
                        f"ClusterSecretStore/{name}",
                        f"spec.conditions[{index}].{loose}",
                        f"{loose} admits namespaces by what their creator chose (labels, name); "
                        "name each namespace in `namespaces`",
                        "MLOPS081",
                    )
            namespaces.update(str(n) for n in condition.get("namespaces") or [])
        if len(namespaces) > 1:
            yield _problem(
                file,
                f"ClusterSecretStore/{name}",
                "spec.conditions",
                f"serves {', '.join(sorted(namespaces))}: they share every secret its role may read; "
                "give each namespace a store of its own",
                "MLOPS081",
            )
        served[name] = namespaces
    for file, secret in _documents(rendered, "ExternalSecret"):
        ref = mapping(mapping(secret, "spec"), "secretStoreRef")
        if ref.get("kind") != "ClusterSecretStore" or str(ref.get("name")) not in served:
            continue
        namespace = str(mapping(secret, "metadata").get("namespace") or "default")
        readable = readers.get(namespace, set())
        for field, key in _remote_keys(secret):
            if key.startswith(f"mlops/{env}/") and key.removeprefix(f"mlops/{env}/") not in readable:
                yield _problem(
                    file,
                    f"ExternalSecret/{_name(secret)}",
                    field,
                    f"reads {key}, which the secret reader role of namespace {namespace} may not read "
                    f"({READERS_FILE} secret_readers: {', '.join(sorted(readable)) or 'none'}): the "
                    "Secret is never made",
                    "MLOPS081",
                )
        if namespace not in served[str(ref["name"])]:
            yield _problem(
                file,
                f"ExternalSecret/{_name(secret)}",
                "spec.secretStoreRef",
                f"ClusterSecretStore {ref['name']} does not serve namespace {namespace} (its conditions "
                f"name {', '.join(sorted(served[str(ref['name'])])) or 'none'}): the Secret is never made",
                "MLOPS081",
            )


def _secret_readers(repo: Path) -> dict[str, set[str]]:
    """Namespace -> the secret names (`mlops/<env>/<name>`) terraform lets its reader role read."""
    readers = locals_of(repo / READERS_FILE.rpartition("/")[0]).get("secret_readers") or {}
    return {str(unquote(ns)): {str(unquote(name)) for name in names} for ns, names in readers.items()}


def _remote_keys(secret: dict[str, Any]) -> Iterator[tuple[str, str]]:
    spec = mapping(secret, "spec")
    for index, item in enumerate(spec.get("data") or []):
        yield f"spec.data[{index}].remoteRef.key", str(mapping(item, "remoteRef").get("key", ""))
    for index, item in enumerate(spec.get("dataFrom") or []):
        yield f"spec.dataFrom[{index}].extract.key", str(mapping(item, "extract").get("key", ""))


def _is_platform(project: str) -> bool:
    return any(fnmatch.fnmatchcase(project, pattern) for pattern in PLATFORM_PROJECTS)


def _whitelists(project: dict[str, Any]) -> Iterator[tuple[str, int, str, str]]:
    spec = mapping(project, "spec")
    for field in ("namespaceResourceWhitelist", "clusterResourceWhitelist"):
        for index, entry in enumerate(spec.get(field) or []):
            if isinstance(entry, dict):
                yield field, index, str(entry.get("group", "")), str(entry.get("kind", ""))


def _model_projects(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> set[str]:
    projects: set[str] = set()
    for _file, app in env_view(repo, env, rendered).applications:
        spec = mapping(app, "spec")
        sources = [spec.get("source"), *(spec.get("sources") or [])]
        for source in sources:
            if isinstance(source, dict) and fnmatch.fnmatchcase(str(source.get("path", "")), MODEL_FOLDERS):
                projects.add(str(spec.get("project")))
    return projects


def check_projects(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """MLOPS082: ML projects whitelist no boundary kinds; the model folders' project no ExternalSecret."""
    model_projects = _model_projects(repo, env, rendered)
    for file, project in _documents(rendered, "AppProject"):
        name = _name(project)
        if _is_platform(name):
            continue
        for field, index, group, kind in _whitelists(project):
            refused = group == "*" or any(
                group == g and (k == "*" or kind in (k, "*")) for g, k in BOUNDARY_KINDS
            )
            if refused:
                yield _problem(
                    file,
                    f"AppProject/{name}",
                    f"spec.{field}[{index}]",
                    f"allows {kind} ({group or 'core'}): only platform projects "
                    f"({', '.join(PLATFORM_PROJECTS)}) may create RBAC, NetworkPolicies or secret stores",
                    "MLOPS082",
                )
            elif name in model_projects and group == "external-secrets.io" and kind == "ExternalSecret":
                yield _problem(
                    file,
                    f"AppProject/{name}",
                    f"spec.{field}[{index}]",
                    f"allows ExternalSecret in the project model folders ({MODEL_FOLDERS}) deploy "
                    "through: a model-folder pull request could materialise any secret a store serves",
                    "MLOPS082",
                )


def check_privileged_namespaces(
    repo: Path, env: str, rendered: Sequence[RenderedKustomization]
) -> Iterator[Problem]:
    """MLOPS083: a namespace that enforces Pod Security `privileged` is reached by platform projects only."""
    privileged = {
        _name(doc)
        for _file, doc in _documents(rendered, "Namespace")
        if str((mapping(doc, "metadata").get("labels") or {}).get(PSA_ENFORCE)) == "privileged"
    }
    for file, project in _documents(rendered, "AppProject"):
        name = _name(project)
        if _is_platform(name):
            continue
        for index, destination in enumerate(mapping(project, "spec").get("destinations") or []):
            pattern = str((destination or {}).get("namespace", ""))
            for namespace in sorted(n for n in privileged if fnmatch.fnmatchcase(n, pattern)):
                yield _problem(
                    file,
                    f"AppProject/{name}",
                    f"spec.destinations[{index}].namespace",
                    f"reaches namespace {namespace}, which enforces Pod Security privileged: only platform "
                    f"projects ({', '.join(PLATFORM_PROJECTS)}) may deploy there",
                    "MLOPS083",
                )
