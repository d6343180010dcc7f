"""Policies on Karpenter nodes: bounded NodePools; prod nodes change only when planned (MLOPS008, 024-026)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlops.validate.objects.problems import field_path, mapping
from mlops.validate.objects.violations import Violation

_GPU_TAINT = "nvidia.com/gpu"


def check_node_pool_limits(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS008: a NodePool without `spec.limits` can grow without bound."""
    if not (doc.get("spec") or {}).get("limits"):
        yield Violation("spec.limits", "NodePool has no limits", "MLOPS008")


def check_prod_nodes(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS024-026: prod nodes change only when a pull request or the maintenance window says so.

    Upstream: Karpenter's disruption docs (karpenter.sh/docs/concepts/disruption): drift
    replaces nodes when the resolved AMI changes, and `al2023@latest` resolves to each new EKS
    AMI release; expiration is a forceful method ("budgets ... don't block" expiry, nodes are
    drained when `expireAfter` passes, whatever the schedule); budgets default to `nodes: 10%`
    and a budget with `schedule`/`duration` is what blocks voluntary disruption in a window.
    Alias pinning (`al2023@v20251001`-style): karpenter.sh/docs/concepts/nodeclasses (amiSelectorTerms).
    """
    kind, spec = doc.get("kind"), mapping(doc, "spec")
    if kind == "EC2NodeClass":
        for index, term in enumerate(spec.get("amiSelectorTerms") or []):
            alias = term.get("alias") if isinstance(term, dict) else None
            if isinstance(alias, str) and alias.endswith("@latest"):
                yield Violation(
                    field_path(["spec", "amiSelectorTerms", index, "alias"]),
                    f'AMI alias "{alias}" floats: every EKS AMI release drifts and replaces every node',
                    "MLOPS024",
                )
    if kind != "NodePool":
        return
    node_spec = mapping(mapping(spec, "template"), "spec")
    taints = node_spec.get("taints") or []
    gpu = any(isinstance(t, dict) and t.get("key") == _GPU_TAINT for t in taints)
    expire = node_spec.get("expireAfter")
    if gpu and expire != "Never":
        yield Violation(
            field_path(["spec", "template", "spec", "expireAfter"]),
            f'GPU nodes expire after "{expire or "720h (default)"}": expiry is forced and no budget '
            "holds it, so serving and training nodes drain in business hours",
            "MLOPS025",
        )
    budgets = mapping(spec, "disruption").get("budgets") or []
    windows = [b for b in budgets if isinstance(b, dict) and b.get("schedule") and str(b.get("nodes")) == "0"]
    if not windows:
        yield Violation(
            field_path(["spec", "disruption", "budgets"]),
            'no scheduled budget with nodes "0": drift and consolidation may replace nodes at any hour',
            "MLOPS026",
        )
