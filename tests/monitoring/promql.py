"""PromQL helpers for the monitoring tests: metric names in an expression, Grafana variables."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NUMBERS = re.compile(r"(?<![\w:])\d[\w.]*")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
_KEYWORDS |= {"offset", "inf", "nan", "atan2"}

# What Grafana puts in place of its built-in variables, for a check that only parses.
GRAFANA_BUILTINS = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "6h",
    "__range_s": "21600",
    "__range_ms": "21600000",
}
_GRAFANA_VAR = re.compile(r"\$\{?(\w+)(?::\w+)?\}?")


def metric_names(expr: str) -> set[str]:
    """Return the metric names (and recording rule names) that `expr` selects."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    text = _NUMBERS.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        token = match.group(0)
        if token.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue  # an operator keyword or a function call
        names.add(token)
    return names


def substitute_grafana_variables(expr: str) -> str:
    """Replace Grafana's variables: built-in intervals by durations, `$model` & co by `.*`."""
    return _GRAFANA_VAR.sub(lambda m: GRAFANA_BUILTINS.get(m.group(1), ".*"), expr)


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield (where, expr) for every Prometheus query in a dashboard, rows and variables included."""

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield f"panel {panel.get('title')!r} query {target.get('refId')}", target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else str(query or "")
        found = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", query)
        if found:
            yield f"variable {variable['name']!r}", found.group(1)
        elif query.strip().startswith(("query_result(", "metrics(", "label_names(")):
            inner = query.strip()[query.index("(") + 1 : query.rindex(")")]
            yield f"variable {variable['name']!r}", inner
