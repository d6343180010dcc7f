"""Repository policies: rules the schemas cannot express, each with an id and a one-line fix hint.

| id       | rule                                                                          |
|----------|-------------------------------------------------------------------------------|
| MLOPS001 | every container (init containers, Argo templates, PyTorchJob replicas too)    |
|          | requests cpu and memory and limits memory                                     |
| MLOPS002 | no `:latest` and no untagged image                                            |
| MLOPS003 | prod images pinned: `@sha256:<digest>`, a `[v]X.Y.Z` tag or a 40-hex git sha |
| MLOPS004 | pods run as non-root (`runAsNonRoot: true`)                                   |
| MLOPS005 | containers have a read-only root filesystem                                   |
| MLOPS006 | containers drop ALL capabilities                                              |
| MLOPS007 | pods that request `nvidia.com/gpu` tolerate the `nvidia.com/gpu` NoSchedule taint |
| MLOPS008 | every Karpenter NodePool has `spec.limits`                                    |
| MLOPS009 | prod Argo CD Applications (and ApplicationSet templates) auto-sync with prune |
|          | and selfHeal in a project other than `default`                                |
| MLOPS010 | every repository path an ApplicationSet generates exists and builds           |
| MLOPS011 | every overlay leaf is reached by some ApplicationSet (or Application)         |
| MLOPS012 | generated Application names are unique per cluster                            |
| MLOPS013 | an environment with a pod requesting `nvidia.com/gpu` installs a device plugin |
|          | (`mlops.validate.device_plugin`)                                              |
| MLOPS014 | images built here run as the UID their Dockerfile creates; Python/torch images |
|          | run as an arbitrary UID get USER, HOME and writable caches (`image_users`)    |
| MLOPS015 | a pod's non-memory emptyDir sizeLimits fit in its ephemeral-storage limit     |
| MLOPS016 | every ServiceAccount that runs workflow pods may write the Argo artifact      |
|          | repository (terraform's IAM role) (`mlops.validate.workflow_roles`)           |
| MLOPS017 | an Argo CD hook in an application with workloads never waits on their health |
|          | and is bounded (`mlops.validate.sync_hooks`)                                  |
| MLOPS018 | a Deployment's progressDeadlineSeconds covers its startup probe budget        |
| MLOPS019 | an Argo CD hook Job that keeps failed runs sets no ttlSecondsAfterFinished    |
| MLOPS020 | no sync-wave on the Applications an ApplicationSet generates (it orders nothing) |
| MLOPS021 | Applications (and ApplicationSet templates) retry failed syncs without a limit  |
|          | (`retry.limit` < 0) and with a capped backoff                                  |
| MLOPS022 | a custom resource whose CRD another Application installs skips the dry run   |
|          | (`SkipDryRunOnMissingResource=true`); so does every Application of a chart or |
|          | another repository, whose rendered objects this repository cannot annotate  |
| MLOPS024 | prod EC2NodeClasses pin the AMI alias (`al2023@vYYYYMMDD`, never `@latest`)   |
| MLOPS025 | prod GPU NodePools set `expireAfter: Never` (expiry is forced, budgets don't hold it) |
| MLOPS026 | prod NodePools have a scheduled budget (`nodes: "0"` + `schedule`) that keeps |
|          | business hours free of voluntary disruption                                  |

MLOPS023 and MLOPS027-029 need the repository or several objects: see `mlops.validate.delivery`.

MLOPS004-006 may be waived for one workload by the annotation
`policy.mlops.platform/exempt-<id>: "<reason>"` on the workload or its pod template.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mlops.validate.problems import field_path, mapping

EXEMPT_PREFIX = "policy.mlops.platform/exempt-"
"""Annotation key prefix that waives a policy for a workload: `...exempt-MLOPS004: "<reason>"`."""

EXEMPTABLE = ("MLOPS004", "MLOPS005", "MLOPS006")

HINTS = {
    "MLOPS001": "set resources.requests.cpu, resources.requests.memory and resources.limits.memory",
    "MLOPS002": "use an explicit version tag or a digest, never :latest or no tag",
    "MLOPS003": "pin prod images by @sha256 digest, a vX.Y.Z tag or a 40-hex git sha tag",
    "MLOPS004": 'set securityContext.runAsNonRoot: true, or annotate exempt-MLOPS004: "<reason>"',
    "MLOPS005": "set securityContext.readOnlyRootFilesystem: true (mount an emptyDir for scratch), "
    'or annotate exempt-MLOPS005: "<reason>"',
    "MLOPS006": 'set securityContext.capabilities.drop: [ALL], or annotate exempt-MLOPS006: "<reason>"',
    "MLOPS007": "add toleration {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}",
    "MLOPS008": "set spec.limits (e.g. cpu, memory, nvidia.com/gpu) so the NodePool cannot grow unbounded",
    "MLOPS009": "set syncPolicy.automated {prune: true, selfHeal: true} and a project other than default",
    # ApplicationSet coverage (mlops.validate.appsets)
    "MLOPS010": "fix the ApplicationSet's path (or the generator) so it names an overlay folder that builds",
    "MLOPS011": "add the folder to an ApplicationSet's git generator, or delete the unused overlay",
    "MLOPS012": "give each generated Application a name unique in its cluster (e.g. add the component)",
    # Cluster behaviour: what the kubelet, the scheduler and the controllers do with a manifest
    "MLOPS013": "add the nvidia-device-plugin chart for this environment (apps/upstream-charts.yaml)",
    "MLOPS014": "run as the image's user (securityContext.runAsUser), or set env USER, HOME and the "
    "cache dirs to writable mounts",
    "MLOPS015": "raise resources.limits.ephemeral-storage to cover the emptyDirs, or shrink their sizeLimit",
    "MLOPS016": "grant the ServiceAccount's role (terraform/modules/workload-roles) s3 write and KMS "
    "on the artifact bucket",
    "MLOPS017": "make the hook a Sync hook in the workloads' wave with activeDeadlineSeconds "
    "(never PostSync)",
    "MLOPS018": "set spec.progressDeadlineSeconds above the startup probe budget plus node launch "
    "and weight copy",
    "MLOPS019": "drop ttlSecondsAfterFinished: BeforeHookCreation removes the failed Job at the next sync",
    # Delivery: what a first sync and a year of operation need (issue 13)
    "MLOPS020": "drop the sync-wave from the ApplicationSet's template; order comes from retries "
    "and SkipDryRunOnMissingResource (apps/README.md)",
    "MLOPS021": "set syncPolicy.retry {limit: -1, backoff: {duration, factor, maxDuration}}",
    "MLOPS022": "add SkipDryRunOnMissingResource=true (annotation argocd.argoproj.io/sync-options on "
    "the resource, or syncPolicy.syncOptions of a chart's Application)",
    "MLOPS023": "use an image .github/workflows/images.yaml builds (mlops/<image>, tag = 40-hex commit "
    "or X.Y.Z release; prod: @sha256 digest or release) from this environment's registry",
    "MLOPS024": "pin amiSelectorTerms alias to a release (al2023@vYYYYMMDD); bump it in a pull request",
    "MLOPS025": "set spec.template.spec.expireAfter: Never and replace GPU nodes by AMI drift in the "
    "maintenance window (docs/first-apply.md)",
    "MLOPS026": 'add a budget {nodes: "0", schedule: ..., duration: ...} for business hours',
    "MLOPS027": "give release tags (X.Y.Z) their own lifecycle rule, before any rule that counts "
    "commit or cache tags",
    "MLOPS028": "push build caches to a MUTABLE cache repository (terraform modules/ecr), not to the "
    "tag-immutable image repository",
    "MLOPS029": "set kubernetes_version to a version in EKS standard support and "
    "mlops.validate.schemas.KUBERNETES_VERSION to the same",
}

GPU_RESOURCE = "nvidia.com/gpu"
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Immutable tags: a full release `v1.2.3` or `1.2.3` (optionally `-rc.1`), or a 40-hex git commit.
_IMMUTABLE_TAG = re.compile(r"^(v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?|[0-9a-f]{40})$")
_WORKLOAD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
_ARGO_WORKFLOW_KINDS = {"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"}


@dataclass(frozen=True)
class Violation:
    """One policy violation: the field, what is wrong, and the policy id."""

    field: str
    message: str
    policy_id: str

    @property
    def hint(self) -> str:
        """The one-line fix hint of the policy."""
        return HINTS[self.policy_id]


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


def check(doc: dict[str, Any], env: str, *, templated: bool = False) -> list[Violation]:
    """Return every policy violation of one manifest rendered for `env`.

    `templated` marks a manifest embedded in an Argo workflow, whose `{{...}}` expressions
    Argo fills in at run time; Argo workflow kinds are treated the same way.
    """
    found: list[Violation] = []
    templated = templated or doc.get("kind") in _ARGO_WORKFLOW_KINDS
    for pod in pods(doc):
        found.extend(_check_pod(pod, env, templated))
    kind, group = doc.get("kind"), str(doc.get("apiVersion", "")).rpartition("/")[0]
    if kind == "NodePool" and group == "karpenter.sh":
        limits = (doc.get("spec") or {}).get("limits")
        if not limits:
            found.append(Violation("spec.limits", "NodePool has no limits", "MLOPS008"))
    if env == "prod" and group == "argoproj.io" and kind in ("Application", "ApplicationSet"):
        found.extend(_check_sync(doc))
    if kind == "Deployment":
        found.extend(_check_progress_deadline(doc))
    if kind == "Job" and HOOK_ANNOTATION in _annotations(doc):
        found.extend(_check_hook_ttl(doc))
    if group == "argoproj.io" and kind in ("Application", "ApplicationSet"):
        found.extend(_check_convergence(doc))
    elif not templated:
        found.extend(_check_dry_run(doc, group))
    if env == "prod" and group in ("karpenter.sh", "karpenter.k8s.aws"):
        found.extend(_check_prod_nodes(doc))
    return found


HOOK_ANNOTATION = "argocd.argoproj.io/hook"
HOOK_DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
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
    """A Kubernetes quantity (`60Gi`, `500M`, `2`) as a number; None when it is not one."""
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIX:
        return None
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def _gib(amount: float) -> str:
    return f"{amount / 2**30:g}Gi"


def pod_ephemeral_storage_limit(pod: Pod) -> float | None:
    """The kubelet's pod-level ephemeral-storage limit: max(sum of containers', largest init container's).

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
            _path([*pod.path, "volumes"]),
            f"disk-backed emptyDirs need {_gib(total)} ({parts}) but the containers' "
            f"ephemeral-storage limits allow the pod {_gib(limit)}: the kubelet evicts it when they fill",
            "MLOPS015",
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


def _check_progress_deadline(doc: dict[str, Any]) -> Iterator[Violation]:
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


def _check_hook_ttl(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS019: a hook Job meant to stay after a failure (no HookFailed policy) has no TTL.

    The TTL-after-finished controller deletes a Job `ttlSecondsAfterFinished` after it
    finished, "either Complete or Failed"
    (https://kubernetes.io/docs/concepts/workloads/controllers/ttlafterfinished/), so a TTL
    also removes the failed hook Job and its pod logs that a delete policy without
    `HookFailed` keeps for debugging. `BeforeHookCreation` already deletes the old Job
    when the next sync creates the hook again.
    """
    policy = str(_annotations(doc).get(HOOK_DELETE_POLICY, ""))
    ttl = (doc.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is not None and "HookFailed" not in policy:
        yield Violation(
            "spec.ttlSecondsAfterFinished",
            f"ttlSecondsAfterFinished {ttl} deletes the failed hook Job too, which its "
            f'hook-delete-policy "{policy}" keeps for its logs',
            "MLOPS019",
        )


def image_problem(image: str, env: str, *, templated: bool = False) -> tuple[str, str] | None:
    """Return (policy id, message) when `image` breaks MLOPS002/003, else None.

    In a workflow (`templated`), a tag that is wholly an Argo expression such as
    `{{workflow.parameters.git-commit}}` is set at run time (the training workflow passes
    the commit it built), so MLOPS003 cannot judge it; `:latest` is still refused.
    """
    if _DIGEST.search(image):
        return None
    name = image.rsplit("/", 1)[-1]
    tag = name.split(":", 1)[1] if ":" in name else ""
    if not tag:
        return "MLOPS002", f'image "{image}" has no tag'
    if tag == "latest":
        return "MLOPS002", f'image "{image}" uses :latest'
    if templated and re.fullmatch(r"\{\{[^{}]+\}\}", tag):
        return None
    if env == "prod" and not _IMMUTABLE_TAG.match(tag):
        return "MLOPS003", f'prod image "{image}" is not pinned (tag "{tag}" may move)'
    return None


def _check_pod(pod: Pod, env: str, templated: bool) -> Iterator[Violation]:
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
            yield Violation(_path([*path, "resources"]), f"container has no {', '.join(missing)}", "MLOPS001")
        if GPU_RESOURCE in requests or GPU_RESOURCE in limits:
            gpu = True
        image = spec.get("image")
        if isinstance(image, str) and (problem := image_problem(image, env, templated=templated)):
            yield Violation(_path([*path, "image"]), problem[1], problem[0])
        sc = mapping(spec, "securityContext")
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True and "MLOPS004" not in exempt:
            yield Violation(
                _path([*path, "securityContext", "runAsNonRoot"]),
                "container may run as root",
                "MLOPS004",
            )
        if sc.get("readOnlyRootFilesystem") is not True and "MLOPS005" not in exempt:
            yield Violation(
                _path([*path, "securityContext", "readOnlyRootFilesystem"]),
                "root filesystem is writable",
                "MLOPS005",
            )
        drop = ((sc.get("capabilities") or {}).get("drop")) or []
        if "ALL" not in drop and "MLOPS006" not in exempt:
            yield Violation(
                _path([*path, "securityContext", "capabilities", "drop"]),
                "capabilities are not dropped (ALL)",
                "MLOPS006",
            )
    yield from _check_ephemeral_storage(pod)
    if gpu and not any(_tolerates_gpu(t) for t in pod.tolerations):
        yield Violation(
            _path([*pod.path, "tolerations"]),
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


def _check_sync(doc: dict[str, Any]) -> Iterator[Violation]:
    if doc["kind"] == "ApplicationSet":
        spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        prefix = ["spec", "template", "spec"]
    else:
        spec = doc.get("spec") or {}
        prefix = ["spec"]
    project = spec.get("project")
    if not project or project == "default":
        yield Violation(_path([*prefix, "project"]), f'project is "{project or ""}"', "MLOPS009")
    automated = (spec.get("syncPolicy") or {}).get("automated")
    if not isinstance(automated, dict):
        yield Violation(_path([*prefix, "syncPolicy", "automated"]), "no automated sync", "MLOPS009")
        return
    for flag in ("prune", "selfHeal"):
        if automated.get(flag) is not True:
            yield Violation(
                _path([*prefix, "syncPolicy", "automated", flag]),
                f"automated sync without {flag}",
                "MLOPS009",
            )
    if automated.get("enabled") is False:
        yield Violation(
            _path([*prefix, "syncPolicy", "automated", "enabled"]), "auto-sync disabled", "MLOPS009"
        )


def pods(doc: dict[str, Any]) -> Iterator[Pod]:
    """Every pod `doc` makes: a workload's template, each PyTorchJob replica, each Argo container template."""
    kind = doc.get("kind")
    meta_annotations = _annotations(doc)
    if kind == "Pod":
        yield _pod_from_spec([], doc.get("spec") or {}, meta_annotations)
    elif kind in _WORKLOAD_TEMPLATE_PATHS:
        template: Any = doc
        for key in _WORKLOAD_TEMPLATE_PATHS[kind]:
            template = (template or {}).get(key) if isinstance(template, dict) else None
        if isinstance(template, dict):
            path = list(_WORKLOAD_TEMPLATE_PATHS[kind])
            yield _pod_from_spec(
                [*path, "spec"], template.get("spec") or {}, {**meta_annotations, **_annotations(template)}
            )
    elif kind == "PyTorchJob":
        replicas = (doc.get("spec") or {}).get("pytorchReplicaSpecs") or {}
        for role, replica in replicas.items():
            template = (replica or {}).get("template") or {}
            yield _pod_from_spec(
                ["spec", "pytorchReplicaSpecs", role, "template", "spec"],
                template.get("spec") or {},
                {**meta_annotations, **_annotations(template)},
            )
    elif kind in _ARGO_WORKFLOW_KINDS:
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
        )


def _pod_from_spec(path: list[Any], spec: dict[str, Any], annotations: dict[str, Any]) -> Pod:
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
    )


def _annotations(obj: dict[str, Any]) -> dict[str, Any]:
    meta = mapping(obj, "metadata")
    annotations = meta.get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def _path(parts: list[Any]) -> str:
    return field_path(parts)


SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
SKIP_DRY_RUN = "SkipDryRunOnMissingResource=true"
# Argo CD's own kinds: their CRDs come with Argo CD (terraform's Helm release), before any sync.
_ARGOCD_KINDS = {"Application", "ApplicationSet", "AppProject"}


def _app_spec(doc: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The Application spec of an Application, or of an ApplicationSet's template, and its path."""
    if doc.get("kind") == "ApplicationSet":
        template = mapping(mapping(doc, "spec"), "template")
        return mapping(template, "spec"), ["spec", "template", "spec"]
    return mapping(doc, "spec"), ["spec"]


def _check_convergence(doc: dict[str, Any]) -> Iterator[Violation]:
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
                _path(["spec", "template", "metadata", "annotations", SYNC_WAVE]),
                "a sync-wave on generated Applications orders nothing: the ApplicationSet creates "
                "them all at once",
                "MLOPS020",
            )
    sync_policy = mapping(spec, "syncPolicy")
    retry = mapping(sync_policy, "retry")
    limit = retry.get("limit")
    if not isinstance(limit, int) or limit >= 0:
        yield Violation(
            _path([*prefix, "syncPolicy", "retry", "limit"]),
            f"sync retries give up (limit {limit if limit is not None else 'unset'}): an Application "
            "whose CRDs or namespace come later stays failed",
            "MLOPS021",
        )
    elif not mapping(retry, "backoff").get("maxDuration"):
        yield Violation(
            _path([*prefix, "syncPolicy", "retry", "backoff", "maxDuration"]),
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
            _path([*prefix, "syncPolicy", "syncOptions"]),
            f'source "{what}" renders objects this repository cannot annotate, and no '
            f"{SKIP_DRY_RUN}: a custom resource whose CRD another Application installs fails the dry run",
            "MLOPS022",
        )


def is_custom_resource(group: str) -> bool:
    """Whether `group` is a CRD's (Kubernetes' own groups are `apps`, `batch`, ... and `*.k8s.io`)."""
    return "." in group and not group.endswith(".k8s.io")


def _check_dry_run(doc: dict[str, Any], group: str) -> Iterator[Violation]:
    """MLOPS022 on a custom resource of this repository: its CRD comes from an add-on Application.

    Upstream: argo-cd docs/user-guide/sync-options.md: when the CRD is not part of the same
    sync, the dry run fails with "the server could not find the requested resource" unless
    the resource carries `argocd.argoproj.io/sync-options: SkipDryRunOnMissingResource=true`.
    No CRD is part of this repository (they come with the upstream charts), so every custom
    resource except Argo CD's own needs it.
    """
    if not is_custom_resource(group) or doc.get("kind") in _ARGOCD_KINDS:
        return
    options = str(_annotations(doc).get(SYNC_OPTIONS, ""))
    if SKIP_DRY_RUN not in [o.strip() for o in options.split(",")]:
        yield Violation(
            _path(["metadata", "annotations", SYNC_OPTIONS]),
            f"{doc.get('kind')} ({group}) has no {SKIP_DRY_RUN}: its CRD comes from another "
            "Application, so the first sync fails its dry run",
            "MLOPS022",
        )


_GPU_TAINT = "nvidia.com/gpu"


def _check_prod_nodes(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS024-026: prod nodes change only when a pull request or the maintenance window says so.

    Upstream: Karpenter's disruption docs (karpenter.sh/docs/concepts/disruption): drift
    replaces nodes when the resolved AMI changes, and `al2023@latest` resolves to each new EKS
    AMI release; expiration is a forceful method ("budgets ... don't block" expiry, nodes are
    drained when `expireAfter` passes, whatever the schedule); budgets default to `nodes: 10%`
    and a budget with `schedule`/`duration` is what blocks voluntary disruption in a window.
    Alias pinning (`al2023@v20251001`-style): karpenter.sh/docs/concepts/nodeclasses (amiSelectorTerms).
    """
    kind, spec = doc.get("kind"), mapping(doc, "spec")
    if kind == "EC2NodeClass":
        for index, term in enumerate(spec.get("amiSelectorTerms") or []):
            alias = term.get("alias") if isinstance(term, dict) else None
            if isinstance(alias, str) and alias.endswith("@latest"):
                yield Violation(
                    _path(["spec", "amiSelectorTerms", index, "alias"]),
                    f'AMI alias "{alias}" floats: every EKS AMI release drifts and replaces every node',
                    "MLOPS024",
                )
    if kind != "NodePool":
        return
    node_spec = mapping(mapping(spec, "template"), "spec")
    taints = node_spec.get("taints") or []
    gpu = any(isinstance(t, dict) and t.get("key") == _GPU_TAINT for t in taints)
    expire = node_spec.get("expireAfter")
    if gpu and expire != "Never":
        yield Violation(
            _path(["spec", "template", "spec", "expireAfter"]),
            f'GPU nodes expire after "{expire or "720h (default)"}": expiry is forced and no budget '
            "holds it, so serving and training nodes drain in business hours",
            "MLOPS025",
        )
    budgets = mapping(spec, "disruption").get("budgets") or []
    windows = [b for b in budgets if isinstance(b, dict) and b.get("schedule") and str(b.get("nodes")) == "0"]
    if not windows:
        yield Violation(
            _path(["spec", "disruption", "budgets"]),
            'no scheduled budget with nodes "0": drift and consolidation may replace nodes at any hour',
            "MLOPS026",
        )
