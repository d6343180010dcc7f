"""Policies on how Argo CD syncs and judges health: Applications, hooks, rollouts (MLOPS009, 018-022)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlops.validate.objects.pod_specs import annotations_of
from mlops.validate.objects.problems import field_path, mapping
from mlops.validate.objects.violations import Violation

HOOK_ANNOTATION = "argocd.argoproj.io/hook"

HOOK_DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"

DEFAULT_PROGRESS_DEADLINE_SECONDS = 600

SYNC_OPTIONS = "argocd.argoproj.io/sync-options"

SYNC_WAVE = "argocd.argoproj.io/sync-wave"

SKIP_DRY_RUN = "SkipDryRunOnMissingResource=true"

# Argo CD's own kinds: their CRDs come with Argo CD (terraform's Helm release), before any sync.
_ARGOCD_KINDS = {"Application", "ApplicationSet", "AppProject"}


def check_sync_policy(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS009 on a prod Application or ApplicationSet: auto-sync with prune and selfHeal, own project."""
    if doc["kind"] == "ApplicationSet":
        spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        prefix = ["spec", "template", "spec"]
    else:
        spec = doc.get("spec") or {}
        prefix = ["spec"]
    project = spec.get("project")
    if not project or project == "default":
        yield Violation(field_path([*prefix, "project"]), f'project is "{project or ""}"', "MLOPS009")
    automated = (spec.get("syncPolicy") or {}).get("automated")
    if not isinstance(automated, dict):
        yield Violation(field_path([*prefix, "syncPolicy", "automated"]), "no automated sync", "MLOPS009")
        return
    for flag in ("prune", "selfHeal"):
        if automated.get(flag) is not True:
            yield Violation(
                field_path([*prefix, "syncPolicy", "automated", flag]),
                f"automated sync without {flag}",
                "MLOPS009",
            )
    if automated.get("enabled") is False:
        yield Violation(
            field_path([*prefix, "syncPolicy", "automated", "enabled"]), "auto-sync disabled", "MLOPS009"
        )


def startup_budget_seconds(container: dict[str, Any]) -> int:
    """How long a container may take to start before its startup probe gives up (0 without one).

    initialDelaySeconds + failureThreshold x periodSeconds, with the Kubernetes defaults
    (0, 3, 10): "the application will have a maximum of 5 minutes (30 * 10 = 300s) to finish
    its startup" (https://kubernetes.io/docs/tasks/configure-pod-container/
    configure-liveness-readiness-startup-probes/#define-startup-probes).
    """
    probe = container.get("startupProbe")
    if not isinstance(probe, dict):
        return 0
    return int(probe.get("initialDelaySeconds", 0)) + int(probe.get("failureThreshold", 3)) * int(
        probe.get("periodSeconds", 10)
    )


def check_progress_deadline(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS018: the Deployment's progress deadline is longer than its pods may take to start.

    The Deployment controller marks a rollout failed (condition Progressing=False, reason
    ProgressDeadlineExceeded) when no new pod became available for
    `spec.progressDeadlineSeconds` (default 600;
    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#failed-deployment),
    and Argo CD reports such a Deployment Degraded (gitops-engine
    pkg/health/health_deployment.go). A pod whose startup probe is allowed 15 minutes is
    then declared failed while still loading weights, so the deadline must exceed the
    startup probe budget; node launch, image pull and the weight copy come on top (the
    overlays size them, see base/models/vllm/deployment.yaml).
    """
    spec = doc.get("spec") or {}
    deadline = int(spec.get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE_SECONDS))
    template_spec = ((spec.get("template") or {}).get("spec")) or {}
    budget = max((startup_budget_seconds(c) for c in template_spec.get("containers") or []), default=0)
    if budget and deadline <= budget:
        shown = "" if "progressDeadlineSeconds" in spec else " (the default)"
        yield Violation(
            "spec.progressDeadlineSeconds",
            f"progressDeadlineSeconds {deadline}{shown} is not above the startup probe budget of {budget}s: "
            "the rollout is marked failed (Argo CD: Degraded) while pods still start",
            "MLOPS018",
        )


def check_hook_ttl(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS019: a hook Job meant to stay after a failure (no HookFailed policy) has no TTL.

    The TTL-after-finished controller deletes a Job `ttlSecondsAfterFinished` after it
    finished, "either Complete or Failed"
    (https://kubernetes.io/docs/concepts/workloads/controllers/ttlafterfinished/), so a TTL
    also removes the failed hook Job and its pod logs that a delete policy without
    `HookFailed` keeps for debugging. `BeforeHookCreation` already deletes the old Job
    when the next sync creates the hook again.
    """
    policy = str(annotations_of(doc).get(HOOK_DELETE_POLICY, ""))
    ttl = (doc.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is not None and "HookFailed" not in policy:
        yield Violation(
            "spec.ttlSecondsAfterFinished",
            f"ttlSecondsAfterFinished {ttl} deletes the failed hook Job too, which its "
            f'hook-delete-policy "{policy}" keeps for its logs',
            "MLOPS019",
        )


def _app_spec(doc: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """Return the Application spec of an Application, or of an ApplicationSet's template, and its path."""
    if doc.get("kind") == "ApplicationSet":
        template = mapping(mapping(doc, "spec"), "template")
        return mapping(template, "spec"), ["spec", "template", "spec"]
    return mapping(doc, "spec"), ["spec"]


def check_convergence(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS020-022 on an Application or ApplicationSet: how a fresh cluster converges.

    Upstream: Argo CD's ApplicationSet docs (Progressive Syncs) say an ApplicationSet creates
    its Applications without waiting for them, and the root Application's health check of an
    ApplicationSet does not look at the generated Applications, so a sync-wave on the template
    orders nothing (argo-cd docs/operator-manual/applicationset/Progressive-Syncs.md).
    `retry.limit`: "unlimited number of attempts if less than 0" (argo-cd
    docs/operator-manual/application.yaml). `SkipDryRunOnMissingResource` at the Application
    level: argo-cd docs/user-guide/sync-options.md ("Skip Dry Run for new custom resources types").
    """
    spec, prefix = _app_spec(doc)
    if doc.get("kind") == "ApplicationSet":
        template_meta = mapping(mapping(mapping(doc, "spec"), "template"), "metadata")
        if SYNC_WAVE in mapping(template_meta, "annotations"):
            yield Violation(
                field_path(["spec", "template", "metadata", "annotations", SYNC_WAVE]),
                "a sync-wave on generated Applications orders nothing: the ApplicationSet creates "
                "them all at once",
                "MLOPS020",
            )
    sync_policy = mapping(spec, "syncPolicy")
    retry = mapping(sync_policy, "retry")
    limit = retry.get("limit")
    if not isinstance(limit, int) or limit >= 0:
        yield Violation(
            field_path([*prefix, "syncPolicy", "retry", "limit"]),
            f"sync retries give up (limit {limit if limit is not None else 'unset'}): an Application "
            "whose CRDs or namespace come later stays failed",
            "MLOPS021",
        )
    elif not mapping(retry, "backoff").get("maxDuration"):
        yield Violation(
            field_path([*prefix, "syncPolicy", "retry", "backoff", "maxDuration"]),
            "unlimited retries without a capped backoff",
            "MLOPS021",
        )
    sources = [spec.get("source"), *(spec.get("sources") or [])]
    # A chart, or a path in a repository other than this one (whose URL the cluster secret names).
    foreign = [
        s
        for s in sources
        if isinstance(s, dict)
        and (
            s.get("chart") or (s.get("path") is not None and "platform_repo_url" not in str(s.get("repoURL")))
        )
    ]
    options = sync_policy.get("syncOptions") or []
    if foreign and SKIP_DRY_RUN not in options:
        what = foreign[0].get("chart") or foreign[0].get("repoURL")
        yield Violation(
            field_path([*prefix, "syncPolicy", "syncOptions"]),
            f'source "{what}" renders objects this repository cannot annotate, and no '
            f"{SKIP_DRY_RUN}: a custom resource whose CRD another Application installs fails the dry run",
            "MLOPS022",
        )


def is_custom_resource(group: str) -> bool:
    """Whether `group` is a CRD's (Kubernetes' own groups are `apps`, `batch`, ... and `*.k8s.io`)."""
    return "." in group and not group.endswith(".k8s.io")


def check_dry_run(doc: dict[str, Any], group: str) -> Iterator[Violation]:
    """MLOPS022 on a custom resource of this repository: its CRD comes from an add-on Application.

    Upstream: argo-cd docs/user-guide/sync-options.md: when the CRD is not part of the same
    sync, the dry run fails with "the server could not find the requested resource" unless
    the resource carries `argocd.argoproj.io/sync-options: SkipDryRunOnMissingResource=true`.
    No CRD is part of this repository (they come with the upstream charts), so every custom
    resource except Argo CD's own needs it.
    """
    if not is_custom_resource(group) or doc.get("kind") in _ARGOCD_KINDS:
        return
    options = str(annotations_of(doc).get(SYNC_OPTIONS, ""))
    if SKIP_DRY_RUN not in [o.strip() for o in options.split(",")]:
        yield Violation(
            field_path(["metadata", "annotations", SYNC_OPTIONS]),
            f"{doc.get('kind')} ({group}) has no {SKIP_DRY_RUN}: its CRD comes from another "
            "Application, so the first sync fails its dry run",
            "MLOPS022",
        )
