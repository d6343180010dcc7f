"""MLOPS017: an Argo CD hook never makes a sync wait on the health of the workloads it ships with.

How Argo CD runs a sync (gitops-engine `pkg/sync/sync_context.go`, `Sync()`): resources and
hooks become tasks ordered by phase (PreSync, Sync, PostSync) and wave. When the tasks
span more than one phase or wave (`multiStep`), every applied resource stays "running"
until its health is Healthy (or Degraded) before the next wave or phase starts, and
PostSync hooks run only "after all Sync hooks completed and were successful, a successful
application, and all resources in a Healthy state"
(https://argo-cd.readthedocs.io/en/stable/user-guide/resource_hooks/). When they all sit
in one phase and wave, the operation waits only for running *hooks*; "if it is the last
phase/wave and the only remaining tasks are non-hooks, then we are successful EVEN if those
objects subsequently degraded".

A Deployment whose new version crash-loops stays Progressing until its
progressDeadlineSeconds pass, so a PostSync hook (or a later wave) keeps the sync
operation Running that long, and the next commit, the rollback, is not synced until the
operation ends or someone terminates it. Hence, in an application (one rendered
kustomization) that ships a Deployment, StatefulSet or DaemonSet:

- no hook is PostSync, and all resources and hooks share one phase (Sync) and one wave,
  so the operation never waits for a workload's health;
- every hook Job sets `activeDeadlineSeconds`, so a hook that cannot finish (MLflow down,
  a pod that never schedules) ends the operation in bounded time.

`sync_wait_bound` computes the resulting bound; tests/manifests use it to show that a
rollback commit is never held by the version it replaces.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlops.rendering.render import RenderedKustomization
from mlops.validate.object_rules.sync_policies import HOOK_ANNOTATION
from mlops.validate.objects.problems import Problem, resource_name
from mlops.validate.objects.violations import HINTS

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
_HEALTH_GATED_PHASES = {"PostSync"}
_IGNORED_PHASES = {"SyncFail", "Skip"}  # SyncFail runs only after a failure; Skip is not applied


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """Report hooks that would hold a sync (and the rollback after it) on a workload's health."""
    for result in rendered:
        for doc, field, message in _blocking(result.documents):
            yield Problem(result.path, resource_name(doc), field, message, "MLOPS017", HINTS["MLOPS017"])


def sync_wait_bound(documents: Sequence[dict[str, Any]]) -> int | None:
    """Seconds a sync of these documents may wait at most, regardless of the workloads' health.

    None when the wait depends on a workload becoming healthy (a PostSync hook, several
    phases or waves) or on a hook Job without activeDeadlineSeconds.
    """
    if list(_blocking(documents)):
        return None
    return max(
        (int(d["spec"]["activeDeadlineSeconds"]) for d in _hooks(documents) if d.get("kind") == "Job"),
        default=0,
    )


def _blocking(documents: Sequence[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], str, str]]:
    docs = [d for d in documents if isinstance(d, dict)]
    workloads = [d for d in docs if d.get("kind") in WORKLOAD_KINDS]
    hooks = _hooks(docs)
    if not workloads or not hooks:
        return
    workload = resource_name(workloads[0])
    steps = {
        f"{phase}/{_wave(d)}"
        for d in docs
        if not (_phases(d) & _IGNORED_PHASES)
        for phase in (_phases(d) or {"Sync"})
    }
    for hook in hooks:
        phases = _phases(hook)
        if phases & _HEALTH_GATED_PHASES:
            yield (
                hook,
                f"metadata.annotations.{HOOK_ANNOTATION}",
                f"{'/'.join(sorted(phases))} hook starts only once every resource is Healthy: while "
                f"{workload} does not become healthy the sync operation stays Running and the next "
                "commit (a rollback) is not synced",
            )
        elif len(steps) > 1:
            yield (
                hook,
                f"metadata.annotations.{HOOK_ANNOTATION}",
                f"the sync has {len(steps)} phases/waves ({', '.join(sorted(steps))}): Argo CD waits for "
                f"{workload} to be healthy between them, and the next commit (a rollback) waits with it",
            )
        if hook.get("kind") == "Job" and "activeDeadlineSeconds" not in (hook.get("spec") or {}):
            yield (
                hook,
                "spec.activeDeadlineSeconds",
                "hook Job has no activeDeadlineSeconds: a run that never finishes holds the sync "
                "operation (and the next commit) open",
            )


def _hooks(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if _phases(d) and not (_phases(d) <= _IGNORED_PHASES)]


def _phases(doc: dict[str, Any]) -> set[str]:
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    value = str(annotations.get(HOOK_ANNOTATION, ""))
    return {p.strip() for p in value.split(",") if p.strip()}


def _wave(doc: dict[str, Any]) -> str:
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(WAVE_ANNOTATION, "0")).strip() or "0"
