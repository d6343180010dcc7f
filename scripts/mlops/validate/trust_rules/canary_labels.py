"""MLOPS086: no monitor but the gateway's own can give a series the labels canary analysis trusts.

Canary analysis (mlops.canary.canary_metrics) reads gateway_* series only with
`job="gateway",namespace="gateway"`; MLOPS130 checks that the gateway's own ServiceMonitor
produces them. Every other scraped target must not be able to produce them too, or a pod that
emits `gateway_requests_total{job="gateway",namespace="gateway",...}` moves a canary decision.
Prometheus (scrape/scrape.go, `mutateSampleLabels`) merges a sample's own labels with its
target's labels: with `honor_labels` false the target's `job`/`namespace` win and the sample's
become `exported_job`/`exported_namespace`; with `honor_labels` true the sample's win. Only then
are `metric_relabel_configs` applied, so a metric relabeling can still pin `job` after the
scrape. Target relabelings decide the target's labels from discovery metadata (pod and Service
labels, which whoever deploys a pod controls).

For every ServiceMonitor (`spec.endpoints[]`), PodMonitor (`spec.podMetricsEndpoints[]`) and
ScrapeConfig (`spec`) except the gateway's own (ServiceMonitor `gateway` in namespace
`gateway`), the rule reports:
- `honorLabels: true`, unless the endpoint's last metric relabeling that writes `job` or
  `namespace` sets it to a fixed value that is not the gateway's (then no sample can carry both);
- a relabeling or metric relabeling whose `targetLabel` is `job` or `namespace` (or a `$`
  reference) and whose value can be the gateway's: taken from a source label (`$` in
  `replacement`, `lowercase`, `uppercase`) or that very value; a `labelmap` that can write
  any label name;
- a ServiceMonitor's `jobLabel`, or `targetLabels`/`podTargetLabels` naming `job` or
  `namespace`: the value comes from a Service or pod label.
prometheus-operator's field semantics: https://github.com/prometheus-operator/prometheus-operator,
Documentation/api-reference/api.md (Endpoint.honorLabels, RelabelConfig, ServiceMonitorSpec.jobLabel).
Not covered: monitors a Helm chart renders (not rendered by validate) and the Prometheus
`additionalScrapeConfigs`; neither exists for an application target today.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlops.canary.canary_metrics import GATEWAY_JOB, GATEWAY_NAMESPACE
from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects.problems import Problem, mapping, resource_name
from mlops.validate.objects.violations import HINTS

GROUP = "monitoring.coreos.com"
ENDPOINTS = {"ServiceMonitor": "endpoints", "PodMonitor": "podMetricsEndpoints"}
GUARDED = {"job": GATEWAY_JOB, "namespace": GATEWAY_NAMESPACE}
"""The labels canary analysis selects on, and the gateway's value of each."""
_FROM_SOURCE = ("lowercase", "uppercase")


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """Report every monitor other than the gateway's that lets a target set job/namespace."""
    for result in rendered:
        if not result.ok:
            continue
        for doc in result.documents:
            if not isinstance(doc, dict) or str(doc.get("apiVersion", "")).rpartition("/")[0] != GROUP:
                continue
            kind = doc.get("kind")
            if kind not in (*ENDPOINTS, "ScrapeConfig") or _is_gateway_monitor(doc):
                continue
            for field, problem in _findings(doc):
                yield Problem(result.path, resource_name(doc), field, problem, "MLOPS086", HINTS["MLOPS086"])


def _is_gateway_monitor(doc: dict[str, Any]) -> bool:
    meta = mapping(doc, "metadata")
    return (
        doc.get("kind") == "ServiceMonitor"
        and meta.get("name") == GATEWAY_JOB
        and meta.get("namespace") == GATEWAY_NAMESPACE
    )


def _endpoints(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    spec = mapping(doc, "spec")
    if doc.get("kind") == "ScrapeConfig":
        return [("spec", spec)]
    key = ENDPOINTS[str(doc.get("kind"))]
    items = spec.get(key) if isinstance(spec.get(key), list) else []
    return [(f"spec.{key}[{i}]", e) for i, e in enumerate(items) if isinstance(e, dict)]


def _findings(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    spec = mapping(doc, "spec")
    if doc.get("kind") == "ServiceMonitor" and spec.get("jobLabel"):
        yield (
            "spec.jobLabel",
            (
                f"takes `job` from the Services' label {spec['jobLabel']!r}: a Service labelled "
                f'{GATEWAY_JOB!r} gives its series job="{GATEWAY_JOB}", which canary analysis trusts'
            ),
        )
    for key in ("targetLabels", "podTargetLabels"):
        copied = spec.get(key) if isinstance(spec.get(key), list) else []
        for label in sorted(set(map(str, copied)) & set(GUARDED)):
            yield (
                f"spec.{key}",
                (
                    f"copies the label {label!r} of the scraped objects onto their series: whoever labels a "
                    f'pod or Service {label}: {GUARDED[label]} gives it the {label}="{GUARDED[label]}" '
                    "canary analysis trusts"
                ),
            )
    for where, endpoint in _endpoints(doc):
        yield from _endpoint_findings(where, endpoint)


def _rules(endpoint: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rules = endpoint.get(key)
    return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []


def _endpoint_findings(where: str, endpoint: dict[str, Any]) -> Iterator[tuple[str, str]]:
    metric_rules = _rules(endpoint, "metricRelabelings")
    if endpoint.get("honorLabels") is True and not _pinned_after_scrape(metric_rules):
        yield (
            f"{where}.honorLabels",
            (
                "true lets each scraped target set its own job and namespace labels, so it can emit "
                f'gateway_* series with job="{GATEWAY_JOB}",namespace="{GATEWAY_NAMESPACE}" that canary '
                "analysis trusts"
            ),
        )
    for key in ("relabelings", "metricRelabelings"):
        for i, rule in enumerate(_rules(endpoint, key)):
            found = _forgeable(rule)
            if found:
                yield f"{where}.{key}[{i}]", found


def _action(rule: dict[str, Any]) -> str:
    return str(rule.get("action") or "replace").lower()


def _fixed_value(rule: dict[str, Any]) -> str | None:
    """The value a `replace` rule always writes, or None when it depends on its source labels.

    With no source labels the (empty) source matches the default regex `(.*)`, so the rule
    always writes its replacement; a replacement without `$` is the same whatever matched.
    """
    replacement = str(rule.get("replacement", "$1"))
    if _action(rule) != "replace" or "$" in replacement:
        return None
    regex = str(rule.get("regex", "(.*)"))
    if rule.get("sourceLabels") and regex not in ("(.*)", ".*"):
        return None  # written only when the source matches: otherwise the sample's value stays
    return replacement


def _pinned_after_scrape(metric_rules: list[dict[str, Any]]) -> bool:
    """Whether the last metric relabeling writing job (or namespace) fixes it to a non-gateway value."""
    for label, gateway_value in GUARDED.items():
        writes = [
            r for r in metric_rules if str(r.get("targetLabel", "")) == label or _action(r) == "labelmap"
        ]
        if writes:
            last = writes[-1]
            if str(last.get("targetLabel", "")) == label and _fixed_value(last) not in (None, gateway_value):
                return True
    return False


def _forgeable(rule: dict[str, Any]) -> str | None:
    """Why `rule` can write the gateway's job or namespace (None when it cannot)."""
    action = _action(rule)
    if action == "labelmap":
        replacement = str(rule.get("replacement", "$1"))
        if "$" in replacement or replacement in GUARDED:
            return (
                f"labelmap (regex {rule.get('regex', '(.*)')!r}) copies labels under names taken from the "
                "labels it matches, so a label of the scraped object can become job or namespace and claim "
                "the gateway's"
            )
        return None
    target = str(rule.get("targetLabel", ""))
    if action not in ("replace", *_FROM_SOURCE) or (target not in GUARDED and "$" not in target):
        return None
    label = target if target in GUARDED else "job or namespace"
    if action in _FROM_SOURCE or "$" in str(rule.get("replacement", "$1")) or "$" in target:
        sources = rule.get("sourceLabels") or []
        return (
            f"writes {label} from the source labels {sources}: a scraped object that sets them to "
            f"{GUARDED.get(target, GATEWAY_JOB)!r} claims the gateway's {label}"
        )
    if _fixed_value(rule) == GUARDED[target] or str(rule.get("replacement")) == GUARDED[target]:
        return f"sets {target}=\"{GUARDED[target]}\", the gateway's own, on series that are not the gateway's"
    return None
