"""MLOPS150: the UIs read the groups from the claim terraform's sso.groups_claim names (planted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops.validate.objects.violations import HINTS
from support.validate_cli import plant, validate_lines

TFVARS = "terraform/envs/prod/terraform.tfvars"
WORKFLOWS = "apps/upstream/argo-workflows/values-prod.yaml"
GRAFANA = "apps/upstream/kube-prometheus-stack/values-prod.yaml"


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    """prod moves to Cognito (cognito:groups, no groups scope); only Argo Workflows follows."""
    plant(repo_copy, TFVARS, '  groups_claim = "groups"', '  groups_claim = "cognito:groups"')
    plant(repo_copy, TFVARS, '  groups_scope = "groups"', '  groups_scope = ""')
    plant(
        repo_copy,
        WORKFLOWS,
        "    customGroupClaimName: groups\n",
        "    customGroupClaimName: cognito:groups\n",
    )
    plant(repo_copy, WORKFLOWS, "    scopes:\n      - groups\n", "    scopes: []\n")
    return validate_lines(repo_copy, crds_dir, "prod")


def _unlined(lines: list[str]) -> list[str]:
    # The file's line number, where the field has one, is not what these tests are about.
    return [
        line.split(": ", 1)[0].split(":")[0] + ": " + line.split(": ", 1)[1] for line in lines if ": " in line
    ]


def _expected(file: str, chart: str, key: str, found: str, want: str) -> str:
    return (
        f"{file}: {chart}: {key}: is {found}, not {want}: the identity provider puts the groups in claim "
        "'cognito:groups' (no groups scope) (terraform/envs/prod/terraform.tfvars: sso.groups_claim, "
        f"sso.groups_scope) [MLOPS150: {HINTS['MLOPS150']}]"
    )


@pytest.mark.parametrize(
    ("key", "found", "want"),
    [
        ("groups_attribute_path", "'groups'", "'\"cognito:groups\"'"),
        ("role_attribute_path", "'contains(groups[*], ...)'", "'contains(\"cognito:groups\"[*], ...)'"),
        ("scopes", "['groups']", "[]"),
    ],
)
def test_grafana_still_reads_the_okta_claim(lines: list[str], key: str, found: str, want: str) -> None:
    line = _expected(
        GRAFANA, "kube-prometheus-stack", f"grafana.grafana.ini.auth.generic_oauth.{key}", found, want
    )
    assert line in _unlined(lines), [x for x in lines if "MLOPS150" in x]


def test_argo_workflows_follows_and_nothing_else_is_reported(lines: list[str]) -> None:
    reported = [line for line in lines if "[MLOPS150:" in line]
    assert not [line for line in reported if WORKFLOWS in line], reported
    assert len(reported) == 3, reported
