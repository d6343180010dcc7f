"""EKS add-ons never float: each is pinned per environment, and nothing resolves a version at plan time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tfrepo import ENVS, MODULES, TERRAFORM, locals_of, parse, tf_files, tfvars, unquote

EKS = MODULES / "eks"
PINNED = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")


def floating_addons(root: Path) -> list[str]:
    """Every place under `root` where an EKS add-on version is chosen by AWS instead of by us.

    `data "aws_eks_addon_version"` answers with the newest (most_recent) or the default
    version of the day, and an `aws_eks_addon` without `addon_version` takes the default:
    either way a plain `terraform apply` upgrades vpc-cni or CoreDNS in prod when AWS
    publishes a build (registry.terraform.io/providers/hashicorp/aws: eks_addon_version,
    eks_addon).
    """
    problems = []
    for path in tf_files(root):
        where = path.relative_to(root)
        parsed = parse(path)
        for block in parsed.get("data", []):
            for name in block.get('"aws_eks_addon_version"', {}):
                problems.append(
                    f"{where}: data.aws_eks_addon_version.{unquote(name)} resolves a version at plan time"
                )
        for block in parsed.get("resource", []):
            for name, body in block.get('"aws_eks_addon"', {}).items():
                version = str(body.get("addon_version", ""))
                if not version or "data.aws_eks_addon_version" in version:
                    problems.append(
                        f"{where}: aws_eks_addon.{unquote(name)}: addon_version not pinned by a variable"
                    )
    return sorted(set(problems))


def test_no_eks_addon_floats() -> None:
    assert not floating_addons(TERRAFORM), "\n".join(floating_addons(TERRAFORM))


def test_a_most_recent_lookup_is_reported(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        'data "aws_eks_addon_version" "this" {\n  addon_name = "vpc-cni"\n'
        '  kubernetes_version = "1.35"\n  most_recent = true\n}\n'
        'resource "aws_eks_addon" "cni" {\n  cluster_name = "x"\n  addon_name = "vpc-cni"\n'
        "  addon_version = data.aws_eks_addon_version.this.version\n}\n"
        'resource "aws_eks_addon" "proxy" {\n  cluster_name = "x"\n  addon_name = "kube-proxy"\n}\n'
    )
    assert floating_addons(tmp_path) == [
        "main.tf: aws_eks_addon.cni: addon_version not pinned by a variable",
        "main.tf: aws_eks_addon.proxy: addon_version not pinned by a variable",
        "main.tf: data.aws_eks_addon_version.this resolves a version at plan time",
    ]


def _installed_addons() -> set[str]:
    local = locals_of(EKS)
    return {unquote(a) for a in [*local["addons_before_nodes"], *local["addons_after_nodes"]]}


@pytest.mark.parametrize("env", ENVS)
def test_every_installed_addon_is_pinned_in_the_tfvars(env: str) -> None:
    versions = tfvars(env)["eks_addon_versions"]
    assert set(versions) == _installed_addons(), (
        f"envs/{env}/terraform.tfvars eks_addon_versions must name exactly the add-ons modules/eks installs"
    )
    loose = {name: v for name, v in versions.items() if not PINNED.match(v)}
    assert not loose, f"envs/{env}: not an exact vX.Y.Z-eksbuild.N version: {loose}"


@pytest.mark.parametrize("env", ENVS)
def test_kube_proxy_matches_the_kubernetes_minor(env: str) -> None:
    # kube-proxy's add-on version is the Kubernetes version it was built for (EKS user
    # guide, managing-kube-proxy): a 1.34 build on a 1.35 cluster is a skew to fix.
    values = tfvars(env)
    assert values["eks_addon_versions"]["kube-proxy"].startswith(f"v{values['kubernetes_version']}."), values[
        "eks_addon_versions"
    ]


def test_the_module_refuses_an_unpinned_set() -> None:
    # The variable's own validation is the check `terraform plan` runs on any tfvars.
    variable = next(
        body
        for block in parse(EKS / "variables.tf")["variable"]
        for name, body in block.items()
        if unquote(name) == "addon_versions"
    )
    condition = variable["validation"][0]["condition"]
    assert all(name in condition for name in _installed_addons())
    assert "eksbuild" in condition


def test_the_system_nodes_wait_for_the_networking_addons() -> None:
    # The node role lacks AmazonEKS_CNI_Policy (aws-node uses the vpc-cni add-on's Pod Identity role),
    # so a node that starts before the add-on and its role's policy never gets pod networking
    # (terraform-aws-modules/terraform-aws-eks creates `before_compute` add-ons first).
    group = next(
        body
        for block in parse(EKS / "main.tf")["resource"]
        for name, body in block.get('"aws_eks_node_group"', {}).items()
        if unquote(name) == "system"
    )
    waits = {str(item).strip("${}") for item in group["depends_on"]}
    # module.addon_role: the add-ons' roles and their policy attachments (modules/pod-identity-role).
    assert {"aws_eks_addon.before_nodes", "module.addon_role"} <= waits, waits


def test_the_service_cidr_is_pinned() -> None:
    # The kubernetes Service address, which the NetworkPolicies name, follows from this range
    # (docs/security.md, peer api-server); left to EKS it is 10.100.0.0/16 or 172.20.0.0/16.
    cluster = next(
        body
        for block in parse(EKS / "main.tf")["resource"]
        for name, body in block.get('"aws_eks_cluster"', {}).items()
        if unquote(name) == "this"
    )
    assert (
        str(cluster["kubernetes_network_config"][0]["service_ipv4_cidr"]).strip("${}")
        == "var.service_ipv4_cidr"
    )
