"""modules/network: the interface endpoints that docs/first-apply.md relies on needs."""

from __future__ import annotations

from tfrepo import MODULES, locals_of, unquote


def test_session_manager_has_its_three_endpoints() -> None:
    # The SSM tunnel into prod's private endpoint goes through Session Manager, which needs
    # ssm, ssmmessages and ec2messages
    # (docs.aws.amazon.com/systems-manager/latest/userguide/setup-create-vpc.html).
    services = {unquote(v) for v in locals_of(MODULES / "network")["interface_endpoints"].values()}
    assert {"ssm", "ssmmessages", "ec2messages"} <= services, services
