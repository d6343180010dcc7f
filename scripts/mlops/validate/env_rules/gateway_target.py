"""MLOPS130: the gateway's ServiceMonitor gives its series the target labels canary analysis selects.

`mlops canary analyze` (mlops.canary.canary_metrics) reads gateway_* series only with
`job="gateway",namespace="gateway"`, so that a series forged by another scraped pod cannot move
a canary decision. Those labels come from the ServiceMonitor, as prometheus-operator writes the
scrape config (https://github.com/prometheus-operator/prometheus-operator,
pkg/prometheus/promcfg.go): `job` is the name of the selected Service
(`__meta_kubernetes_service_name`), replaced by the value of the Service's label named by
`spec.jobLabel` when that is set; `namespace` is the Service's namespace. If the gateway's
ServiceMonitor, Service or namespace are renamed, or `jobLabel` is set, the analysis finds no
series and every canary waits forever: this rule says so at validate time instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlops.canary.canary_metrics import GATEWAY_JOB, GATEWAY_NAMESPACE
from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects.problems import Problem, mapping, resource_name
from mlops.validate.objects.violations import HINTS

GATEWAY_COMPONENT = "gateway"
GATEWAY_APP_LABEL = ("app.kubernetes.io/name", "gateway")


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """Report a gateway ServiceMonitor whose targets would not carry job/namespace `gateway`."""
    for result in rendered:
        if result.component != GATEWAY_COMPONENT or not result.ok:
            continue
        docs = [d for d in result.documents if isinstance(d, dict)]
        monitors = [
            d
            for d in docs
            if d.get("kind") == "ServiceMonitor"
            and mapping(mapping(d, "metadata"), "labels").get(GATEWAY_APP_LABEL[0]) == GATEWAY_APP_LABEL[1]
        ]
        if not monitors:
            yield _problem(
                result.path,
                "ServiceMonitor/gateway",
                "",
                f"renders no ServiceMonitor labelled {GATEWAY_APP_LABEL[0]}: {GATEWAY_APP_LABEL[1]}: "
                "Prometheus never scrapes the gateway and canary analysis finds no gateway_* series",
            )
        services = [d for d in docs if d.get("kind") == "Service"]
        for monitor in monitors:
            yield from _check_monitor(result.path, monitor, services)


def _check_monitor(path: str, monitor: dict[str, Any], services: list[dict[str, Any]]) -> Iterator[Problem]:
    name = resource_name(monitor)
    spec = mapping(monitor, "spec")
    namespace = mapping(monitor, "metadata").get("namespace", "")
    if spec.get("jobLabel"):
        yield _problem(
            path,
            name,
            "spec.jobLabel",
            f"sets jobLabel {spec['jobLabel']!r}: the gateway's series get that label's value as `job`, "
            f'not "{GATEWAY_JOB}", and canary analysis (job="{GATEWAY_JOB}") finds none of them',
        )
    if namespace != GATEWAY_NAMESPACE:
        yield _problem(
            path,
            name,
            "metadata.namespace",
            f'is in namespace "{namespace}", not "{GATEWAY_NAMESPACE}": the series get '
            f'namespace="{namespace}" and canary analysis (namespace="{GATEWAY_NAMESPACE}") '
            "finds none of them",
        )
    selector = mapping(mapping(spec, "selector"), "matchLabels")
    selected = [
        s
        for s in services
        if mapping(s, "metadata").get("namespace", "") == namespace
        and all(mapping(mapping(s, "metadata"), "labels").get(k) == v for k, v in selector.items())
    ]
    for service in selected:
        service_name = mapping(service, "metadata").get("name")
        if service_name != GATEWAY_JOB:
            yield _problem(
                path,
                name,
                "spec.selector.matchLabels",
                f'selects Service "{service_name}": its series get job="{service_name}", and canary '
                f'analysis (job="{GATEWAY_JOB}") finds none of them',
            )
    if not selected:
        yield _problem(
            path,
            name,
            "spec.selector.matchLabels",
            f"selects no Service of namespace {namespace!r} ({selector}): nothing is scraped and canary "
            "analysis finds no gateway_* series",
        )


def _problem(path: str, resource: str, field: str, message: str) -> Problem:
    return Problem(path, resource, field, message, "MLOPS130", HINTS["MLOPS130"])
