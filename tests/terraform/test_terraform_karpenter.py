"""Karpenter's AWS side keeps up with the upstream reference policy; Spot launches in a new account."""

from __future__ import annotations

import re

from tfrepo import ENVS, MODULES, PLATFORM, blocks, locals_of, resources, tfvars, unquote

KARPENTER = MODULES / "karpenter"

# The controller policy of Karpenter v1.14, Sid -> actions, taken from the six managed
# policies of aws/karpenter-provider-aws at 1d927085dd81a9df9301e613f371dac5b4d16bfe,
# website/content/en/v1.14/getting-started/getting-started-with-karpenter/cloudformation.yaml
# (NodeLifecyclePolicy, IAMIntegrationPolicy, EKSIntegrationPolicy, InterruptionPolicy,
# ResourceDiscoveryPolicy, ZonalShiftPolicy; also website/content/en/v1.14/reference/cloudformation.md).
# Moving to a new Karpenter minor: replace this table from that version's file.
UPSTREAM_V1_14 = {
    "AllowScopedEC2InstanceAccessActions": {"ec2:RunInstances", "ec2:CreateFleet"},
    "AllowScopedEC2LaunchTemplateAccessActions": {"ec2:RunInstances", "ec2:CreateFleet"},
    "AllowScopedEC2InstanceActionsWithTags": {
        "ec2:RunInstances",
        "ec2:CreateFleet",
        "ec2:CreateLaunchTemplate",
    },
    "AllowScopedResourceCreationTagging": {"ec2:CreateTags"},
    "AllowScopedResourceTagging": {"ec2:CreateTags"},
    "AllowScopedDeletion": {"ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"},
    "AllowPassingInstanceRole": {"iam:PassRole"},
    "AllowScopedInstanceProfileCreationActions": {"iam:CreateInstanceProfile"},
    "AllowScopedInstanceProfileTagActions": {"iam:TagInstanceProfile"},
    "AllowScopedInstanceProfileActions": {
        "iam:AddRoleToInstanceProfile",
        "iam:RemoveRoleFromInstanceProfile",
        "iam:DeleteInstanceProfile",
    },
    "AllowAPIServerEndpointDiscovery": {"eks:DescribeCluster"},
    "AllowInterruptionQueueActions": {"sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"},
    "AllowZonalShiftStatusReadOnly": {"arc-zonal-shift:GetManagedResource"},
    "AllowRegionalReadActions": {
        "ec2:DescribeCapacityReservations",
        "ec2:DescribeImages",
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceStatus",
        "ec2:DescribeInstanceTypeOfferings",
        "ec2:DescribeInstanceTypes",
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribePlacementGroups",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSpotPriceHistory",
        "ec2:DescribeSubnets",
    },
    "AllowSSMReadActions": {"ssm:GetParameter"},
    "AllowPricingReadActions": {"pricing:GetProducts"},
    "AllowUnscopedInstanceProfileListAction": {"iam:ListInstanceProfiles"},
    "AllowInstanceProfileReadActions": {"iam:GetInstanceProfile"},
}
# The interruption events upstream routes to the queue (the five AWS::Events::Rule of the same file).
UPSTREAM_INTERRUPTION_EVENTS = {
    ("aws.health", "AWS Health Event"),
    ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    ("aws.ec2", "EC2 Instance State-change Notification"),
    ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
}
# Resource kinds RunInstances/CreateFleet may use without a tag (AllowScopedEC2InstanceAccessActions).
UPSTREAM_LAUNCH_FROM = {
    "image",
    "snapshot",
    "security-group",
    "subnet",
    "capacity-reservation",
    "placement-group",
}


def _controller_statements() -> dict[str, dict]:
    document = resources(KARPENTER, "data")[("aws_iam_policy_document", "controller")]
    return {unquote(s["sid"]): s for s in document["statement"]}


def _actions(statement: dict) -> set[str]:
    return {unquote(a) for a in statement["actions"]}


def test_controller_policy_has_every_upstream_statement_and_action() -> None:
    ours = _controller_statements()
    problems = []
    for sid, actions in UPSTREAM_V1_14.items():
        if sid not in ours:
            problems.append(f"statement {sid} missing (actions {sorted(actions)})")
        elif missing := actions - _actions(ours[sid]):
            problems.append(f"statement {sid} lacks {sorted(missing)}")
    assert not problems, "modules/karpenter controller policy is behind Karpenter v1.14:\n" + "\n".join(
        problems
    )


def test_controller_policy_grants_nothing_upstream_does_not() -> None:
    upstream = set().union(*UPSTREAM_V1_14.values())
    extra = {sid: sorted(_actions(s) - upstream) for sid, s in _controller_statements().items()}
    extra = {sid: actions for sid, actions in extra.items() if actions}
    assert not extra, f"actions Karpenter v1.14 never calls (least privilege): {extra}"


def test_launches_may_use_placement_groups_and_capacity_reservations() -> None:
    statement = _controller_statements()["AllowScopedEC2InstanceAccessActions"]
    kinds = {re.search(r":([a-z-]+)/\*$", unquote(r)).group(1) for r in statement["resources"]}
    assert kinds == UPSTREAM_LAUNCH_FROM


def test_launch_and_tag_statements_require_the_eks_cluster_name_tag() -> None:
    # v1.14 tags every instance eks:eks-cluster-name and scopes its own writes on it.
    ours = _controller_statements()
    for sid in (
        "AllowScopedEC2InstanceActionsWithTags",
        "AllowScopedResourceCreationTagging",
        "AllowScopedInstanceProfileCreationActions",
    ):
        variables = {unquote(c["variable"]) for c in ours[sid]["condition"]}
        assert "aws:RequestTag/eks:eks-cluster-name" in variables, sid


def test_spot_service_linked_role_is_created_in_a_fresh_account() -> None:
    # Without AWSServiceRoleForEC2Spot every spot launch fails (upstream getting-started
    # step06-add-spot-role.sh creates it); dev's GPU NodePool asks for spot only.
    role = resources(KARPENTER)[("aws_iam_service_linked_role", "spot")]
    assert unquote(role["aws_service_name"]) == "spot.amazonaws.com"
    assert role["count"] == "${var.create_spot_service_linked_role ? 1 : 0}"
    call = next(body for body in blocks(PLATFORM, "module").values() if "karpenter" in body["source"])
    assert call["create_spot_service_linked_role"] == "${var.create_spot_service_linked_role}"
    for env in ENVS:
        assert isinstance(tfvars(env)["create_spot_service_linked_role"], bool)


def test_the_queue_gets_every_interruption_event_upstream_sends() -> None:
    events = locals_of(KARPENTER)["interruption_events"]
    ours = {
        (unquote(source), unquote(detail))
        for pattern in events.values()
        for source in pattern["source"]
        for detail in pattern["detail-type"]
    }
    assert ours == UPSTREAM_INTERRUPTION_EVENTS
