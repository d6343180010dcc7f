"""MLOPS016, server side: the Argo Server's role may read what the workflow pods archived."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from mlops import cli
from mlops.validate.objects.violations import HINTS
from support.validate_cli import by_folder, plant

ROLE = "eks.amazonaws.com/role-arn"


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    # dev: terraform's argo-server role loses its read of the bucket's objects.
    plant(
        repo_copy,
        "terraform/modules/workload-roles/main.tf",
        '      { sid = "ReadWorkflowArtifacts", actions = local.s3_read, '
        'resources = ["${local.bucket["argo-artifacts"]}/*"] },\n',
        "",
    )
    # prod: the server runs as a renamed ServiceAccount, which no Pod Identity association names.
    plant(
        repo_copy,
        "apps/upstream/argo-workflows/values-prod.yaml",
        "    name: argo-server\n",
        "    name: argo-ui\n",
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("MLOPS_REPO", str(repo_copy))
    mp.setenv("MLOPS_CRDS_DIR", str(crds_dir))
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = cli.main(["validate"])
    finally:
        mp.undo()
    assert code == 1
    return out.getvalue().splitlines()


def _line(env: str, missing: str, account: str = "argo-server") -> str:
    return (
        f"apps/upstream/argo-workflows/values-{env}.yaml: ServiceAccount/{account}: "
        f"server.serviceAccount.name: the Argo Server runs as ServiceAccount {account}, "
        f"whose IAM role cannot read the Argo artifact repository ({missing}): logs of finished workflows "
        f"cannot be shown once their pods are gone [MLOPS016: {HINTS['MLOPS016']}]"
    )


def test_server_role_without_read_on_the_bucket(lines: list[str]) -> None:
    assert _line("dev", "mlops-dev-argo-server has no s3:GetObject on argo-artifacts/*") in by_folder(lines)


def test_server_account_without_a_role(lines: list[str]) -> None:
    missing = "terraform associates no role with ServiceAccount argo/argo-ui (Pod Identity)"
    assert _line("prod", missing, "argo-ui") in by_folder(lines)


def test_only_the_planted_server_problems(lines: list[str]) -> None:
    server = [line for line in lines if "ServiceAccount/argo-" in line]
    assert len(server) == 2, server
