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
|          | (`mlops.validate.object_rules.device_plugin`)                                              |
| MLOPS014 | images built here run as the UID their Dockerfile creates; Python/torch images |
|          | run as an arbitrary UID get USER, HOME and writable caches (`image_users`)    |
| MLOPS015 | a pod's non-memory emptyDir sizeLimits fit in its ephemeral-storage limit     |
| MLOPS016 | every ServiceAccount that runs workflow pods may write the Argo artifact      |
|          | repository (terraform's IAM role) (`mlops.validate.trust_rules.workflow_roles`)           |
| MLOPS017 | an Argo CD hook in an application with workloads never waits on their health |
|          | and is bounded (`mlops.validate.object_rules.sync_hooks`)                                  |
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

| MLOPS100 | a ScaledObject's target sets no replicas, or the paused count (`fresh_install_env`) |
| MLOPS101 | `s5cmd sync` runs inside a shell that fails when nothing arrived           |
| MLOPS102 | an HPA on a Resource metric needs metrics-server in its env (`fresh_install_env`) |
| MLOPS103 | kube-prometheus-stack scrapes no EKS-managed component (`fresh_install_env`)  |
| MLOPS104 | NodePools, EC2NodeClasses, CRDs and Namespaces carry `Delete=false`      |
|          | (`mlops.validate.object_rules.fresh_install`)                                              |
| MLOPS105 | every deny sync window of an AppProject allows manual syncs              |
| MLOPS106 | a CRD-defaulted field inside a list item is written out (`fresh_install_env`) |
| MLOPS107 | a manifest a workflow creates carries no `workflows.argoproj.io/` label       |

MLOPS023 and MLOPS027-029 need the repository or several objects: see `mlops.validate.env_rules.delivery`.
MLOPS040-047 are API rules the schemas miss (`mlops.validate.object_rules.api_rules`); MLOPS048-049 read every
YAML file strictly (`yaml_files`); MLOPS050 is `mlops workflows compile --check` (`generated`).
MLOPS080-084 (trust boundaries: reachability, secret stores, AppProjects, privileged namespaces,
pods vs their namespace's Pod Security level) run once per environment: see
`mlops.validate.trust_rules.reachability`, `mlops.validate.trust_rules.boundaries` and
`mlops.validate.object_rules.pod_security`.
MLOPS085 (a model version file's weights digest) is a model-folder check:
`mlops.validate.env_rules.model_versions`.
MLOPS140 (prod's third-party images come through the ECR pull-through cache): see
`mlops.validate.env_rules.image_sources`.
MLOPS143 (prod's third-party images by digest, or listed to pin): see
`mlops.validate.env_rules.image_digests`.
MLOPS141-142 (terraform's Pod Identity associations and the rendered ServiceAccounts agree):
see `mlops.validate.trust_rules.pod_identities`.
The rules live by concern: `pod_policies` (pods), `sync_policies` (Argo CD), `node_policies`
(Karpenter); `violations` holds each id's fix hint.

MLOPS004-006 may be waived for one workload by the annotation
`policy.mlops.platform/exempt-<id>: "<reason>"` on the workload or its pod template.
"""

from __future__ import annotations

from typing import Any

from mlops.validate.object_rules import api_rules, fresh_install, node_policies, pod_policies, sync_policies
from mlops.validate.objects.pod_specs import ARGO_WORKFLOW_KINDS, annotations_of, pods
from mlops.validate.objects.violations import Violation


def check(doc: dict[str, Any], env: str, *, templated: bool = False) -> list[Violation]:
    """Return every policy violation of one manifest rendered for `env`.

    `templated` marks a manifest embedded in an Argo workflow, whose `{{...}}` expressions
    Argo fills in at run time; Argo workflow kinds are treated the same way.
    """
    found: list[Violation] = []
    # An embedded manifest is created by the workflow at run time, never synced by Argo CD;
    # a top-level Argo workflow kind is synced, and its CRD comes from the argo-workflows chart.
    embedded = templated
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
    elif not embedded:
        found.extend(sync_policies.check_dry_run(doc, group))
    if embedded:
        found.extend(fresh_install.check_created_by_workflow(doc))
    else:
        found.extend(fresh_install.check_delete_protection(doc, group))
    found.extend(fresh_install.check_weights_fetch(doc))
    if group == "argoproj.io" and kind == "AppProject":
        found.extend(fresh_install.check_sync_windows(doc))
    if env == "prod" and group in ("karpenter.sh", "karpenter.k8s.aws"):
        found.extend(node_policies.check_prod_nodes(doc))
    found.extend(api_rules.check(doc, templated=templated))
    return found
