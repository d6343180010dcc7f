"""Who reaches the EKS API (documentation ranges refused, prod never open to the world), and the placeholders.

The committed domain and identity provider are RFC 2606 examples; plan refuses them until
they are replaced, as it refuses documentation ranges in the site input.

The variable's validations are what `terraform plan` runs on the value an operator passes;
these tests run them for real: the platform's own variable blocks, copied into a root
with no provider (so `init` and `plan` need no network), planned with good and planted
bad values.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tfrepo import ENVS, MODULES, PLATFORM, TERRAFORM, blocks, resources, tfvars

SITE_INPUT = "cluster_api_access"
_ENV = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": "/dev/null"}


def _variable_block(name: str) -> str:
    text = (PLATFORM / "variables.tf").read_text()
    match = re.search(rf'^variable "{name}" \{{.*?^\}}\n', text, re.S | re.M)
    assert match, f"platform/variables.tf has no variable {name}"
    return match.group(0)


@pytest.fixture(scope="module")
def plan_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform binary not on PATH")
    root = tmp_path_factory.mktemp("api-access")
    names = ("env", "cluster_endpoint_public_access", SITE_INPUT, "domain", "sso")
    (root / "variables.tf").write_text("\n".join(_variable_block(n) for n in names))
    init = subprocess.run(
        [terraform, "init", "-backend=false", "-input=false", "-no-color"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env=_ENV,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    return root


_REAL_SSO = {"issuer": "https://login.corp.internal/oauth2/mlops", "argocd_client_id": "0oa1argocd"}


def _plan(
    root: Path,
    env: str,
    public: bool,
    public_cidrs: list[str],
    domain: str = "dev.mlops.corp.net",
    sso: dict[str, str] = _REAL_SSO,
) -> subprocess.CompletedProcess[str]:
    access = {
        "public_cidrs": public_cidrs,
        "private_cidrs": ["10.99.0.0/16"],
        "private_security_group_ids": [],
    }
    (root / "case.tfvars.json").write_text(
        json.dumps(
            {
                "env": env,
                "cluster_endpoint_public_access": public,
                SITE_INPUT: access,
                "domain": domain,
                "sso": sso,
            }
        )
    )
    return subprocess.run(
        [
            shutil.which("terraform") or "terraform",
            "plan",
            "-input=false",
            "-no-color",
            "-var-file=case.tfvars.json",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env=_ENV,
    )


def _flat(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).replace("│", " ").split())


@pytest.mark.parametrize("cidr", ["203.0.113.0/24", "198.51.100.7/32", "192.0.2.0/24"])
def test_a_documentation_range_is_refused(plan_root: Path, cidr: str) -> None:
    result = _plan(plan_root, "dev", True, [cidr])
    assert result.returncode != 0
    assert "are documentation ranges (RFC 5737)" in _flat(result)


@pytest.mark.parametrize("env", ENVS)
def test_the_committed_placeholders_are_refused(plan_root: Path, env: str) -> None:
    committed = tfvars(env)
    result = _plan(plan_root, env, env == "dev", ["198.18.7.0/24"], committed["domain"], committed["sso"])
    assert result.returncode != 0
    flat = _flat(result)
    assert "domain: example.com, example.net and example.org are placeholders (RFC 2606)" in flat
    assert "sso.issuer: example.com, example.net and example.org are placeholders (RFC 2606)" in flat


@pytest.mark.parametrize(
    "issuer", ["https://example.com/oauth2/x", "https://login.example.org", "https://a.example.net:8443/x"]
)
def test_an_example_issuer_is_refused(plan_root: Path, issuer: str) -> None:
    result = _plan(plan_root, "dev", True, ["198.18.7.0/24"], sso={**_REAL_SSO, "issuer": issuer})
    assert result.returncode != 0
    assert "sso.issuer: example.com, example.net and example.org are placeholders" in _flat(result)


def test_an_issuer_is_https(plan_root: Path) -> None:
    result = _plan(
        plan_root, "dev", True, ["198.18.7.0/24"], sso={**_REAL_SSO, "issuer": "http://idp.corp.net"}
    )
    assert result.returncode != 0
    assert "sso.issuer: an OIDC issuer is an https:// URL" in _flat(result)


def test_an_example_lookalike_domain_plans(plan_root: Path) -> None:
    # Only the reserved names themselves: a company called example-corp keeps its zone.
    result = _plan(plan_root, "dev", True, ["198.18.7.0/24"], domain="dev.myexample.com")
    assert result.returncode == 0, _flat(result)


def test_prod_never_opens_the_api_to_the_world(plan_root: Path) -> None:
    result = _plan(plan_root, "prod", True, ["0.0.0.0/0"])
    assert result.returncode != 0
    assert "prod's API is never open to 0.0.0.0/0" in _flat(result)


def test_a_public_endpoint_needs_a_cidr(plan_root: Path) -> None:
    result = _plan(plan_root, "dev", True, [])
    assert result.returncode != 0
    assert (
        "the public endpoint is enabled (cluster_endpoint_public_access) but no CIDR may reach it"
        in _flat(result)
    )


@pytest.mark.parametrize(("env", "public", "cidrs"), [("dev", True, ["198.18.7.0/24"]), ("prod", False, [])])
def test_real_ranges_plan(plan_root: Path, env: str, public: bool, cidrs: list[str]) -> None:
    result = _plan(plan_root, env, public, cidrs)
    assert result.returncode == 0, _flat(result)


@pytest.mark.parametrize("env", ENVS)
def test_the_site_input_is_never_committed(env: str) -> None:
    # A CIDR in git is the documentation range of the day; it is set where terraform runs.
    assert SITE_INPUT not in tfvars(env)
    assert "default" not in blocks(PLATFORM, "variable")[SITE_INPUT]
    assert not any(
        SITE_INPUT in path.read_text() for path in (TERRAFORM / "envs").rglob("*") if path.is_file()
    )


def test_private_endpoint_admits_the_site_input() -> None:
    # Port 443 on the cluster security group from the private CIDRs and security groups.
    rules = {
        name: body
        for (rtype, name), body in resources(MODULES / "eks").items()
        if rtype == "aws_vpc_security_group_ingress_rule"
    }
    assert set(rules) == {"api_from_cidrs", "api_from_security_groups"}
    for body in rules.values():
        assert (body["from_port"], body["to_port"]) == (443, 443)
        assert "cluster_security_group_id" in body["security_group_id"]
    call = blocks(PLATFORM, "module")["eks"]
    assert call["private_access_cidrs"] == "${var.cluster_api_access.private_cidrs}"
    assert call["private_access_security_group_ids"] == "${var.cluster_api_access.private_security_group_ids}"
