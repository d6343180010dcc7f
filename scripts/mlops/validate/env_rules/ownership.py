"""MLOPS070, MLOPS072: each object has one Argo CD Application, and that Application's project allows it.

MLOPS070: two Applications that render the same object (group, kind, namespace, name) fight
over it: each sync overwrites the other's version and each prune deletes what the other
applied; Argo CD marks both OutOfSync with "SharedResourceWarning" (argoproj/argo-cd
`controller/state.go`, the app-instance label of the object names only one Application). The
example: a model folder copied to `overlays/dev/models/faq-bot` without editing its
`namePrefix` renders `support-chat-vllm` a second time.

MLOPS072: Argo CD refuses to sync an object its Application's AppProject does not permit
("resource ... is not permitted in project ..."). As argoproj/argo-cd
`pkg/apis/application/v1alpha1/app_project_types.go` evaluates it (IsGroupKindNamePermitted,
IsDestinationPermitted, isResourceInList in `types.go`):
- a namespaced kind is permitted when `namespaceResourceWhitelist` is absent, or non-empty and
  matches it (group and kind as `filepath.Match` globs), and `namespaceResourceBlacklist` does not;
- a cluster-scoped kind only when `clusterResourceWhitelist` is non-empty and matches it (an
  entry may also name the object), and `clusterResourceBlacklist` does not;
- a namespaced object's namespace must match some `destinations` entry (server or name, and
  namespace, as globs; a `!pattern` denies).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects.env_objects import (
    CLUSTER_SCOPED_KINDS,
    destination_namespace,
    env_view,
    group_of,
    source_folders,
)
from mlops.validate.objects.problems import Problem, mapping, resource_name
from mlops.validate.objects.violations import HINTS

_ROOT = "the root Application of clusters/{env} (terraform's Argo CD bootstrap)"


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """Report objects two Applications render, and objects an Application's project does not permit."""
    view = env_view(repo, env, rendered)
    by_path = {r.path: r for r in rendered if r.env == env}
    projects = {o.name: o.document for o in view.of_kind("AppProject") if o.group == "argoproj.io"}
    owners: dict[tuple[str, str, str, str], tuple[str, str]] = {}
    root = f"clusters/{env}"
    claims: list[tuple[str, dict[str, Any] | None, str]] = [(_ROOT.format(env=env), None, root)]
    for _file, generated in view.applications:
        name = str(mapping(generated, "metadata").get("name") or "?")
        for folder in source_folders(generated):
            claims.append((f'Application "{name}"', generated, folder))
    for owner, app, folder in claims:
        result = by_path.get(folder)
        if result is None or result.error:
            continue  # a path that does not build is MLOPS010's
        default_ns = destination_namespace(app) if app else ""
        for doc in result.documents:
            if not isinstance(doc, dict):
                continue
            kind = str(doc.get("kind") or "")
            meta = mapping(doc, "metadata")
            namespace = "" if kind in CLUSTER_SCOPED_KINDS else str(meta.get("namespace") or default_ns)
            key = (group_of(doc), kind, namespace, str(meta.get("name") or ""))
            me = (owner, folder)
            first = owners.setdefault(key, me)
            if first != me:
                # Both sides hear of it: either folder may be the one to fix (the copy, or the original).
                for (this, this_folder), (other, other_folder) in ((me, first), (first, me)):
                    yield Problem(
                        this_folder, resource_name(doc), "metadata.name",
                        f"{kind} {namespace + '/' if namespace else ''}{key[3]} is also rendered by {other} "
                        f"({other_folder}); {this} would fight it over the object (each sync and prune "
                        "undoes the other's)", "MLOPS070", HINTS["MLOPS070"],
                    )  # fmt: skip
            if app is not None:
                yield from _project_problems(folder, owner, app, projects, doc, kind, namespace)


def _project_problems(
    folder: str,
    owner: str,
    app: dict[str, Any],
    projects: dict[str, dict[str, Any]],
    doc: dict[str, Any],
    kind: str,
    namespace: str,
) -> Iterator[Problem]:
    project_name = str(mapping(app, "spec").get("project") or "default")
    project = projects.get(project_name)
    if project is None:
        return  # the default project (or one made elsewhere) permits everything it is given
    spec = mapping(project, "spec")
    group = group_of(doc)
    name = str(mapping(doc, "metadata").get("name") or "")
    where = f"AppProject {project_name}"
    if not is_group_kind_permitted(spec, group, kind, name, namespaced=bool(namespace)):
        lists = "namespaceResourceWhitelist/Blacklist" if namespace else "clusterResourceWhitelist/Blacklist"
        yield Problem(
            folder, resource_name(doc), "kind",
            f"{where} does not permit {kind} (group {group!r}) for {owner}: its {lists} leave it out, "
            "and Argo CD refuses to sync it", "MLOPS072", HINTS["MLOPS072"],
        )  # fmt: skip
    elif namespace and not is_destination_permitted(
        spec, _destination_server(app), _destination_name(app), namespace
    ):
        yield Problem(
            folder, resource_name(doc), "metadata.namespace",
            f"{where} has no destination for namespace {namespace!r} ({owner}): Argo CD refuses to sync it",
            "MLOPS072", HINTS["MLOPS072"],
        )  # fmt: skip


def _destination_server(app: dict[str, Any]) -> str:
    return str(mapping(mapping(app, "spec"), "destination").get("server") or "")


def _destination_name(app: dict[str, Any]) -> str:
    return str(mapping(mapping(app, "spec"), "destination").get("name") or "")


def _in_list(group: str, kind: str, name: str, items: Sequence[Any]) -> bool:
    for item in items:
        if not isinstance(item, dict):
            continue
        if not fnmatch.fnmatchcase(kind, str(item.get("kind", ""))):
            continue
        if not fnmatch.fnmatchcase(group, str(item.get("group", ""))):
            continue
        if not item.get("name") or fnmatch.fnmatchcase(name, str(item["name"])):
            return True
    return False


def is_group_kind_permitted(
    spec: dict[str, Any], group: str, kind: str, name: str, *, namespaced: bool
) -> bool:
    """Argo CD's IsGroupKindNamePermitted over an AppProject's `spec`."""
    if namespaced:
        whitelist = spec.get("namespaceResourceWhitelist")
        blacklist = spec.get("namespaceResourceBlacklist") or []
        # nil (absent) permits every namespaced kind; an empty list permits none.
        white = whitelist is None or (bool(whitelist) and _in_list(group, kind, "", whitelist))
        return white and not (blacklist and _in_list(group, kind, "", blacklist))
    whitelist = spec.get("clusterResourceWhitelist") or []
    blacklist = spec.get("clusterResourceBlacklist") or []
    return (
        bool(whitelist)
        and _in_list(group, kind, name, whitelist)
        and not (blacklist and _in_list(group, kind, name, blacklist))
    )


def _glob(pattern: str, value: str) -> bool:
    """Argo CD's globMatch: `!pattern` negates; `*` matches anything."""
    if pattern.startswith("!"):
        return not fnmatch.fnmatchcase(value, pattern[1:])
    return pattern == "*" or fnmatch.fnmatchcase(value, pattern)


def is_destination_permitted(spec: dict[str, Any], server: str, name: str, namespace: str) -> bool:
    """Argo CD's isDestinationMatched over an AppProject's `spec`."""
    matched_any = False
    for item in spec.get("destinations") or []:
        if not isinstance(item, dict):
            continue
        item_name, item_server, item_ns = (str(item.get(k) or "") for k in ("name", "server", "namespace"))
        name_ok = bool(name) and _glob(item_name, name)
        server_ok = bool(server) and _glob(item_server, server)
        ns_ok = _glob(item_ns, namespace)
        if (server_ok or name_ok) and ns_ok:
            matched_any = True
        # Go's precedence: A || (B && C), as app_project_types.go writes it.
        elif (not name_ok and item_name.startswith("!")) or (
            not server_ok and item_server.startswith("!") and ns_ok
        ):
            return False
        elif not ns_ok and item_ns.startswith("!") and server_ok:
            return False
    return matched_any
