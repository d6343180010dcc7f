"""MLOPS141-142: terraform's Pod Identity associations and the ServiceAccounts the tree renders agree.

EKS Pod Identity maps a (namespace, ServiceAccount) to an IAM role in the EKS API
(`aws_eks_pod_identity_association`); nothing on the ServiceAccount says so, so a renamed
ServiceAccount or a pod moved to another one silently loses its AWS credentials: the
agent answers only pods whose ServiceAccount has an association
(https://docs.aws.amazon.com/eks/latest/userguide/pod-identities.html).

- MLOPS141: every association names a ServiceAccount the environment has: a rendered
  ServiceAccount, or one an upstream chart creates from `serviceAccount.name` in
  `apps/upstream/<chart>/values-<env>.yaml` (in the chart's namespace from
  `apps/upstream-charts.yaml`). An association whose namespace or ServiceAccount the reader
  cannot evaluate (`mlops.rendering.pod_identity`) is reported too: it cannot be checked.
- MLOPS142: every pod that talks to AWS (an `AWS_*` variable, an `s3://` URI in its command,
  arguments, script or environment, a ConfigMap it loads with `envFrom` holding either, or an
  `aws <service>` CLI call) runs as a ServiceAccount with an association; and a
  ServiceAccount annotated `eks.amazonaws.com/role-arn` (IRSA) is a problem, since every role
  trusts only `pods.eks.amazonaws.com` (modules/pod-identity-role) and the SDKs try the
  annotation's web identity first.
  Workflow pods are MLOPS016's (their ServiceAccount's role must also write the artifacts).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from mlops.rendering import fast_yaml
from mlops.rendering.pod_identity import WORKLOAD_ROLES, read
from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects.embedded import embedded_manifests
from mlops.validate.objects.pod_specs import Pod, pods
from mlops.validate.objects.problems import Problem, field_path, resource_name
from mlops.validate.objects.violations import HINTS

ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
CHARTS = "apps/upstream-charts.yaml"
CHART_VALUES = "apps/upstream/{chart}/values-{env}.yaml"
WORKFLOW_KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")
_AWS_CLI = re.compile(r"(^|[\s;|&(`$])aws\s+(s3|s3api|ecr|sts|secretsmanager|ssm|sqs|ec2|eks|kms)\b")


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """Report associations without a ServiceAccount and AWS-calling pods without an association."""
    reading = read(repo)
    for unresolved in reading.unresolved:
        yield Problem(
            unresolved.file,
            unresolved.resource,
            unresolved.field,
            f"{unresolved.expression} cannot be evaluated (mlops validate follows literals, each.*, "
            "local.*, var.* and the arguments of local module calls, nothing else), so this "
            f"association's ServiceAccount cannot be checked against {env}",
            "MLOPS141",
            HINTS["MLOPS141"],
        )
    found = reading.associations
    if not found:
        return  # no Pod Identity in this repository: nothing to agree with
    accounts = _rendered_accounts(rendered) | set(_chart_accounts(repo, env))
    for association in found:
        if (association.namespace, association.service_account) not in accounts:
            yield Problem(
                association.file,
                association.resource,
                "service_account",
                f"associates ServiceAccount {association.namespace}/{association.service_account} with an "
                f"IAM role, but {env} renders no such ServiceAccount (nor does a chart's values create it): "
                "the role reaches no pod, and the pods it was meant for get no AWS credentials",
                "MLOPS141",
                HINTS["MLOPS141"],
            )
    yield from _unassociated(repo, rendered, {(a.namespace, a.service_account) for a in found})


def _unassociated(
    repo: Path, rendered: Sequence[RenderedKustomization], associated: set[tuple[str, str]]
) -> Iterator[Problem]:
    config_maps = _config_maps(rendered)
    for result in rendered:
        for doc in result.documents:
            if not isinstance(doc, dict):
                continue
            namespace = str((doc.get("metadata") or {}).get("namespace") or "default")
            if doc.get("kind") == "ServiceAccount":
                yield from _leftover_irsa(result.path, doc, namespace, associated)
            if doc.get("kind") not in WORKFLOW_KINDS:
                for pod in pods(doc):
                    reason = _aws_use(pod, namespace, config_maps)
                    yield from _pod(result.path, resource_name(doc), namespace, pod, reason, associated)
            for embedded in embedded_manifests(doc):
                if embedded.document is None:
                    continue
                inner = str((embedded.document.get("metadata") or {}).get("namespace") or namespace)
                name = f"{resource_name(embedded.document)} (in {resource_name(doc)} {embedded.field})"
                for pod in pods(embedded.document):
                    reason = _aws_use(pod, inner, config_maps)
                    yield from _pod(result.path, name, inner, pod, reason, associated)


def _pod(
    file: str, resource: str, namespace: str, pod: Pod, reason: str | None, associated: set[tuple[str, str]]
) -> Iterator[Problem]:
    account = pod.service_account or "default"
    if reason is None or (namespace, account) in associated:
        return
    yield Problem(
        file,
        resource,
        field_path([*pod.path, "serviceAccountName"]),
        f"the pod calls AWS ({reason}) as ServiceAccount {namespace}/{account}, which no Pod Identity "
        f"association in terraform ({WORKLOAD_ROLES}) names: the pod gets no AWS credentials",
        "MLOPS142",
        HINTS["MLOPS142"],
    )


def _leftover_irsa(
    file: str, doc: dict[str, Any], namespace: str, associated: set[tuple[str, str]]
) -> Iterator[Problem]:
    name = str((doc.get("metadata") or {}).get("name"))
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    if ROLE_ANNOTATION not in annotations:
        return
    state = "has a Pod Identity association" if (namespace, name) in associated else "has no association"
    yield Problem(
        file,
        resource_name(doc),
        f"metadata.annotations.{ROLE_ANNOTATION}",
        f"ServiceAccount {namespace}/{name} {state} but still carries {ROLE_ANNOTATION}: terraform's role "
        "trusts only pods.eks.amazonaws.com (modules/pod-identity-role; no role trusts IRSA), and the SDKs "
        "try the annotation's web identity first, so every AWS call is refused",
        "MLOPS142",
        HINTS["MLOPS142"],
    )


def _aws_use(pod: Pod, namespace: str, config_maps: dict[tuple[str, str], dict[str, Any]]) -> str | None:
    """Why `pod` talks to AWS (its first container that shows it), or None."""
    for container in pod.containers:
        spec = container.spec
        name = spec.get("name")
        env = [v for v in spec.get("env") or [] if isinstance(v, dict)]
        for variable in env:
            if str(variable.get("name", "")).startswith("AWS_"):
                return f"{name} sets {variable['name']}"
        texts = [*(spec.get("command") or []), *(spec.get("args") or []), spec.get("source")]
        texts += [v.get("value") for v in env]
        for text in texts:
            if isinstance(text, str) and "s3://" in text:
                return f"{name} names an s3:// URI"
            if isinstance(text, str) and (call := _AWS_CLI.search(text)):
                return f"{name} runs aws {call.group(2)}"
        for source in spec.get("envFrom") or []:
            ref = (source or {}).get("configMapRef") or {}
            data = config_maps.get((namespace, str(ref.get("name"))), {})
            for key, value in data.items():
                if str(key).startswith("AWS_") or (isinstance(value, str) and "s3://" in value):
                    return f"{name} loads {key} from ConfigMap {ref.get('name')}"
    return None


def _config_maps(rendered: Sequence[RenderedKustomization]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for result in rendered:
        for doc in result.documents:
            if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
                metadata = doc.get("metadata") or {}
                key = (str(metadata.get("namespace") or "default"), str(metadata.get("name")))
                found[key] = doc.get("data") or {}
    return found


def _rendered_accounts(rendered: Sequence[RenderedKustomization]) -> set[tuple[str, str]]:
    return {
        (str(doc["metadata"].get("namespace") or "default"), str(doc["metadata"].get("name")))
        for result in rendered
        for doc in result.documents
        if isinstance(doc, dict)
        and doc.get("kind") == "ServiceAccount"
        and isinstance(doc.get("metadata"), dict)
    }


def _chart_accounts(repo: Path, env: str) -> Iterator[tuple[str, str]]:
    """(namespace, name) of each `serviceAccount: {name: ...}` block of an upstream chart's values."""
    for chart, namespace in _chart_namespaces(repo).items():
        path = repo / CHART_VALUES.format(chart=chart, env=env)
        try:
            values = fast_yaml.load(path.read_text()) if path.is_file() else None
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # MLOPS049 reports the file
        stack: list[Any] = [values]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                account = node.get("serviceAccount")
                created = isinstance(account, dict) and account.get("create", True) is not False
                if created and account.get("name"):
                    yield namespace, str(account["name"])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)


def _chart_namespaces(repo: Path) -> dict[str, str]:
    """Chart -> namespace, from the list generator elements of apps/upstream-charts.yaml."""
    path = repo / CHARTS
    try:
        docs = list(fast_yaml.load_all(path.read_text())) if path.is_file() else []
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    found: dict[str, str] = {}
    stack: list[Any] = docs
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("chart"), str) and isinstance(node.get("namespace"), str):
                found[node["chart"]] = node["namespace"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found
