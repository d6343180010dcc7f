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
MLOPS140 (prod's third-party images come through the ECR pull-through cache): see
`mlops.validate.image_sources`.
The rules live by concern: `pod_policies` (pods), `sync_policies` (Argo CD), `node_policies`
(Karpenter); `violations` holds each id's fix hint.

MLOPS004-006 may be waived for one workload by the annotation
`policy.mlops.platform/exempt-<id>: "<reason>"` on the workload or its pod template.
"""

from __future__ import annotations

from typing import Any

from mlops.validate import node_policies, pod_policies, sync_policies
from mlops.validate.pod_specs import ARGO_WORKFLOW_KINDS, annotations_of, pods
from mlops.validate.violations import Violation


def check(doc: dict[str, Any], env: str, *, templated: bool = False) -> list[Violation]:
    """Return every policy violation of one manifest rendered for `env`.

    `templated` marks a manifest embedded in an Argo workflow, whose `{{...}}` expressions
    Argo fills in at run time; Argo workflow kinds are treated the same way.
    """
    found: list[Violation] = []
    templated = templated or doc.get("kind") in ARGO_WORKFLOW_KINDS
    for pod in pods(doc):
        found.extend(pod_policies.check_pod(pod, env, templated))
    kind, group = doc.get("kind"), str(doc.get("apiVersion", "")).rpartition("/")[0]
    if kind == "NodePool" and group == "karpenter.sh":
        found.extend(node_policies.check_node_pool_limits(doc))
    if env == "prod" and group == "argoproj.io" and kind in ("Application", "ApplicationSet"):
        found.extend(sync_policies.check_sync_policy(doc))
    if kind == "Deployment":
        found.extend(sync_policies.check_progress_deadline(doc))
    if kind == "Job" and sync_policies.HOOK_ANNOTATION in annotations_of(doc):
        found.extend(sync_policies.check_hook_ttl(doc))
    if group == "argoproj.io" and kind in ("Application", "ApplicationSet"):
        found.extend(sync_policies.check_convergence(doc))
    elif not templated:
        found.extend(sync_policies.check_dry_run(doc, group))
    if env == "prod" and group in ("karpenter.sh", "karpenter.k8s.aws"):
        found.extend(node_policies.check_prod_nodes(doc))
    return found
