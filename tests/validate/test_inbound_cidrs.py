"""MLOPS153: the ALB admits the environment's VPC range and private ranges only (planted)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlops.validate.objects.violations import HINTS
from support.validate_cli import validate_lines

PATCH = "overlays/prod/frontdoor/inbound-cidrs.yaml"


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    """prod's ALB opened to 10/8 (not its VPC's 10.20/16 by name) and to the whole internet."""
    patch = repo_copy / PATCH
    text = patch.read_text()
    assert "    - 10.20.0.0/16\n" in text, f"{PATCH} changed: update the planted defect"
    patch.write_text(text.replace("    - 10.20.0.0/16\n", "    - 10.0.0.0/8\n    - 0.0.0.0/0\n"))
    return validate_lines(repo_copy, crds_dir, "prod")


def _reported(lines: list[str]) -> list[str]:
    # Where the source finder puts the line number (the patch's field) is not under test here.
    return [re.sub(r"^([^:]+):\d+:", r"\1:", line) for line in lines if "[MLOPS153:" in line]


def _line(field: str, message: str) -> str:
    return f"{PATCH}: IngressClassParams/frontdoor: {field}: {message} [MLOPS153: {HINTS['MLOPS153']}]"


def test_the_vpc_range_must_be_listed(lines: list[str]) -> None:
    assert _line(
        "spec.inboundCIDRs",
        "is ['10.0.0.0/8', '0.0.0.0/0'], without the VPC's range (terraform/envs/prod/terraform.tfvars: "
        "vpc_cidr 10.20.0.0/16): people on the VPN and callers in the VPC would time out at the ALB",
    ) in _reported(lines), _reported(lines)


def test_a_public_range_is_refused(lines: list[str]) -> None:
    assert _line(
        "spec.inboundCIDRs[1]",
        "'0.0.0.0/0' is not a private IPv4 range (RFC 1918, RFC 6598): the internal ALB admits only the "
        "VPC and the networks routed into it",
    ) in _reported(lines), _reported(lines)


def test_a_private_range_passes(lines: list[str]) -> None:
    assert len(_reported(lines)) == 2, _reported(lines)
