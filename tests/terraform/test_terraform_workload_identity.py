"""Terraform and the GitOps tree agree: IAM roles <-> ServiceAccounts, account ids, resource names.

Terraform's side is read with python-hcl2 and its naming expressions are evaluated with
the env's tfvars; the tree's side is what `mlops.rendering.render` renders plus the upstream chart
values in apps/upstream/*/values-<env>.yaml. Names on both sides go through
`platform_name`, the platform's one naming rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlops.rendering.pod_identity import associated
from mlops.rendering.terraform_hcl import parse
from tfrepo import (
    ENVS,
    MODULES,
    PLATFORM,
    REPO_ROOT,
    TERRAFORM,
    blocks,
    evaluate,
    for_each_keys,
    locals_of,
    module_scope,
    module_source,
    platform_name,
    platform_secret,
    resources,
    tf_files,
    tfvars,
    unquote,
)

ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
# The one module that writes the Pod Identity trust, role and association.
ROLE_MODULE = MODULES / "pod-identity-role"
ROLE_ARN = re.compile(r"^arn:aws:iam::(?P<account>\d{12}):role/(?P<name>[\w+=,.@-]+)$")

# The contract (BRIEF): the ServiceAccounts that have AWS roles, bucket and secret purposes.
CONTRACT_SERVICE_ACCOUNTS = {
    ("mlflow", "mlflow"),
    ("models", "vllm"),
    ("argo", "train-and-promote"),
    ("argo", "trainer"),
    ("argo", "kaniko"),
    ("buildkit", "buildkit"),
    ("argo", "git-bot"),
    ("argo", "argo-server"),
    ("external-secrets", "external-secrets"),
    ("karpenter", "karpenter"),
}
# The front door's and the logs' controllers (modules/ingress, modules/container-logs): Pod
# Identity roles of their own, outside the workload contract.
KUBE_SYSTEM_SERVICE_ACCOUNTS = {
    ("kube-system", "aws-load-balancer-controller"),
    ("kube-system", "external-dns"),
    ("kube-system", "fluent-bit"),
}
BUCKET_PURPOSES = ("datasets", "mlflow-artifacts", "model-weights", "argo-artifacts")
SECRET_PURPOSES = (
    "mlflow-db",
    "git-bot-token",
    "gateway-api-keys",
    "vllm-api-key",
    "alertmanager-receivers",
    "grafana-admin",
    "mlflow-auth",
    "mlflow-trainer",
    "mlflow-git-bot",
    "oidc-argo-workflows",
    "oidc-grafana",
)


# ---------------------------------------------------------------- terraform's side


def _call(module: str) -> str:
    """The name of the module block in the platform root whose source is modules/<module>."""
    calls = [c for c in blocks(PLATFORM, "module") if module_source(c).name == module]
    assert len(calls) == 1, f"platform/ must call modules/{module} exactly once, calls: {calls}"
    return calls[0]


def _named(env: str, module: str, rtype: str, name: str, attribute: str = "name") -> dict[str, str]:
    """Evaluate `attribute` of resource rtype.name in a module for each of its for_each keys ('' if none)."""
    call = _call(module)
    directory = module_source(call)
    scope = module_scope(env, call)
    body = resources(directory)[(rtype, name)]
    keys = for_each_keys(body["for_each"], scope, directory) if "for_each" in body else [""]
    return {key: str(evaluate(body[attribute], {**scope, "each.key": key})) for key in keys}


@dataclass(frozen=True)
class RoleCall:
    """One instance of a modules/pod-identity-role call: its role and ServiceAccount, evaluated."""

    caller: str
    """`<platform call>.<module call>["<key>"]`."""
    name: str
    namespace: str
    service_account: str
    associate: bool


def role_calls(env: str) -> list[RoleCall]:
    """Every instance of every modules/pod-identity-role call the platform's modules make."""
    found = []
    for call in blocks(PLATFORM, "module"):
        directory = module_source(call)
        scope = module_scope(env, call)
        for name, body in blocks(directory, "module").items():
            if module_source(name, directory) != ROLE_MODULE:
                continue
            keys: list[str | None] = (
                list(for_each_keys(body["for_each"], scope, directory)) if "for_each" in body else [None]
            )
            items = _for_each_items(body.get("for_each"), directory)
            for key in keys:
                instance = dict(scope)
                if key is not None:
                    instance["each.key"] = key
                    value = items[key]
                    if isinstance(value, dict):
                        instance.update({f"each.value.{unquote(k)}": unquote(v) for k, v in value.items()})
                    else:
                        instance["each.value"] = unquote(value)
                found.append(
                    RoleCall(
                        f'{call}.{name}["{key}"]' if key is not None else f"{call}.{name}",
                        str(evaluate(body["name"], instance)),
                        str(evaluate(body["namespace"], instance)),
                        str(evaluate(body["service_account"], instance)),
                        body.get("associate", True) is not False,
                    )
                )
    return found


def _for_each_items(expression: str | None, directory: Path) -> dict[str, Any]:
    """Key -> value of a `for_each` over a local map; empty for anything else."""
    match = re.fullmatch(r"\$\{local\.([a-z_]+)\}", expression or "")
    value = locals_of(directory)[match.group(1)] if match else None
    return {unquote(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def terraform_roles(env: str) -> dict[tuple[str, str], str]:
    """(namespace, ServiceAccount) -> IAM role name, for the workload and Karpenter roles."""
    return {
        (role.namespace, role.service_account): role.name
        for role in role_calls(env)
        if role.caller.startswith(("workload_roles.", "karpenter."))
    }


def _pod_identity_subjects(statement: dict[str, Any], scope: dict[str, Any]) -> set[str]:
    """`<namespace>:<ServiceAccount>` a Pod Identity trust statement admits (its session-tag conditions)."""
    tags: dict[str, set[str]] = {}
    for condition in statement.get("condition", []):
        variable = unquote(condition["variable"])
        if variable.startswith("aws:RequestTag/kubernetes-"):
            tags[variable.removeprefix("aws:RequestTag/")] = {
                str(evaluate(v, scope)) for v in condition["values"]
            }
    assert set(tags) == {"kubernetes-namespace", "kubernetes-service-account"}, tags
    return {f"{ns}:{sa}" for ns in tags["kubernetes-namespace"] for sa in tags["kubernetes-service-account"]}


def _pod_identity_statement() -> dict[str, Any]:
    """The one statement of modules/pod-identity-role's trust: Pod Identity, with session tags."""
    policy = resources(ROLE_MODULE, "data")[("aws_iam_policy_document", "trust")]
    assert "dynamic" not in policy and len(policy["statement"]) == 1, policy
    statement = policy["statement"][0]
    assert [unquote(i) for i in statement["principals"][0]["identifiers"]] == ["pods.eks.amazonaws.com"]
    assert sorted(unquote(a) for a in statement["actions"]) == ["sts:AssumeRole", "sts:TagSession"]
    return statement


def terraform_trusted_subjects(env: str) -> set[str]:
    """The `<namespace>:<ServiceAccount>` pairs the workload and Karpenter roles' trust admits."""
    statement = _pod_identity_statement()
    subjects: set[str] = set()
    for role in role_calls(env):
        if role.caller.startswith(("workload_roles.", "karpenter.")):
            scope = {"var.namespace": role.namespace, "var.service_account": role.service_account}
            subjects |= _pod_identity_subjects(statement, scope)
    return subjects


def terraform_buckets(env: str) -> dict[str, str]:
    """Purpose -> bucket name."""
    return _named(env, "data", "aws_s3_bucket", "data", "bucket")


def terraform_queue(env: str) -> str:
    return _named(env, "karpenter", "aws_sqs_queue", "interruption")[""]


def terraform_node_role(env: str) -> str:
    return _named(env, "karpenter", "aws_iam_role", "node")[""]


def terraform_cluster(env: str) -> str:
    return _named(env, "eks", "aws_eks_cluster", "this")[""]


def terraform_node_labels(env: str) -> dict[str, set[str]]:
    """Kubernetes node label -> values terraform puts on the managed node groups."""
    directory = module_source(_call("eks"))
    labels: dict[str, set[str]] = {}
    for (rtype, _), body in resources(directory).items():
        if rtype == "aws_eks_node_group":
            for key, value in body.get("labels", {}).items():
                labels.setdefault(unquote(key), set()).add(unquote(value))
    return labels


def terraform_secrets(env: str) -> dict[str, set[str] | None]:
    """Secrets Manager name -> JSON properties terraform writes (None: filled by hand, any shape)."""
    secrets: dict[str, set[str] | None] = {}
    for name in _named(env, "workload-roles", "aws_secretsmanager_secret", "hand_filled").values():
        secrets[name] = None
    connection = _named(env, "mlflow-db", "aws_secretsmanager_secret", "connection")[""]
    call = _call("mlflow-db")
    value = resources(module_source(call))[("aws_secretsmanager_secret_version", "connection")]
    body = re.fullmatch(r"\$\{jsonencode\(\{(.*)\}\)\}", value["secret_string_wo"], re.DOTALL)
    assert body, "the connection secret is no longer jsonencode({...}): update terraform_secrets"
    secrets[connection] = set(re.findall(r"(?:^|,)\s*(\w+)\s*=", body.group(1)))
    return secrets


# ---------------------------------------------------------------- the tree's side


def _walk(value: Any) -> Iterator[tuple[str | None, Any, dict[str, Any] | None]]:
    """Yield (key, value, parent mapping) for every node of a YAML tree."""
    stack: list[tuple[str | None, Any, dict[str, Any] | None]] = [(None, value, None)]
    while stack:
        key, node, parent = stack.pop()
        yield key, node, parent
        if isinstance(node, dict):
            stack.extend((str(k), v, node) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((key, v, parent) for v in node)


def upstream_values(env: str) -> dict[str, Any]:
    """apps/upstream/<chart>/values-<env>.yaml, chart folder -> values."""
    return {
        path.parent.name: yaml.safe_load(path.read_text()) or {}
        for path in sorted((REPO_ROOT / "apps" / "upstream").glob(f"*/values-{env}.yaml"))
    }


def _upstream_namespace(chart: str) -> str | None:
    """The namespace an upstream chart is installed into: the `namespace` next to `chart: <chart>`
    in an ApplicationSet list generator (apps/upstream-charts.yaml) or an Application's destination."""
    for path in sorted((REPO_ROOT / "apps").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for _key, node, _ in _walk(doc):
                if (
                    isinstance(node, dict)
                    and node.get("chart") == chart
                    and isinstance(node.get("namespace"), str)
                ):
                    return node["namespace"]
    return None


def tree_service_accounts(env: str, docs: list[dict[str, Any]]) -> dict[tuple[str | None, str], str]:
    """(namespace, name) -> role ARN of every ServiceAccount with an IRSA annotation.

    Rendered ServiceAccounts carry their namespace; a chart value block
    `{name: ..., annotations: {eks.amazonaws.com/role-arn: ...}}` takes the namespace of the
    chart's Application (None when apps/ does not say) and the chart folder's name when
    the block names no ServiceAccount.
    """
    found: dict[tuple[str | None, str], str] = {}
    for doc in docs:
        if doc.get("kind") == "ServiceAccount":
            metadata = doc.get("metadata", {})
            arn = (metadata.get("annotations") or {}).get(ROLE_ANNOTATION)
            if arn:
                found[(metadata.get("namespace"), metadata["name"])] = arn
    for chart, values in upstream_values(env).items():
        for key, node, parent in _walk(values):
            if (
                key == "annotations"
                and isinstance(node, dict)
                and ROLE_ANNOTATION in node
                and parent is not None
            ):
                name = parent.get("name") or chart
                found[(_upstream_namespace(chart), name)] = node[ROLE_ANNOTATION]
    return found


def _strings(docs: list[Any]) -> Iterator[tuple[str | None, str]]:
    for doc in docs:
        for key, node, _ in _walk(doc):
            if isinstance(node, str):
                yield key, node


def _everything(env: str, rendered: dict[str, list[dict[str, Any]]]) -> list[Any]:
    return [*rendered[env], *upstream_values(env).values()]


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("env", ENVS)
def test_terraform_makes_exactly_the_contract_roles(env: str) -> None:
    roles = terraform_roles(env)
    assert set(roles) == CONTRACT_SERVICE_ACCOUNTS
    for (_, sa), role in roles.items():
        assert role == platform_name(env, sa)


@pytest.mark.parametrize("env", ENVS)
def test_each_role_trusts_only_its_service_account(env: str) -> None:
    expected = {f"{ns}:{sa}" for ns, sa in terraform_roles(env)}
    assert terraform_trusted_subjects(env) == expected


@pytest.mark.parametrize("env", ENVS)
def test_every_role_has_its_pod_identity_association(env: str) -> None:
    """One association per role, naming the role's own ServiceAccount.

    mlops.rendering.pod_identity reads them. Besides the platform's roles, the front door's
    log shipper (modules/container-logs) has its association.
    """
    assert associated(REPO_ROOT) == set(terraform_roles(env)) | KUBE_SYSTEM_SERVICE_ACCOUNTS


@pytest.mark.parametrize("env", ENVS)
def test_every_pod_identity_trust_admits_only_its_associations(env: str) -> None:
    """Every Pod Identity role is one call of modules/pod-identity-role, whose one trust statement is
    pinned by the session tags to the call's ServiceAccount and to this cluster: an association made
    for any other ServiceAccount gets nothing (docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html).
    The calls that associate are exactly the associations mlops validate reads; the others are the
    EKS add-ons' roles, associated inside aws_eks_addon (pod_identity_association)."""
    statement = _pod_identity_statement()
    conditions = {unquote(c["variable"]): (unquote(c["test"]), c["values"]) for c in statement["condition"]}
    assert conditions == {
        "aws:RequestTag/kubernetes-namespace": ("StringEquals", ["${var.namespace}"]),
        "aws:RequestTag/kubernetes-service-account": ("StringEquals", ["${var.service_account}"]),
        "aws:RequestTag/eks-cluster-arn": ("StringEquals", ["${local.cluster_arn}"]),
    }
    association = resources(ROLE_MODULE)[("aws_eks_pod_identity_association", "this")]
    assert (association["namespace"], association["service_account"]) == (
        "${var.namespace}",
        "${var.service_account}",
    )
    calls = role_calls(env)
    associating = {(c.namespace, c.service_account) for c in calls if c.associate}
    assert associating == associated(REPO_ROOT)
    addons = locals_of(module_source(_call("eks")))["addon_service_accounts"]
    addon_subjects = {("kube-system", unquote(a["service_account"])) for a in addons.values()}
    assert {(c.namespace, c.service_account) for c in calls if not c.associate} == addon_subjects


def _pod_identity_writers(paths: list[Path]) -> list[Path]:
    """The files that write a `pods.eks.amazonaws.com` principal or an association themselves.

    Comments do not count (the HCL is parsed), nor moved blocks (they name old state addresses).
    """
    writers = []
    for path in paths:
        written = {kind: body for kind, body in parse(path).items() if kind != "moved"}
        associations = [b for b in written.get("resource", []) if '"aws_eks_pod_identity_association"' in b]
        if associations or "pods.eks.amazonaws.com" in str(written):
            writers.append(path)
    return writers


def test_only_pod_identity_role_writes_the_pod_identity_trust_or_an_association() -> None:
    """One copy of the trust: a module that wrote its own `pods.eks.amazonaws.com` statement or
    association would miss the next fix to it (say, a new condition key)."""
    writers = _pod_identity_writers([p for p in tf_files(TERRAFORM) if p.parent != ROLE_MODULE])
    assert not writers, f"call modules/pod-identity-role instead: {writers}"


def test_a_module_writing_its_own_trust_or_association_is_caught(tmp_path: Path) -> None:
    trust = tmp_path / "trust.tf"
    trust.write_text(
        'data "aws_iam_policy_document" "assume" {\n  statement {\n    actions = ["sts:AssumeRole"]\n'
        '    principals {\n      type        = "Service"\n      identifiers = ["pods.eks.amazonaws.com"]\n'
        "    }\n  }\n}\n"
    )
    association = tmp_path / "association.tf"
    association.write_text(
        'resource "aws_eks_pod_identity_association" "own" {\n  cluster_name    = "c"\n'
        '  namespace       = "n"\n  service_account = "s"\n  role_arn        = "arn"\n}\n'
    )
    commented = tmp_path / "commented.tf"
    commented.write_text("# trusts pods.eks.amazonaws.com through modules/pod-identity-role\nlocals {}\n")
    assert _pod_identity_writers([trust, association, commented]) == [trust, association]


def test_no_role_trusts_irsa() -> None:
    """Pod Identity everywhere: no web-identity trust and no IAM OIDC provider for one to name."""
    for path in tf_files(TERRAFORM):
        parsed = str(parse(path))
        assert "sts:AssumeRoleWithWebIdentity" not in parsed, path
        assert "aws_iam_openid_connect_provider" not in parsed, path


@pytest.mark.parametrize("env", ENVS)
def test_no_service_account_is_annotated_for_irsa(env: str, rendered) -> None:
    assert tree_service_accounts(env, rendered[env]) == {}


@pytest.mark.parametrize("env", ENVS)
def test_role_arns_name_the_environments_account(env: str, rendered) -> None:
    account = tfvars(env)["aws_account_id"]
    wrong = sorted(
        value
        for _, value in _strings(_everything(env, rendered))
        if (m := ROLE_ARN.match(value)) and m.group("account") != account
    )
    assert not wrong, f"{env}: role ARNs outside account {account} (terraform.tfvars): {wrong}"


@pytest.mark.parametrize("env", ENVS)
def test_terraform_names_follow_the_naming_rule(env: str) -> None:
    assert terraform_buckets(env) == {purpose: platform_name(env, purpose) for purpose in BUCKET_PURPOSES}
    assert terraform_queue(env) == platform_name(env, "karpenter-interruption")
    assert terraform_node_role(env) == platform_name(env, "karpenter-node")
    assert terraform_cluster(env) == f"mlops-{env}"
    assert set(terraform_secrets(env)) == {platform_secret(env, p) for p in SECRET_PURPOSES}


@pytest.mark.parametrize("env", ENVS)
def test_bucket_and_queue_names_in_the_tree_are_terraforms(env: str, rendered) -> None:
    buckets = set(terraform_buckets(env).values())
    assert buckets == {platform_name(env, p) for p in BUCKET_PURPOSES}
    problems = []
    seen_buckets = set()
    for key, value in _strings(_everything(env, rendered)):
        for bucket in re.findall(r"s3://([a-z0-9.-]+)", value):
            seen_buckets.add(bucket)
            if bucket not in buckets:
                problems.append(
                    f"s3://{bucket}: not a bucket terraform creates for {env} ({sorted(buckets)})"
                )
        if key == "bucket" and value not in buckets:
            problems.append(f"bucket: {value}: not a bucket terraform creates for {env}")
        if key == "interruptionQueue" and value != platform_name(env, "karpenter-interruption"):
            problems.append(f"interruptionQueue: {value}: terraform's queue is {terraform_queue(env)}")
        if key == "clusterName" and value != terraform_cluster(env):
            problems.append(f"clusterName: {value}: terraform's cluster is {terraform_cluster(env)}")
        if key == "karpenter.sh/discovery" and value != terraform_cluster(env):
            problems.append(f"karpenter.sh/discovery: {value}: terraform tags {terraform_cluster(env)}")
    assert seen_buckets, f"{env}: no s3:// URI rendered at all; the check would be empty"
    assert not problems, f"{env}:\n" + "\n".join(problems)


@pytest.mark.parametrize("env", ENVS)
def test_karpenter_node_classes_use_terraforms_node_role(env: str, rendered) -> None:
    classes = [d for d in rendered[env] if d.get("kind") == "EC2NodeClass"]
    assert classes, f"{env}: no EC2NodeClass rendered"
    for node_class in classes:
        assert node_class["spec"].get("role") == terraform_node_role(env), node_class["metadata"]["name"]


@pytest.mark.parametrize("env", ENVS)
def test_no_name_of_the_other_environment_leaks_in(env: str, rendered) -> None:
    other = next(e for e in ENVS if e != env)
    other_account = tfvars(other)["aws_account_id"]
    leaks = sorted(
        value
        for _, value in _strings(_everything(env, rendered))
        if re.search(rf"\bmlops-{other}-", value) or other_account in value
    )
    assert not leaks, f"{env} renders names of {other}: {leaks}"


@pytest.mark.parametrize("env", ENVS)
def test_external_secrets_read_secrets_terraform_creates(env: str, rendered) -> None:
    secrets = terraform_secrets(env)
    assert platform_secret(env, "mlflow-db") in secrets
    refs = []
    for doc in rendered[env]:
        if doc.get("kind") != "ExternalSecret":
            continue
        spec = doc["spec"]
        where = f"ExternalSecret {doc['metadata'].get('namespace')}/{doc['metadata']['name']}"
        refs += [(where, d["remoteRef"]["key"], d["remoteRef"].get("property")) for d in spec.get("data", [])]
        refs += [(where, d["extract"]["key"], None) for d in spec.get("dataFrom", []) if "extract" in d]
    assert refs, f"{env}: no ExternalSecret rendered; the check would be empty"
    problems = []
    for where, key, prop in refs:
        if key not in secrets:
            problems.append(f"{where}: {key} is not a secret terraform creates ({sorted(secrets)})")
        elif prop is not None and secrets[key] is not None and prop not in secrets[key]:
            problems.append(
                f"{where}: {key} has no property {prop!r} (terraform writes {sorted(secrets[key])})"
            )
    assert not problems, f"{env}:\n" + "\n".join(problems)


@pytest.mark.parametrize("env", ENVS)
def test_node_selectors_on_terraform_node_labels_match_a_node_group(env: str, rendered) -> None:
    labels = terraform_node_labels(env)
    assert labels, "terraform labels no node group"
    used = [(key, value) for key, value in _strings(_everything(env, rendered)) if key in labels]
    assert used, f"{env}: nothing selects the system node group; the check would be empty"
    wrong = sorted({f"{key}={value}" for key, value in used if value not in labels[key]})
    assert not wrong, f"{env}: selectors on node labels no terraform node group carries: {wrong}"


def test_the_naming_rule() -> None:
    assert platform_name("dev", "mlflow-artifacts") == "mlops-dev-mlflow-artifacts"
    assert Path(__file__).parent.joinpath("tfrepo.py").is_file()
