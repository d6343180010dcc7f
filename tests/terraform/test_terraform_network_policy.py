"""The VPC CNI enforces the NetworkPolicies base/platform renders (docs/security.md).

EKS's VPC CNI ignores NetworkPolicy objects unless its add-on configuration sets
`enableNetworkPolicy: "true"`
(https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html), so
MLOPS080's matrix would hold on paper only.
"""

from __future__ import annotations

import re

from tfrepo import MODULES, locals_of, resources


def test_the_vpc_cni_addon_enables_network_policy() -> None:
    configuration = locals_of(MODULES / "eks")["addon_configuration"]["vpc-cni"]
    assert re.search(r'enableNetworkPolicy\s*=\s*"true"', configuration)
    addon = resources(MODULES / "eks")[("aws_eks_addon", "before_nodes")]
    assert "vpc-cni" in str(locals_of(MODULES / "eks")["addons_before_nodes"])
    assert addon["configuration_values"] == "${lookup(local.addon_configuration, each.value, null)}"
