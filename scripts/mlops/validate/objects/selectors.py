"""Kubernetes label selectors: the one matcher of every rule that follows a selector.

Workloads, Services, budgets, monitors, NetworkPolicies and ApplicationSet generators alike:
k8s.io/apimachinery pkg/apis/meta/v1/helpers.go LabelSelectorAsSelector: `matchLabels` and
`matchExpressions` (In, NotIn, Exists, DoesNotExist) all hold; an empty selector selects
everything. Label values are strings; a YAML number written unquoted is compared as its text.
"""

from __future__ import annotations

from typing import Any


def selector_matches(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    """Whether a LabelSelector selects `labels` (an expression that is not a mapping is skipped)."""
    match_labels = selector.get("matchLabels")
    for key, value in (match_labels if isinstance(match_labels, dict) else {}).items():
        if labels.get(key) != str(value):
            return False
    for expression in selector.get("matchExpressions") or []:
        if not isinstance(expression, dict):
            continue
        key, operator = str(expression.get("key")), expression.get("operator")
        values = [str(v) for v in expression.get("values") or []]
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True
