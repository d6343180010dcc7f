"""mlops.rendering.pod_identity on small terraform trees: what it follows, and what it refuses to guess."""

from __future__ import annotations

from pathlib import Path

from mlops.rendering.pod_identity import Association, Unresolved, read

# A stand-in for modules/pod-identity-role: the association takes everything from its caller.
ROLE_MODULE = """
variable "namespace" {
  type = string
}
variable "service_account" {
  type = string
}
variable "associate" {
  type    = bool
  default = true
}
resource "aws_eks_pod_identity_association" "this" {
  count           = var.associate ? 1 : 0
  cluster_name    = "c"
  namespace       = var.namespace
  service_account = var.service_account
  role_arn        = "arn"
}
"""


def _tree(tmp_path: Path, platform: str, modules: dict[str, str]) -> Path:
    (tmp_path / "terraform/platform").mkdir(parents=True)
    (tmp_path / "terraform/platform/main.tf").write_text(platform)
    (tmp_path / "terraform/modules/pod-identity-role").mkdir(parents=True)
    (tmp_path / "terraform/modules/pod-identity-role/main.tf").write_text(ROLE_MODULE)
    for name, text in modules.items():
        (tmp_path / "terraform/modules" / name).mkdir(parents=True)
        (tmp_path / "terraform/modules" / name / "main.tf").write_text(text)
    return tmp_path


def test_it_follows_for_each_locals_variables_and_defaults(tmp_path: Path) -> None:
    repo = _tree(
        tmp_path,
        'module "apps" {\n  source = "../modules/apps"\n  system = "kube-system"\n}\n',
        {
            "apps": """
variable "system" {
  type = string
}
variable "logs_account" {
  type    = string
  default = "fluent-bit"
}
locals {
  accounts    = { "mlflow" = "mlflow", "vllm" = "models" }
  controllers = { dns = { namespace = "kube-system", service_account = "external-dns" } }
  addons      = ["aws-node"]
}
module "workload" {
  source          = "../pod-identity-role"
  for_each        = local.accounts
  namespace       = each.value
  service_account = each.key
}
module "controller" {
  source          = "../pod-identity-role"
  for_each        = local.controllers
  namespace       = each.value.namespace
  service_account = each.value.service_account
}
module "logs" {
  source          = "../pod-identity-role"
  namespace       = var.system
  service_account = "${var.logs_account}"
}
module "addon" {
  source          = "../pod-identity-role"
  for_each        = toset(local.addons)
  namespace       = "kube-system"
  service_account = each.key
  associate       = false
}
""",
        },
    )
    reading = read(repo)
    assert reading.unresolved == []
    file = "terraform/modules/apps/main.tf"
    tail = "aws_eks_pod_identity_association.this[0]"
    assert sorted(reading.associations, key=lambda a: a.resource) == [
        Association("kube-system", "external-dns", file, f'module.apps.module.controller["dns"].{tail}'),
        Association("kube-system", "fluent-bit", file, f"module.apps.module.logs.{tail}"),
        Association("mlflow", "mlflow", file, f'module.apps.module.workload["mlflow"].{tail}'),
        Association("models", "vllm", file, f'module.apps.module.workload["vllm"].{tail}'),
    ]


def test_what_it_cannot_evaluate_is_reported_not_guessed(tmp_path: Path) -> None:
    repo = _tree(
        tmp_path,
        'module "apps" {\n  source  = "../modules/apps"\n  cluster = module.eks.cluster_name\n}\n',
        {
            "apps": """
variable "cluster" {
  type = string
}
locals {
  accounts = { "mlflow" = "mlflow" }
}
module "computed" {
  source          = "../pod-identity-role"
  namespace       = lower("MLflow")
  service_account = "mlflow"
}
module "from_a_module_output" {
  source          = "../pod-identity-role"
  namespace       = var.cluster
  service_account = "x"
}
module "unknown_keys" {
  source          = "../pod-identity-role"
  for_each        = var.cluster
  namespace       = each.value
  service_account = each.key
}
""",
        },
    )
    reading = read(repo)
    assert reading.associations == []
    tail = "aws_eks_pod_identity_association.this[0]"
    assert sorted(reading.unresolved, key=lambda u: u.resource) == [
        Unresolved(
            "terraform/modules/apps/main.tf",
            f"module.apps.module.computed.{tail}",
            "namespace",
            '${lower("MLflow")}',
        ),
        Unresolved(
            "terraform/platform/main.tf",
            f"module.apps.module.from_a_module_output.{tail}",
            "namespace",
            "${module.eks.cluster_name}",
        ),
        Unresolved(
            "terraform/platform/main.tf",
            "module.apps.module.unknown_keys",
            "for_each",
            "${module.eks.cluster_name}",
        ),
    ]
