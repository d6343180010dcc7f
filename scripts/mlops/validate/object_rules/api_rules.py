"""API rules the OpenAPI schemas do not carry: what the API server and the kubelet check in code.

A schema says a quantity is a string and a name is a string; the API server then parses the
quantity, compares requests with limits, and holds names to DNS rules, and the kubelet looks a
probe's named port up in its container. Each rule below cites the upstream code it follows.

| id       | rule                                                                                |
|----------|-------------------------------------------------------------------------------------|
| MLOPS040 | resource quantities parse as Kubernetes quantities (`500m`, `6Gi`; not `500mm`, `6GB`) |
| MLOPS041 | a container's request is not above its limit                                         |
| MLOPS042 | an extended resource (`nvidia.com/gpu`) is a whole number, has a limit, request == limit |
| MLOPS043 | object names: DNS-1123 subdomain, DNS-1035 label for Services, DNS-1123 label for     |
|          | Namespaces, at most 52 characters for CronJobs (checked on the rendered name)        |
| MLOPS044 | label keys and values (object and pod template) are valid                            |
| MLOPS045 | a workload's selector matches its pod template's labels                              |
| MLOPS046 | a probe's named port is a port name of its container                                 |

Service `targetPort` names (MLOPS047) need the pods a Service selects: `check_service_ports`,
an environment-wide check. Values holding an Argo expression (`{{...}}`) are filled in at run
time and are not judged.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects.pod_specs import Container, pods
from mlops.validate.objects.problems import Problem, field_path, mapping, resource_name
from mlops.validate.objects.quantities import not_a_quantity, parse_quantity
from mlops.validate.objects.selectors import selector_matches
from mlops.validate.objects.violations import HINTS, Violation

# k8s.io/apimachinery pkg/util/validation/validation.go
_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL)
_DNS1123_SUBDOMAIN_RE = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")
_DNS1035_LABEL_RE = re.compile("[a-z]([-a-z0-9]*[a-z0-9])?")
# k8s.io/apimachinery pkg/api/validate/content/kube.go (IsLabelKey, IsLabelValue)
_LABEL_NAME_RE = re.compile("([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")

_SELECTOR_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def is_extended_resource(name: str) -> bool:
    """Whether `name` is an extended resource (`nvidia.com/gpu`): not native, so not overcommittable.

    kubernetes pkg/apis/core/v1/helper/helpers.go: IsExtendedResourceName is a name outside the
    `kubernetes.io/` domain with a domain, and not a quota `requests.` name.
    """
    if "/" not in name or name.startswith("requests."):
        return False
    domain = name.split("/", 1)[0]
    return not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))


def check(doc: dict[str, Any], *, templated: bool) -> list[Violation]:
    """Return every API-rule violation of one manifest (MLOPS040-046)."""
    found: list[Violation] = []
    if not templated:
        found.extend(_check_name(doc))
    found.extend(_check_labels(["metadata", "labels"], mapping(doc, "metadata").get("labels")))
    for pod in pods(doc):
        template_meta = _pod_template_metadata(doc, pod.path)
        if template_meta is not None:
            found.extend(_check_labels([*pod.path[:-1], "metadata", "labels"], template_meta.get("labels")))
        for container in pod.containers:
            found.extend(_check_resources(container))
            found.extend(_check_probe_ports(container))
    kind = doc.get("kind")
    if kind in _SELECTOR_KINDS or (kind == "Job" and mapping(doc, "spec").get("selector")):
        found.extend(_check_selector(doc))
    return found


def _pod_template_metadata(doc: dict[str, Any], pod_path: list[Any]) -> dict[str, Any] | None:
    """The metadata of the pod template a pod spec path ends in (`spec.template.spec` -> its metadata)."""
    if not pod_path or pod_path[-1] != "spec":
        return None
    node: Any = doc
    for part in pod_path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return mapping(node, "metadata") if isinstance(node, dict) else None


def _check_resources(container: Container) -> Iterator[Violation]:
    """MLOPS040-042, after kubernetes pkg/apis/core/validation/validation.go ValidateResourceRequirements."""
    resources = mapping(container.spec, "resources")
    parsed: dict[str, dict[str, Decimal]] = {"requests": {}, "limits": {}}
    for section in ("requests", "limits"):
        for name, value in mapping(resources, section).items():
            if _templated(value):
                continue
            where = field_path([*container.path, "resources", section, name])
            amount = parse_quantity(value)
            if amount is None:
                yield Violation(where, not_a_quantity(value), "MLOPS040")
                continue
            if amount < 0:
                yield Violation(where, f"{value!r} must be greater than or equal to 0", "MLOPS040")
                continue
            parsed[section][str(name)] = amount
            if is_extended_resource(str(name)) and amount != amount.to_integral_value():
                yield Violation(
                    where, f"{value!r}: {name} is an extended resource and must be an integer", "MLOPS042"
                )
    requests, limits = parsed["requests"], parsed["limits"]
    raw_requests, raw_limits = mapping(resources, "requests"), mapping(resources, "limits")
    for name, request in requests.items():
        where = field_path([*container.path, "resources", "requests", name])
        if is_extended_resource(name):
            if name not in raw_limits:
                yield Violation(
                    where,
                    f"requests {name} without a limit: the API server requires a limit for a resource "
                    "that cannot be overcommitted",
                    "MLOPS042",
                )
            elif name in limits and request != limits[name]:
                yield Violation(
                    where,
                    f"{raw_requests[name]!r} must be equal to {name} limit of {raw_limits[name]!r} "
                    "(an extended resource cannot be overcommitted)",
                    "MLOPS042",
                )
        elif name in limits and request > limits[name]:
            yield Violation(
                where,
                f"{raw_requests[name]!r} must be less than or equal to {name} limit of {raw_limits[name]!r}",
                "MLOPS041",
            )


def _check_probe_ports(container: Container) -> Iterator[Violation]:
    """MLOPS046: kubernetes pkg/kubelet/prober/prober.go findPortByName looks only in this container."""
    names = {p.get("name") for p in container.spec.get("ports") or [] if isinstance(p, dict)}
    for probe in _PROBES:
        spec = mapping(container.spec, probe)
        for handler in ("httpGet", "tcpSocket", "grpc"):
            port = mapping(spec, handler).get("port")
            if isinstance(port, str) and not port.isdigit() and not _templated(port) and port not in names:
                shown = ", ".join(sorted(str(n) for n in names if n)) or "none"
                yield Violation(
                    field_path([*container.path, probe, handler, "port"]),
                    f"port {port!r} is not a port name of container {container.spec.get('name')!r} "
                    f"(its ports: {shown}): the kubelet fails the probe with 'port {port} not found'",
                    "MLOPS046",
                )


_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)


def _name_rule(doc: dict[str, Any]) -> tuple[str, re.Pattern[str], int] | None:
    """The name rule of a kind: (upstream's message, its pattern, its maximum length)."""
    kind = doc.get("kind")
    group = str(doc.get("apiVersion", "")).rpartition("/")[0]
    if group == "rbac.authorization.k8s.io":
        return None  # path segment names (ValidateRBACName): `system:...` is allowed
    if kind == "Service" and group == "":
        return (_DNS1035_LABEL_MSG, _DNS1035_LABEL_RE, 63)
    if kind == "Namespace" and group == "":
        return (_DNS1123_LABEL_MSG, _DNS1123_LABEL_RE, 63)
    # Every other core kind, and every custom resource (apiextensions-apiserver's validator).
    return (_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_RE, 253)


def _check_name(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS043, after kubernetes pkg/apis/core/validation (ValidateServiceName = NameIsDNS1035Label, ...).

    The name checked is the rendered one, after kustomize's namePrefix and nameSuffix.
    """
    meta = mapping(doc, "metadata")
    rule = _name_rule(doc)
    if rule is None:
        return
    message, pattern, limit = rule
    for key in ("name", "generateName"):
        name = meta.get(key)
        if not isinstance(name, str) or not name or _templated(name):
            continue
        # A generateName gets a random suffix: a trailing dash is allowed (maskTrailingDash).
        checked = name[:-1] + "a" if key == "generateName" and name.endswith("-") else name
        if len(checked) > limit:
            yield Violation(
                f"metadata.{key}",
                f"{name!r} must be no more than {limit} characters (it has {len(name)})",
                "MLOPS043",
            )
        if not pattern.fullmatch(checked):
            yield Violation(f"metadata.{key}", f"{name!r}: {message}", "MLOPS043")
        if doc.get("kind") == "CronJob" and key == "name" and len(name) > 52:
            # pkg/apis/batch/validation: the controller names each Job `<name>-<11-character time>`.
            yield Violation(
                "metadata.name",
                f"{name!r} must be no more than 52 characters (it has {len(name)}): "
                "the CronJob controller appends an 11-character suffix to name each Job",
                "MLOPS043",
            )


def _check_labels(path: list[Any], labels: Any) -> Iterator[Violation]:
    """MLOPS044, after k8s.io/apimachinery pkg/api/validate/content/kube.go IsQualifiedName/IsLabelValue."""
    if not isinstance(labels, dict):
        return
    for key, value in labels.items():
        key_problem = _label_key_problem(str(key))
        if key_problem:
            yield Violation(field_path([*path, key]), f"label key {key!r} {key_problem}", "MLOPS044")
        if not isinstance(value, str) or _templated(value) or _templated(key):
            continue
        if len(value) > 63:
            message = f"label value {value!r} must be no more than 63 characters"
            yield Violation(field_path([*path, key]), message, "MLOPS044")
        elif value and not _LABEL_NAME_RE.fullmatch(value):
            yield Violation(
                field_path([*path, key]),
                f"label value {value!r} must be empty or consist of alphanumeric characters, '-', '_' "
                "or '.', starting and ending with an alphanumeric character",
                "MLOPS044",
            )


@functools.lru_cache(maxsize=4096)
def _label_key_problem(key: str) -> str | None:
    if _templated(key):
        return None
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix)):
        return "has a prefix that is not a DNS subdomain"
    if len(name) > 63:
        return "has a name part longer than 63 characters"
    if not _LABEL_NAME_RE.fullmatch(name):
        return "must consist of alphanumeric characters, '-', '_' or '.', starting and ending alphanumeric"
    return None


def _check_selector(doc: dict[str, Any]) -> Iterator[Violation]:
    """MLOPS045, after kubernetes pkg/apis/apps/validation/validation.go (ValidateDeploymentSpec & co.)."""
    spec = mapping(doc, "spec")
    selector = spec.get("selector")
    match_labels = mapping(selector, "matchLabels")
    if not isinstance(selector, dict) or any(_templated(v) for v in match_labels.values()):
        return
    labels = mapping(mapping(spec, "template"), "metadata").get("labels")
    labels = labels if isinstance(labels, dict) else {}
    if not mapping(selector, "matchLabels") and not selector.get("matchExpressions"):
        yield Violation("spec.selector", "empty selector is invalid for a workload", "MLOPS045")
    elif not selector_matches(selector, labels):
        wanted = ", ".join(f"{k}={v}" for k, v in match_labels.items()) or "its expressions"
        yield Violation(
            "spec.template.metadata.labels",
            f"`selector` does not match template `labels`: the selector wants {wanted}",
            "MLOPS045",
        )


def check_service_ports(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterable[Problem]:
    """MLOPS047: a Service's named `targetPort` is a container port name of the pods it selects.

    kubernetes pkg/api/v1/pod/util.go FindPort: the endpoints controller looks a named target
    port up in each selected pod's containers; a pod without it is left out of the Service.
    Services that select no rendered pod are left to the reference checks.
    """
    templates: list[tuple[Any, dict[str, Any], set[str]]] = []
    services: list[tuple[str, dict[str, Any]]] = []
    for result in rendered:
        for doc in result.documents:
            if not isinstance(doc, dict):
                continue
            if doc.get("kind") == "Service" and doc.get("apiVersion") == "v1":
                services.append((result.path, doc))
            for pod in pods(doc):
                meta = _pod_template_metadata(doc, pod.path)
                if meta is None:
                    continue
                labels = mapping(meta, "labels")
                names = {
                    str(p.get("name"))
                    for c in pod.containers
                    if not c.init
                    for p in c.spec.get("ports") or []
                    if isinstance(p, dict) and p.get("name")
                }
                templates.append((mapping(doc, "metadata").get("namespace"), labels, names))
    for file, service in services:
        spec = mapping(service, "spec")
        selector = spec.get("selector")
        if not isinstance(selector, dict) or not selector:
            continue
        namespace = mapping(service, "metadata").get("namespace")
        selected = [
            names
            for ns, labels, names in templates
            if ns == namespace and all(labels.get(k) == v for k, v in selector.items())
        ]
        if not selected:
            continue
        for index, port in enumerate(spec.get("ports") or []):
            target = mapping({"p": port}, "p").get("targetPort")
            if not isinstance(target, str) or target.isdigit() or any(target in names for names in selected):
                continue
            yield Problem(
                file,
                resource_name(service),
                f"spec.ports[{index}].targetPort",
                f"{target!r} is not a container port name of the pods it selects "
                f"({', '.join(sorted(set().union(*selected))) or 'no named ports'}): "
                "the Service gets no endpoints",
                "MLOPS047",
                HINTS["MLOPS047"],
            )
