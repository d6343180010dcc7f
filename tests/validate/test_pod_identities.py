"""MLOPS141-142: terraform's Pod Identity associations and the rendered ServiceAccounts agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops.validate.objects.violations import HINTS
from support.validate_cli import by_folder, plant, validate_lines

ROLES = "terraform/modules/workload-roles/main.tf"
LOGS = "terraform/modules/container-logs/main.tf"
ROLE = "eks.amazonaws.com/role-arn"


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    # terraform associates buildkit's role with a namespace the builds do not run in: the
    # association names a ServiceAccount nobody has, and the build Job's pods get no role.
    plant(repo_copy, ROLES, '    "buildkit"          = "buildkit"\n', '    "buildkit"          = "builds"\n')
    # Fluent Bit's namespace goes through a function the reader does not evaluate: reported, not guessed.
    plant(
        repo_copy,
        LOGS,
        "  namespace       = local.namespace\n",
        "  namespace       = lower(local.namespace)\n",
    )
    # MLflow's ServiceAccount gets its IRSA annotation back, though its role trusts only Pod Identity.
    plant(
        repo_copy,
        "base/mlflow/serviceaccount.yaml",
        "  name: mlflow\n",
        f"  name: mlflow\n  annotations:\n    {ROLE}: arn:aws:iam::111122223333:role/mlops-dev-mlflow\n",
    )
    return validate_lines(repo_copy, crds_dir, "dev")


def _hinted(line: str, policy: str) -> str:
    return f"{line} [{policy}: {HINTS[policy]}]"


def test_an_association_naming_no_rendered_service_account(lines: list[str]) -> None:
    assert _hinted(
        f'{ROLES}: module.workload_roles.module.workload_role["buildkit"].'
        "aws_eks_pod_identity_association.this[0]: service_account: associates "
        "ServiceAccount builds/buildkit with an IAM role, but dev renders no such ServiceAccount "
        "(nor does a chart's values create it): the role reaches no pod, and the pods it was meant "
        "for get no AWS credentials",
        "MLOPS141",
    ) in by_folder(lines)


def test_a_pod_that_calls_aws_as_an_unassociated_service_account(lines: list[str]) -> None:
    job = [
        line
        for line in lines
        if "[MLOPS142:" in line
        and "ServiceAccount buildkit/buildkit" in line
        and "ecr-login runs aws ecr" in line
    ]
    assert job, lines
    # Named on the compiled workflow file that sets it (the build Job is embedded in the template).
    assert job[0].startswith("overlays/dev/workflows/generated/train-and-promote.patch.yaml:"), job[0]
    assert ": Job/image-build- (in WorkflowTemplate/train-and-promote " in job[0], job[0]
    assert (
        "the pod calls AWS (ecr-login runs aws ecr) as ServiceAccount buildkit/buildkit, which no Pod "
        in job[0]
    )
    assert (
        "association in terraform (terraform/modules/workload-roles) names: the pod gets no AWS credentials"
        in job[0]
    )


def test_a_leftover_irsa_annotation(lines: list[str]) -> None:
    assert (
        _hinted(
            "base/mlflow/serviceaccount.yaml:8 (overlays/dev/mlflow): ServiceAccount/mlflow: "
            f"metadata.annotations.{ROLE}: ServiceAccount "
            f"mlflow/mlflow has a Pod Identity association but still carries {ROLE}: terraform's role "
            "trusts only pods.eks.amazonaws.com (modules/pod-identity-role; no role trusts IRSA), and the "
            "SDKs try the annotation's web identity first, so every AWS call is refused",
            "MLOPS142",
        )
        in lines
    )


def test_an_association_the_reader_cannot_evaluate(lines: list[str]) -> None:
    # Named where the value is written: the container-logs module's call of pod-identity-role.
    assert (
        _hinted(
            f"{LOGS}: module.container_logs.module.fluent_bit_role.aws_eks_pod_identity_association.this[0]: "
            "namespace: ${lower(local.namespace)} cannot be evaluated (mlops validate follows literals, "
            "each.*, local.*, var.* and the arguments of local module calls, nothing else), so this "
            "association's ServiceAccount cannot be checked against dev",
            "MLOPS141",
        )
        in lines
    )


def test_only_the_planted_identity_problems(lines: list[str]) -> None:
    planted = [line for line in lines if "[MLOPS141:" in line or "[MLOPS142:" in line]
    assert len(planted) == 4, planted
