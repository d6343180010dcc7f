"""Karpenter node pools: what each environment may buy, and where nodes are launched."""

from __future__ import annotations

from typing import Any

import pytest

ACCOUNT_FAMILIES = {
    "dev": ({"spot"}, {"g5", "g6"}),
    "prod": ({"on-demand"}, {"g6e", "p4d", "p5"}),
}


def _requirement(pool: dict[str, Any], key: str) -> set[str]:
    (req,) = [r for r in pool["spec"]["template"]["spec"]["requirements"] if r["key"] == key]
    assert req["operator"] == "In"
    return set(req["values"])


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_gpu_nodepool_capacity_and_families(rendered, env):
    pool = rendered.one(f"overlays/{env}/karpenter", "NodePool", "gpu")
    capacity, families = ACCOUNT_FAMILIES[env]
    assert _requirement(pool, "karpenter.sh/capacity-type") == capacity
    assert _requirement(pool, "karpenter.k8s.aws/instance-family") == families
    assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"} in pool["spec"]["template"][
        "spec"
    ]["taints"]


def test_prod_may_run_more_gpus_than_dev_but_not_unbounded(rendered):
    dev = rendered.one("overlays/dev/karpenter", "NodePool", "gpu")["spec"]["limits"]
    prod = rendered.one("overlays/prod/karpenter", "NodePool", "gpu")["spec"]["limits"]
    assert 0 < int(dev["nvidia.com/gpu"]) < int(prod["nvidia.com/gpu"])
    for limits in (dev, prod):
        assert {"nvidia.com/gpu", "cpu", "memory"} <= set(limits)


def test_prod_gpu_nodes_are_never_replaced_voluntarily_in_business_hours(rendered):
    budgets = rendered.one("overlays/prod/karpenter", "NodePool", "gpu")["spec"]["disruption"]["budgets"]
    frozen = [b for b in budgets if b["nodes"] == "0"]
    assert frozen and set(frozen[0]["reasons"]) == {"Drifted", "Underutilized"}
    assert frozen[0]["schedule"] and frozen[0]["duration"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_nodes_launch_in_the_environments_own_network_and_role(rendered, env):
    classes = [d for d in rendered.docs(f"overlays/{env}/karpenter") if d["kind"] == "EC2NodeClass"]
    assert {c["metadata"]["name"] for c in classes} == {"gpu", "cpu"}
    for node_class in classes:
        spec = node_class["spec"]
        assert spec["role"] == f"mlops-{env}-karpenter-node"
        for selector in ("subnetSelectorTerms", "securityGroupSelectorTerms"):
            assert spec[selector] == [{"tags": {"karpenter.sh/discovery": f"mlops-{env}"}}]
        assert all(b["ebs"]["encrypted"] is True for b in spec["blockDeviceMappings"])
        assert spec["amiSelectorTerms"][0]["alias"].startswith("al2023@")


def _quota_rows(repo_root) -> list[list[str]]:
    text = (repo_root / "docs/first-apply.md").read_text()
    table = text.split("| env | NodePool | asks for | NodePool limit |", 1)[1].split("\n\n", 1)[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_first_apply_quota_table_is_the_rendered_nodepool_limits(rendered, repo_root, env):
    # The quota to request follows from what Karpenter may launch: the doc's numbers are the
    # overlays' NodePool limits, not a copy that drifts from them.
    rows = [row for row in _quota_rows(repo_root) if row[0] == env]
    for name in ("gpu", "cpu"):
        limits = rendered.one(f"overlays/{env}/karpenter", "NodePool", name)["spec"]["limits"]
        gpus = f"{limits['nvidia.com/gpu']} GPUs / " if "nvidia.com/gpu" in limits else ""
        expected = f"{gpus}{limits['cpu']} vCPUs"
        mine = [row for row in rows if row[1] == name]
        assert mine, f"docs/first-apply.md: no quota row for {env} NodePool {name}"
        for row in mine:
            assert row[3].split(" (")[0] == expected, (
                f"{env}/{name}: doc says {row[3]!r}, overlays {expected!r}"
            )
            assert row[6].startswith(f"{limits['cpu']} vCPUs"), f"{env}/{name}: ask for {row[6]!r}"
