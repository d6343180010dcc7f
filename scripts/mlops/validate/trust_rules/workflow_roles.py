"""MLOPS016: every ServiceAccount that runs workflow pods may do what the Argo configuration asks of it.

Argo Workflows runs a `wait` sidecar in every pod of a workflow; with
`artifactRepository.archiveLogs: true` it uploads the main container's log to the artifact
repository when the step ends ("archiveLogs ... saves the logs of all pods to the artifact
repository", https://argo-workflows.readthedocs.io/en/latest/configure-archive-logs/), and
with `useSDKCreds: true` it authenticates with the AWS SDK's default chain, which in a pod
whose ServiceAccount has an EKS Pod Identity association is that association's role (EKS sets
`AWS_CONTAINER_CREDENTIALS_FULL_URI` in every container, the wait sidecar included; minio-go
reads it since v7.0.70, argoproj/argo-workflows#13854).
Outputs artifacts are saved the same way. So the IAM role of *each* ServiceAccount a
workflow template runs (kaniko, trainer, git-bot, not only the workflow's default) needs
`s3:PutObject` on the artifact bucket and, as terraform encrypts the buckets with SSE-KMS,
`kms:GenerateDataKey` on the data key; otherwise the upload fails and a step whose main
container succeeded ends in Error.

The Argo Server reads those archived logs and artifacts back once the pods are gone
(`argo logs`, the UI's logs tab of a finished workflow), with the same `useSDKCreds`: its own
ServiceAccount's role (`server.serviceAccount` in the chart values; argoproj/argo-helm
charts/argo-workflows/templates/server/server-sa.yaml) needs `s3:GetObject` on the bucket and
`kms:Decrypt` on the data key, or every finished workflow shows no logs.

Terraform's side is read from `terraform/modules/workload-roles/main.tf` (`local.statements`,
keyed by ServiceAccount; the role is `<name_prefix>-<ServiceAccount>`) and its Pod Identity
associations (`mlops.rendering.pod_identity`), the Argo side from
`apps/upstream/argo-workflows/values-<env>.yaml` and the rendered workflow templates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from mlops.rendering import fast_yaml
from mlops.rendering.pod_identity import associated
from mlops.rendering.render import RenderedKustomization
from mlops.rendering.terraform_hcl import locals_of, unquote
from mlops.validate.objects.embedded import workflow_templates
from mlops.validate.objects.problems import Problem, resource_name
from mlops.validate.objects.violations import HINTS

ARGO_VALUES = "apps/upstream/argo-workflows/values-{env}.yaml"
WORKLOAD_ROLES = "terraform/modules/workload-roles"
ARTIFACT_PURPOSE = "argo-artifacts"
DATA_KEY = "var.data_kms_key_arn"
ARGO_NAMESPACE = "argo"
_LOCAL_REF = re.compile(r"local\.([a-z0-9_]+)")
_BUCKET_REF = re.compile(r'local\.bucket\["([a-z0-9-]+)"\]')


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """Report workflow templates whose ServiceAccount's role cannot write the artifact repository."""
    values_file = repo / ARGO_VALUES.format(env=env)
    if not values_file.is_file():
        return
    try:
        values = fast_yaml.load(values_file.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return  # mlops.validate.objects.yaml_files reports the file and line (MLOPS049)
    repository = values.get("artifactRepository") or {}
    s3 = repository.get("s3") or {}
    if not s3 or not s3.get("useSDKCreds"):
        return  # static keys (or no S3): the pod's role is not what uploads
    default_sa = (((values.get("controller") or {}).get("workflowDefaults") or {}).get("spec") or {}).get(
        "serviceAccountName", "default"
    )
    grants = _grants(repo)
    roles = _role_names(repo, env)
    expected_bucket = f"mlops-{env}-{ARTIFACT_PURPOSE}"
    yield from _check_server(values, ARGO_VALUES.format(env=env), grants, roles)
    for result in rendered:
        for doc in result.documents:
            if not isinstance(doc, dict):
                continue
            prefix, templates = workflow_templates(doc)
            spec = (doc.get("spec") or {}) if doc.get("kind") != "CronWorkflow" else {}
            spec = spec or ((doc.get("spec") or {}).get("workflowSpec") or {})
            for index, template in enumerate(templates):
                if not isinstance(template, dict) or not _runs_a_pod(template):
                    continue
                if not _uploads(template, spec, bool(repository.get("archiveLogs"))):
                    continue
                sa = template.get("serviceAccountName") or spec.get("serviceAccountName") or default_sa
                field = f"{prefix}[{index}].serviceAccountName"
                namespace = str((doc.get("metadata") or {}).get("namespace") or ARGO_NAMESPACE)
                missing = _missing(namespace, sa, roles, grants)
                if str(s3.get("bucket")) != expected_bucket:
                    missing.append(
                        f"the artifact bucket {s3.get('bucket')} is not terraform's {expected_bucket}"
                    )
                if missing:
                    yield Problem(
                        result.path,
                        resource_name(doc),
                        field,
                        f"pods run as ServiceAccount {sa}, whose IAM role cannot write the Argo artifact "
                        f"repository s3://{s3.get('bucket')} ({'; '.join(missing)}): the wait container "
                        "uploads logs and outputs with that role and the step ends in Error",
                        "MLOPS016",
                        HINTS["MLOPS016"],
                    )


def _check_server(
    values: dict[str, Any],
    values_path: str,
    grants: dict[str, set[tuple[str, str]]],
    roles: dict[tuple[str, str], str],
) -> Iterator[Problem]:
    """The Argo Server's ServiceAccount may read back what the workflow pods archived."""
    server = values.get("server") or {}
    if server.get("enabled") is False:
        return
    account = server.get("serviceAccount") or {}
    name = str(account.get("name") or "argo-workflows-server")
    field = "server.serviceAccount.name"
    role = roles.get((ARGO_NAMESPACE, name))
    if role is None:
        missing = [f"terraform associates no role with ServiceAccount {ARGO_NAMESPACE}/{name} (Pod Identity)"]
    else:
        have = grants.get(name)
        if have is None:
            missing = [f"terraform ({WORKLOAD_ROLES}) gives role {role} no policy statements"]
        else:
            missing = []
            if ("s3:GetObject", f"{ARTIFACT_PURPOSE}/*") not in have:
                missing.append(f"{role} has no s3:GetObject on {ARTIFACT_PURPOSE}/*")
            if ("kms:Decrypt", DATA_KEY) not in have:
                missing.append(f"{role} has no kms:Decrypt on the data key")
    if missing:
        yield Problem(
            values_path,
            f"ServiceAccount/{name}",
            field,
            f"the Argo Server runs as ServiceAccount {name}, whose IAM role cannot read the Argo artifact "
            f"repository ({'; '.join(missing)}): logs of finished workflows cannot be shown once their "
            "pods are gone",
            "MLOPS016",
            HINTS["MLOPS016"],
        )


def _runs_a_pod(template: dict[str, Any]) -> bool:
    return any(isinstance(template.get(k), dict) for k in ("container", "script", "containerSet"))


def _uploads(template: dict[str, Any], spec: dict[str, Any], archive_logs: bool) -> bool:
    """Whether the wait container writes to the artifact repository for this template."""
    location = template.get("archiveLocation") or {}
    logs = location.get("archiveLogs", spec.get("archiveLogs", archive_logs))
    outputs = (template.get("outputs") or {}).get("artifacts") or []
    return bool(logs) or bool(outputs)


def _role_names(repo: Path, env: str) -> dict[tuple[str, str], str]:
    """(namespace, ServiceAccount) -> IAM role name, for every Pod Identity association terraform makes."""
    return {(namespace, account): f"mlops-{env}-{account}" for namespace, account in associated(repo)}


def _missing(
    namespace: str, sa: str, roles: dict[tuple[str, str], str], grants: dict[str, set[tuple[str, str]]]
) -> list[str]:
    role = roles.get((namespace, sa))
    if role is None:
        return [f"terraform associates no role with ServiceAccount {namespace}/{sa} (Pod Identity)"]
    if sa not in grants:
        return [f"terraform ({WORKLOAD_ROLES}) gives role {role} no policy statements"]
    have = grants[sa]
    missing = []
    if ("s3:PutObject", f"{ARTIFACT_PURPOSE}/*") not in have:
        missing.append(f"{role} has no s3:PutObject on {ARTIFACT_PURPOSE}/*")
    if ("kms:GenerateDataKey", DATA_KEY) not in have:
        missing.append(f"{role} has no kms:GenerateDataKey on the data key")
    return missing


def _grants(repo: Path) -> dict[str, set[tuple[str, str]]]:
    """ServiceAccount -> {(action, resource)} of terraform's workload roles.

    A resource is `<bucket purpose>` / `<bucket purpose>/*` for `local.bucket["..."]`, the
    expression text otherwise (`var.data_kms_key_arn`).
    """
    scope = locals_of(repo / WORKLOAD_ROLES)
    grants: dict[str, set[tuple[str, str]]] = {}
    for sa, statements in (scope.get("statements") or {}).items():
        have: set[tuple[str, str]] = set()
        for statement in statements or []:
            actions = _actions(statement.get("actions"), scope)
            for resource in statement.get("resources") or []:
                target = _resource(str(resource))
                have.update((action, target) for action in actions)
        grants[str(unquote(sa))] = have
    return grants


def _actions(expression: Any, scope: dict[str, Any]) -> list[str]:
    if isinstance(expression, list):
        return [str(unquote(a)) for a in expression]
    found: list[str] = []
    for name in _LOCAL_REF.findall(str(expression)):
        value = scope.get(name)
        if isinstance(value, list):
            found.extend(str(unquote(a)) for a in value)
    return found


def _resource(expression: str) -> str:
    text = unquote(expression)
    bucket = _BUCKET_REF.search(text)
    if bucket:
        return bucket.group(1) + ("/*" if text.rstrip('"').endswith("/*") else "")
    return text.removeprefix("${").removesuffix("}")
