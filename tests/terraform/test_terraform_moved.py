"""`terraform plan` over a state written before modules/pod-identity-role: the moved blocks move
every Pod Identity role, policy and association, and nothing of them is destroyed or recreated.

A throwaway root calls the five modules that used to write their own Pod Identity roles with
dev's values; its state holds those roles, inline policies, policy attachments and associations
at their old addresses, with the attributes that force a replacement (names, cluster,
namespace, ServiceAccount, role) as the old code set them. The plan runs offline against the
local provider mirror (as test_terraform_validate.py) with `-refresh=false`, and STS and
Route 53 answered by a moto server (the data sources the modules read: the caller identity,
the environment's zone). A missing moved block shows as a delete and a create; a wrong one as a
planning error.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tfrepo import MODULES

pytestmark = pytest.mark.slow

MIRROR = Path(os.environ.get("TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
PROVIDER = 'provider["registry.terraform.io/hashicorp/aws"]'
ACCOUNT = "123456789012"  # moto's account
PREFIX = "mlops-dev"
DOMAIN = "dev.mlops.example.com"
TAGS = {"env": "dev"}

WORKLOAD_ACCOUNTS = {
    "mlflow": "mlflow",
    "vllm": "models",
    "train-and-promote": "argo",
    "trainer": "argo",
    "kaniko": "argo",
    "buildkit": "buildkit",
    "git-bot": "argo",
    "argo-server": "argo",
    "external-secrets": "external-secrets",
}
ADDONS = {
    "vpc-cni": ("aws-node", "AmazonEKS_CNI_Policy"),
    "aws-ebs-csi-driver": ("ebs-csi-controller-sa", "service-role/AmazonEBSCSIDriverPolicy"),
}
KINDS = {
    "aws_iam_role",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_eks_pod_identity_association",
}

HARNESS = """
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws" }}
  }}
}}

provider "aws" {{
  region                      = "us-west-2"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  endpoints {{
    sts     = "{endpoint}"
    route53 = "{endpoint}"
  }}
}}

locals {{
  tags = {{ env = "dev" }}
}}

module "workload_roles" {{
  source              = "{modules}/workload-roles"
  name_prefix         = "{prefix}"
  env                 = "dev"
  cluster_name        = "{prefix}"
  bucket_arns = {{
    for p in ["datasets", "mlflow-artifacts", "model-weights", "argo-artifacts"] :
    p => "arn:aws:s3:::{prefix}-${{p}}"
  }}
  data_kms_key_arn    = "arn:aws:kms:us-west-2:{account}:key/data"
  ecr_repository_arns = {{ trainer = "arn:aws:ecr:us-west-2:{account}:repository/mlops/trainer" }}
  secret_kms_key_arns = ["arn:aws:kms:us-west-2:{account}:key/db"]
  tags                = local.tags
}}

module "karpenter" {{
  source                          = "{modules}/karpenter"
  cluster_name                    = "{prefix}"
  name_prefix                     = "{prefix}"
  namespace                       = "karpenter"
  service_account                 = "karpenter"
  create_spot_service_linked_role = false
  tags                            = local.tags
}}

module "ingress" {{
  source       = "{modules}/ingress"
  name_prefix  = "{prefix}"
  cluster_name = "{prefix}"
  domain       = "{domain}"
  tags         = local.tags
}}

module "container_logs" {{
  source         = "{modules}/container-logs"
  env            = "dev"
  name_prefix    = "{prefix}"
  cluster_name   = "{prefix}"
  retention_days = 30
  tags           = local.tags
}}

module "eks" {{
  source                            = "{modules}/eks"
  cluster_name                      = "{prefix}"
  kubernetes_version                = "1.35"
  subnet_ids                        = ["subnet-a", "subnet-b"]
  endpoint_public_access            = false
  public_access_cidrs               = []
  private_access_cidrs              = []
  private_access_security_group_ids = []
  admin_principal_arns              = []
  log_retention_days                = 365
  tags                              = local.tags
  system_node_group = {{
    instance_types = ["m7i.large"]
    min_size       = 2
    max_size       = 3
    desired_size   = 2
    disk_size_gib  = 50
  }}
  addon_versions = {{
    vpc-cni                = "v1.21.1-eksbuild.3"
    kube-proxy             = "v1.35.3-eksbuild.2"
    eks-pod-identity-agent = "v1.3.10-eksbuild.2"
    coredns                = "v1.13.2-eksbuild.4"
    aws-ebs-csi-driver     = "v1.56.0-eksbuild.1"
  }}
}}
"""


def _role(name: str) -> dict[str, Any]:
    return {
        "id": name,
        "name": name,
        "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        "path": "/",
        "assume_role_policy": "{}",
        "max_session_duration": 3600,
        "force_detach_policies": False,
        "tags": TAGS,
        "tags_all": TAGS,
    }


def _policy(role: str, name: str) -> dict[str, Any]:
    return {"id": f"{role}:{name}", "name": name, "role": role, "policy": "{}"}


def _association(namespace: str, account: str, role: str) -> dict[str, Any]:
    return {
        "id": f"a-{account},{PREFIX}",
        "association_id": f"a-{account}",
        "association_arn": f"arn:aws:eks:us-west-2:{ACCOUNT}:podidentityassociation/{PREFIX}/a-{account}",
        "cluster_name": PREFIX,
        "namespace": namespace,
        "service_account": account,
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
        "tags": TAGS,
        "tags_all": TAGS,
    }


def _attachment(role: str, policy: str) -> dict[str, Any]:
    arn = f"arn:aws:iam::aws:policy/{policy}"
    return {"id": f"{role}-{policy}", "role": role, "policy_arn": arn}


def old_state() -> dict[tuple[str, str, str, str | None], dict[str, Any]]:
    """(module, type, name, key) -> attributes: the objects as the code before the module kept them."""
    state: dict[tuple[str, str, str, str | None], dict[str, Any]] = {}
    for account, namespace in WORKLOAD_ACCOUNTS.items():
        role = f"{PREFIX}-{account}"
        state[("module.workload_roles", "aws_iam_role", "workload", account)] = _role(role)
        state[("module.workload_roles", "aws_iam_role_policy", "workload", account)] = _policy(
            role, "workload"
        )
        association = _association(namespace, account, role)
        state[("module.workload_roles", "aws_eks_pod_identity_association", "workload", account)] = (
            association
        )
    role = f"{PREFIX}-karpenter"
    state[("module.karpenter", "aws_iam_role", "controller", None)] = _role(role)
    state[("module.karpenter", "aws_iam_role_policy", "controller", None)] = _policy(
        role, "karpenter-controller"
    )
    association = _association("karpenter", "karpenter", role)
    state[("module.karpenter", "aws_eks_pod_identity_association", "controller", None)] = association
    for controller, policy in (
        ("aws-load-balancer-controller", "load_balancer_controller"),
        ("external-dns", "external_dns"),
    ):
        role = f"{PREFIX}-{controller}"
        state[("module.ingress", "aws_iam_role", "controller", controller)] = _role(role)
        state[("module.ingress", "aws_iam_role_policy", policy, None)] = _policy(role, controller)
        association = _association("kube-system", controller, role)
        state[("module.ingress", "aws_eks_pod_identity_association", "controller", controller)] = association
    role = f"{PREFIX}-fluent-bit"
    state[("module.container_logs", "aws_iam_role", "fluent_bit", None)] = _role(role)
    state[("module.container_logs", "aws_iam_role_policy", "fluent_bit", None)] = _policy(role, "fluent-bit")
    association = _association("kube-system", "fluent-bit", role)
    state[("module.container_logs", "aws_eks_pod_identity_association", "fluent_bit", None)] = association
    for addon, (_, policy) in ADDONS.items():
        role = f"{PREFIX}-{addon}"
        state[("module.eks", "aws_iam_role", "addon", addon)] = _role(role)
        state[("module.eks", "aws_iam_role_policy_attachment", "addon", addon)] = _attachment(role, policy)
    return state


def _address(module: str, rtype: str, name: str, key: str | None) -> str:
    return f"{module}.{rtype}.{name}" + (f'["{key}"]' if key is not None else "")


def _state_file(state: dict[tuple[str, str, str, str | None], dict[str, Any]]) -> dict[str, Any]:
    resources: dict[tuple[str, str, str], dict[str, Any]] = {}
    for (module, rtype, name, key), attributes in state.items():
        resource = resources.setdefault(
            (module, rtype, name),
            {
                "module": module,
                "mode": "managed",
                "type": rtype,
                "name": name,
                "provider": PROVIDER,
                "instances": [],
            },
        )
        instance: dict[str, Any] = {"schema_version": 0, "attributes": attributes, "sensitive_attributes": []}
        if key is not None:
            instance["index_key"] = key
            resource["each"] = "map"
        resource["instances"].append(instance)
    return {
        "version": 4,
        "terraform_version": "1.11.4",
        "serial": 1,
        "lineage": str(uuid.uuid4()),
        "outputs": {},
        "resources": list(resources.values()),
    }


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server_module = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # ingress looks the environment's zone up (created by hand in a real account).
    route53 = boto3.client(
        "route53", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )  # fmt: skip
    route53.create_hosted_zone(Name=DOMAIN, CallerReference=str(uuid.uuid4()))
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> dict[str, Any]:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform binary not on PATH")
    if not (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.skip(f"no local provider mirror with hashicorp/aws at {MIRROR} (set $TF_PLUGIN_MIRROR)")
    root = tmp_path_factory.mktemp("moved")
    # A relative source, as in test_terraform_validate.py: the modules call ../pod-identity-role.
    modules = os.path.relpath(MODULES, root)
    harness = HARNESS.format(
        endpoint=moto_endpoint, modules=modules, prefix=PREFIX, account=ACCOUNT, domain=DOMAIN
    )
    (root / "main.tf").write_text(harness)
    (root / "terraform.tfstate").write_text(json.dumps(_state_file(old_state())))
    env = {
        **os.environ,
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "TF_CLI_CONFIG_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    commands = [
        ["init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={MIRROR}"],
        ["plan", "-refresh=false", "-input=false", "-no-color", "-lock=false", "-out=plan.bin"],
    ]
    for command in commands:
        run = subprocess.run(
            [terraform, *command], cwd=root, capture_output=True, text=True, env=env, timeout=600
        )
        assert run.returncode == 0, f"terraform {command[0]}:\n{run.stdout}\n{run.stderr}"
    shown = subprocess.run(
        [terraform, "show", "-json", "plan.bin"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


def test_every_old_role_policy_and_association_moves(plan: dict[str, Any]) -> None:
    moved = {
        change["previous_address"]: (change["address"], change["change"]["actions"])
        for change in plan["resource_changes"]
        if change.get("previous_address")
    }
    problems = []
    for module, rtype, name, key in old_state():
        old = _address(module, rtype, name, key)
        if old not in moved:
            problems.append(f"{old}: no moved block takes it to a new address")
        elif moved[old][1] not in (["no-op"], ["update"]):
            problems.append(f"{old} -> {moved[old][0]}: {moved[old][1]}")
    assert not problems, "\n".join(problems)
    # Each lands in a call of modules/pod-identity-role inside the module it came from.
    assert all(new.count("module.") == 2 for new, _ in moved.values()), moved


def test_no_pod_identity_object_is_destroyed_or_recreated(plan: dict[str, Any]) -> None:
    removed = [
        f"{change['address']}: {change['change']['actions']}"
        for change in plan["resource_changes"]
        if change["type"] in KINDS and "delete" in change["change"]["actions"]
    ]
    assert not removed, "\n".join(removed)


def test_the_workload_roles_keep_their_name_description_tags_and_session_length(plan: dict[str, Any]) -> None:
    """What the module plans for the workload roles is what workload-roles set before the move
    (the old state here holds placeholders, so the plan shows them as updates)."""
    for change in plan["resource_changes"]:
        if change["type"] != "aws_iam_role" or not change["address"].startswith(
            "module.workload_roles.module."
        ):
            continue
        after = change["change"]["after"]
        account = change["index"] if "index" in change else change["address"].split('"')[1]
        assert after["name"] == f"{PREFIX}-{account}"
        assert (
            after["description"]
            == f"Pod Identity role of ServiceAccount {WORKLOAD_ACCOUNTS[account]}/{account}"
        )
        assert after["max_session_duration"] == 3600
        assert after["tags"] == {
            **TAGS,
            "kubernetes-namespace": WORKLOAD_ACCOUNTS[account],
            "kubernetes-service-account": account,
        }
