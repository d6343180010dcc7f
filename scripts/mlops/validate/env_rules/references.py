"""MLOPS060-068: every reference between objects resolves inside the environment's rendered tree.

A schema checks one document; the kubelet, the controllers and the gateway follow names from
one object to another, and a name that points at nothing fails there, not at `kubectl apply`.
All kustomizations of an environment are judged together (`env_objects.env_view`), the way
the cluster holds them. Objects the cluster holds that no kustomization here renders (a chart's
Service, a Secret terraform writes) count only when `external-objects.yaml` declares them, with
a reason each (`mlops.validate.objects.external_objects`); nothing is skipped silently.

- MLOPS060: a container's `env[].valueFrom.configMapKeyRef` / `secretKeyRef` (name and key) and
  `envFrom[].configMapRef` / `secretRef`. The kubelet refuses to start the container
  (CreateContainerConfigError, "configmap ... not found", "couldn't find key ...": kubernetes
  `pkg/kubelet/kubelet_pods.go`, makeEnvironmentVariables); `optional: true` waives it.
- MLOPS061: a pod's `volumes[].configMap` / `secret` (and `items[].key`), `projected.sources`,
  `persistentVolumeClaim.claimName`. The kubelet cannot mount the volume and the pod stays
  ContainerCreating (`pkg/volume/configmap`, `pkg/volume/secret`); a missing claim keeps it Pending.
- MLOPS062: a pod's `serviceAccountName` (Argo templates too). The ServiceAccount admission
  plugin rejects the pod (`plugin/pkg/admission/serviceaccount/admission.go`).
- MLOPS063: `ExternalSecret.spec.secretStoreRef`. external-secrets reports SecretSyncedError and
  never writes the Secret (external-secrets `pkg/controllers/externalsecret`).
- MLOPS064: `scaleTargetRef` of a HorizontalPodAutoscaler or KEDA ScaledObject (KEDA's default
  kind is Deployment). The HPA reports FailedGetScale; the ScaledObject never becomes Ready
  (kedacore/keda `controllers/keda/scaledobject_controller.go`).
- MLOPS065: `NodePool.spec.template.spec.nodeClassRef`. Karpenter marks the NodePool not ready
  and launches no node (kubernetes-sigs/karpenter `pkg/controllers/nodepool/readiness`).
- MLOPS066: a Service's `selector` selects some pod template of its namespace; otherwise the
  Service has no endpoints and every connection to it is refused.
- MLOPS067: PodDisruptionBudget, PodMonitor and ServiceMonitor selectors (with the monitors'
  `namespaceSelector`) select something: a budget that selects nothing protects nothing, a
  monitor that selects nothing scrapes nothing and the alerts on its series stay silent.
- MLOPS068: each gateway route (ConfigMap `gateway-routes`, key `routes.yaml`) names a rendered
  Service and port that serves that model; a `canary` backend a canary deployment's Service.
  The gateway answers 502 for a backend whose host does not resolve.
- MLOPS131: the routes file is one the gateway loads (`gateway.routes.parse_routes`, the
  gateway's own parser: one validation path); the gateway keeps its last good table on a
  running pod and a new pod never becomes ready (images/gateway/README.md, Routing table).
- MLOPS132: a model routed with `routing.replicas: dns` has, beside each backend's Service, its
  headless twin `<name>-headless` (`gateway.routes.headless_host`): `clusterIP: None` (a
  ClusterIP Service has one A record, the virtual IP, and the gateway would see one replica),
  `publishNotReadyAddresses` not true (else a starting or terminating pod is listed and gets
  requests; the endpoints controller lists only ready addresses by default,
  https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/), the same
  port and the same selector as the Service (else the gateway sends to other pods).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from mlops.conventions.deployment import CANARY_BACKEND
from mlops.conventions.errors import MlopsError
from mlops.conventions.paths import cache_root
from mlops.rendering import build_cache, fast_yaml
from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects import external_objects
from mlops.validate.objects.embedded import embedded_manifests
from mlops.validate.objects.env_objects import EnvObject, EnvView, env_view
from mlops.validate.objects.pod_specs import Pod, pods
from mlops.validate.objects.problems import Problem, field_path, mapping, resource_name
from mlops.validate.objects.selectors import selector_matches
from mlops.validate.objects.violations import HINTS

ROUTES_CONFIGMAP = "gateway-routes"
"""The ConfigMap the gateway mounts its routing table from (base/gateway, overlays/<env>/gateway)."""
ROUTES_KEY = "routes.yaml"
TRACK_LABEL = "mlops.platform/track"
MODEL_LABEL = "mlops.platform/model"

_KUBERNETES_MADE = {
    # The ServiceAccount controller makes `default` in every namespace; kube-controller-manager's
    # root CA publisher the `kube-root-ca.crt` ConfigMap (kubernetes pkg/controller/serviceaccount,
    # pkg/controller/certificates/rootcacertpublisher).
    ("ServiceAccount", "default"): None,
    ("ConfigMap", "kube-root-ca.crt"): frozenset({"ca.crt"}),
}


@dataclass(frozen=True)
class _Target:
    """What a name resolves to: where it was made, and its keys (None: any key, e.g. `dataFrom`)."""

    where: str
    keys: frozenset[str] | None


@dataclass(frozen=True)
class _Workload:
    """A pod template: the object that makes it, its namespace and its labels."""

    file: str
    resource: str
    namespace: str
    labels: dict[str, Any]
    document: dict[str, Any]


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """Report every reference of `env`'s rendered objects that resolves to nothing (MLOPS060-068)."""
    view = env_view(repo, env, rendered)
    declared = external_objects.load(repo)
    yield from declared.problems
    declared_here = declared.for_env(env)
    configmaps, secrets = _configmaps_and_secrets(view, declared_here)
    yield from _pod_references(view, configmaps, secrets)
    yield from _named_references(view, declared_here)
    workloads = list(_pod_templates(view)) + [
        _Workload(d.where, f"{d.kind} (declared)", d.namespace, d.labels, {}) for d in declared_here
        if d.kind == "Pod"
    ]  # fmt: skip
    yield from _selector_references(view, workloads, declared_here)
    yield from _route_references(view)


def _problem(obj_file: str, resource: str, where: str, message: str, policy: str) -> Problem:
    return Problem(obj_file, resource, where, message, policy, HINTS[policy])


# ------------------------------------------------------------------ ConfigMaps and Secrets


def _configmaps_and_secrets(
    view: EnvView, declared: Sequence[external_objects.Declared]
) -> tuple[dict[tuple[str, str], _Target], dict[tuple[str, str], _Target]]:
    configmaps: dict[tuple[str, str], _Target] = {}
    secrets: dict[tuple[str, str], _Target] = {}
    for obj in view.objects:
        doc = obj.document
        if obj.kind == "ConfigMap" and obj.group == "":
            keys = {*mapping(doc, "data"), *mapping(doc, "binaryData")}
            configmaps[(obj.namespace, obj.name)] = _Target(f"{obj.file}: {obj.resource}", frozenset(keys))
        elif obj.kind == "Secret" and obj.group == "":
            keys = {*mapping(doc, "data"), *mapping(doc, "stringData")}
            secrets[(obj.namespace, obj.name)] = _Target(f"{obj.file}: {obj.resource}", frozenset(keys))
        elif obj.kind == "ExternalSecret":
            spec = mapping(doc, "spec")
            target = mapping(spec, "target")
            name = str(target.get("name") or obj.name)
            secrets[(obj.namespace, name)] = _Target(
                f"{obj.file}: {obj.resource}", _external_secret_keys(spec)
            )
    for item in declared:
        table = configmaps if item.kind == "ConfigMap" else secrets if item.kind == "Secret" else None
        if table is not None and item.name:
            table[(item.namespace, item.name)] = _Target(item.where, item.keys)
    return configmaps, secrets


def _external_secret_keys(spec: dict[str, Any]) -> frozenset[str] | None:
    """The keys of the Secret an ExternalSecret writes; None when they come from the provider (`dataFrom`).

    external-secrets: each `data[].secretKey` becomes a key; `target.template.data` renders its
    own keys and, unless `mergePolicy: Merge`, replaces the fetched ones
    (https://external-secrets.io/latest/guides/templating/).
    """
    template = mapping(mapping(spec, "target"), "template")
    template_keys = {*mapping(template, "data")}
    data_keys = {str(d.get("secretKey")) for d in spec.get("data") or [] if isinstance(d, dict)}
    if template_keys and template.get("mergePolicy") != "Merge":
        return frozenset(template_keys)
    if spec.get("dataFrom"):
        return None
    return frozenset(data_keys | template_keys)


def _lookup(table: dict[tuple[str, str], _Target], kind: str, namespace: str, name: str) -> _Target | None:
    found = table.get((namespace, name))
    if found is not None:
        return found
    if (kind, name) in _KUBERNETES_MADE:
        keys = _KUBERNETES_MADE[(kind, name)]
        return _Target("Kubernetes", keys)
    return None


def _pod_references(
    view: EnvView,
    configmaps: dict[tuple[str, str], _Target],
    secrets: dict[tuple[str, str], _Target],
) -> Iterator[Problem]:
    tables = {"ConfigMap": configmaps, "Secret": secrets}
    service_accounts = {(o.namespace, o.name) for o in view.of_kind("ServiceAccount")}
    for obj, resource, namespace, pod in _pods(view):
        missing = partial(_missing, tables, obj.file, resource, namespace)
        found: list[Problem | None] = []
        for container in pod.containers:
            path = container.path
            for i, var in enumerate(container.spec.get("env") or []):
                value_from = mapping(var, "valueFrom")
                for ref_key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    ref = mapping(value_from, ref_key)
                    if ref and not ref.get("optional"):
                        where = field_path([*path, "env", i, "valueFrom", ref_key])
                        found.append(missing(kind, ref.get("name"), ref.get("key"), where, "MLOPS060"))
            for i, source in enumerate(container.spec.get("envFrom") or []):
                for ref_key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    ref = mapping(source, ref_key)
                    if ref and not ref.get("optional"):
                        where = field_path([*path, "envFrom", i, ref_key])
                        found.append(missing(kind, ref.get("name"), None, where, "MLOPS060"))
        for i, volume in enumerate(pod.volumes):
            where = field_path([*pod.path, "volumes", i])
            found.extend(_volume_problems(volume, where, missing))
            claim = mapping(volume, "persistentVolumeClaim").get("claimName")
            if (
                claim
                and not _templated(claim)
                and view.find("PersistentVolumeClaim", namespace, str(claim)) is None
            ):
                found.append(
                    _problem(
                        obj.file,
                        resource,
                        f"{where}.persistentVolumeClaim.claimName",
                        f"PersistentVolumeClaim {claim!r} is not rendered in namespace {namespace!r}",
                        "MLOPS061",
                    )  # fmt: skip
                )
        account = pod.service_account
        if (
            account
            and not _templated(account)
            and (namespace, account) not in service_accounts
            and ("ServiceAccount", account) not in _KUBERNETES_MADE
        ):
            found.append(
                _problem(
                    obj.file,
                    resource,
                    field_path([*pod.path, "serviceAccountName"]),
                    f"ServiceAccount {account!r} is not rendered in namespace {namespace!r} of this "
                    "environment (nor declared in external-objects.yaml)",
                    "MLOPS062",
                )  # fmt: skip
            )
        yield from (p for p in found if p is not None)


def _missing(
    tables: dict[str, dict[tuple[str, str], _Target]],
    file: str,
    resource: str,
    namespace: str,
    kind: str,
    name: Any,
    key: Any,
    where: str,
    policy: str,
) -> Problem | None:
    """The problem of a reference to a ConfigMap or Secret (and its key), if it resolves to nothing."""
    if _templated(name) or _templated(key):
        return None  # an Argo parameter: set when the workflow runs
    target = _lookup(tables[kind], kind, namespace, str(name))
    if target is None:
        return _problem(
            file, resource, where,
            f"{kind} {name!r} is not rendered in namespace {namespace!r} of this environment "
            "(nor declared in external-objects.yaml)", policy,
        )  # fmt: skip
    if key is not None and target.keys is not None and str(key) not in target.keys:
        return _problem(
            file, resource, where,
            f"{kind} {name!r} ({target.where}) has no key {key!r} "
            f"(keys: {', '.join(sorted(target.keys)) or 'none'})", policy,
        )  # fmt: skip
    return None


def _volume_problems(volume: dict[str, Any], where: str, missing: Any) -> Iterator[Problem | None]:
    sources: list[tuple[str, dict[str, Any], str, str]] = []
    if volume.get("configMap"):
        sources.append(("ConfigMap", mapping(volume, "configMap"), "name", f"{where}.configMap"))
    if volume.get("secret"):
        sources.append(("Secret", mapping(volume, "secret"), "secretName", f"{where}.secret"))
    for j, source in enumerate(mapping(volume, "projected").get("sources") or []):
        if isinstance(source, dict) and source.get("configMap"):
            sources.append(
                ("ConfigMap", source["configMap"], "name", f"{where}.projected.sources[{j}].configMap")
            )
        if isinstance(source, dict) and source.get("secret"):
            sources.append(("Secret", source["secret"], "name", f"{where}.projected.sources[{j}].secret"))
    for kind, ref, name_key, field in sources:
        if not isinstance(ref, dict) or ref.get("optional"):
            continue
        yield missing(kind, ref.get(name_key), None, field, "MLOPS061")
        for k, item in enumerate(ref.get("items") or []):
            if isinstance(item, dict):
                yield missing(kind, ref.get(name_key), item.get("key"), f"{field}.items[{k}].key", "MLOPS061")


def _pods(view: EnvView) -> Iterator[tuple[EnvObject, str, str, Pod]]:
    """(object, resource, namespace, pod) of every pod the environment runs, workflow manifests included."""
    for obj in view.objects:
        for pod in pods(obj.document):
            yield obj, obj.resource, obj.namespace, pod
        for embedded in embedded_manifests(obj.document):
            if embedded.document is None:
                continue
            # Argo creates a resource template's object in the workflow's namespace unless it names one.
            namespace = str(mapping(embedded.document, "metadata").get("namespace") or obj.namespace)
            name = f"{resource_name(embedded.document)} (in {obj.resource} {embedded.field})"
            for pod in pods(embedded.document):
                yield obj, name, namespace, pod


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


# ------------------------------------------------------------------ names of other objects


def _named_references(view: EnvView, declared: Sequence[external_objects.Declared]) -> Iterator[Problem]:
    def exists(kind: str, namespace: str, name: str) -> bool:
        return view.find(kind, namespace, name) is not None or any(
            d.kind == kind and d.namespace == namespace and d.name == name for d in declared
        )

    for obj in view.objects:
        spec = mapping(obj.document, "spec")
        if obj.kind in ("ExternalSecret", "PushSecret") and obj.group == "external-secrets.io":
            ref = mapping(spec, "secretStoreRef")
            kind = str(ref.get("kind") or "SecretStore")
            namespace = "" if kind == "ClusterSecretStore" else obj.namespace
            name = str(ref.get("name") or "")
            if ref and not exists(kind, namespace, name):
                yield _problem(
                    obj.file, obj.resource, "spec.secretStoreRef",
                    f"{kind} {name!r} is not rendered in this environment"
                    + (f" (namespace {namespace!r})" if namespace else ""), "MLOPS063",
                )  # fmt: skip
        elif (obj.kind == "HorizontalPodAutoscaler" and obj.group == "autoscaling") or (
            obj.kind == "ScaledObject" and obj.group == "keda.sh"
        ):
            ref = mapping(spec, "scaleTargetRef")
            # KEDA defaults the target to apps/v1 Deployment (keda ScaledObject scaleTargetRef docs).
            kind = str(ref.get("kind") or "Deployment")
            name = str(ref.get("name") or "")
            if not exists(kind, obj.namespace, name):
                yield _problem(
                    obj.file, obj.resource, "spec.scaleTargetRef",
                    f"{kind} {name!r} is not rendered in namespace {obj.namespace!r} of this environment",
                    "MLOPS064",
                )  # fmt: skip
        elif obj.kind == "NodePool" and obj.group == "karpenter.sh":
            ref = mapping(mapping(mapping(spec, "template"), "spec"), "nodeClassRef")
            kind, name = str(ref.get("kind") or "EC2NodeClass"), str(ref.get("name") or "")
            if ref and not exists(kind, "", name):
                yield _problem(
                    obj.file, obj.resource, "spec.template.spec.nodeClassRef",
                    f"{kind} {name!r} is not rendered in this environment", "MLOPS065",
                )  # fmt: skip


# ------------------------------------------------------------------ selectors


def _pod_templates(view: EnvView) -> Iterator[_Workload]:
    """Every pod template with the labels its pods get, workflow and PyTorchJob pods included."""
    for obj, resource, namespace, pod in _pods(view):
        yield _Workload(obj.file, resource, namespace, pod.labels, obj.document)


def _selector_references(
    view: EnvView, workloads: Sequence[_Workload], declared: Sequence[external_objects.Declared]
) -> Iterator[Problem]:
    services = [(o.namespace, o.labels) for o in view.of_kind("Service") if o.group == ""] + [
        (d.namespace, d.labels) for d in declared if d.kind == "Service"
    ]

    # Pod templates by label: every model's Service and budget select its own pods, and scanning
    # every template for each was quadratic in models. A match carries each matchLabels pair,
    # so the templates with the rarest pair are the only candidates.
    by_label: dict[tuple[Any, Any], list[_Workload]] = {}
    for workload in workloads:
        for pair in workload.labels.items():
            try:
                by_label.setdefault(pair, []).append(workload)
            except TypeError:  # an unhashable value: no selector value can equal it by index
                continue

    def selects_pods(namespaces: set[str] | None, selector: dict[str, Any]) -> bool:
        candidates: Sequence[_Workload] = workloads
        for pair in mapping(selector, "matchLabels").items():
            try:
                having = by_label.get(pair, [])
            except TypeError:  # an unhashable selector value: scan
                continue
            candidates = having if len(having) < len(candidates) else candidates
        return any(
            (namespaces is None or w.namespace in namespaces) and selector_matches(selector, w.labels)
            for w in candidates
        )

    for obj in view.objects:
        spec = mapping(obj.document, "spec")
        if obj.kind == "Service" and obj.group == "":
            selector = mapping(spec, "selector")
            if selector and spec.get("type") != "ExternalName":
                if not selects_pods({obj.namespace}, {"matchLabels": selector}):
                    yield _problem(
                        obj.file, obj.resource, "spec.selector",
                        f"selects no pod template in namespace {obj.namespace!r} "
                        f"({_labels_text(selector)}): the Service has no endpoints", "MLOPS066",
                    )  # fmt: skip
        elif obj.kind == "PodDisruptionBudget":
            selector = mapping(spec, "selector")
            if not selects_pods({obj.namespace}, selector):
                yield _problem(
                    obj.file, obj.resource, "spec.selector",
                    f"selects no pod template in namespace {obj.namespace!r} ({_selector_text(selector)}): "
                    "the budget protects nothing", "MLOPS067",
                )  # fmt: skip
        elif obj.kind in ("PodMonitor", "ServiceMonitor") and obj.group == "monitoring.coreos.com":
            selector = mapping(spec, "selector")
            namespaces = _monitor_namespaces(obj)
            if obj.kind == "PodMonitor":
                found = selects_pods(namespaces, selector)
                what = "pod template"
            else:
                found = any(
                    (namespaces is None or ns in namespaces) and selector_matches(selector, labels)
                    for ns, labels in services
                )
                what = "Service"
            if not found:
                where = (
                    "any namespace" if namespaces is None else f"namespace {', '.join(sorted(namespaces))}"
                )
                yield _problem(
                    obj.file, obj.resource, "spec.selector",
                    f"selects no {what} in {where} ({_selector_text(selector)}): nothing is scraped",
                    "MLOPS067",
                )  # fmt: skip


def _monitor_namespaces(obj: EnvObject) -> set[str] | None:
    """The namespaces a monitor looks in: `namespaceSelector`, else its own (None: any namespace)."""
    selector = mapping(mapping(obj.document, "spec"), "namespaceSelector")
    if selector.get("any"):
        return None
    names = selector.get("matchNames") or []
    return {str(n) for n in names} if names else {obj.namespace}


def _labels_text(labels: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items())


def _selector_text(selector: dict[str, Any]) -> str:
    parts = [_labels_text(mapping(selector, "matchLabels"))] if selector.get("matchLabels") else []
    for expr in selector.get("matchExpressions") or []:
        if isinstance(expr, dict):
            values = ",".join(str(v) for v in expr.get("values") or [])
            parts.append(f"{expr.get('key')} {expr.get('operator')}{' ' + values if values else ''}")
    return ", ".join(parts) or "empty selector"


# ------------------------------------------------------------------ gateway routes

HEADLESS_SUFFIX = "-headless"
"""The headless twin of a model's Service (`gateway.routes.HEADLESS_SUFFIX`; a test holds them equal)."""


def gateway_routes_verdicts(texts: list[str]) -> list[str | None]:
    """The gateway's own parser on each routes document (MLOPS131), run as a process.

    `python -m gateway.routes`: the same code the gateway loads its table with, so validate and
    the gateway never disagree; a process, because the gateway is an image that nothing imports
    as a library (tests/test_import_graph.py). One process for every document of the run. The
    verdicts are kept (`~/.cache/mlops/gateway-routes/`) by the documents and the gateway's
    code, so a run whose routes did not change starts no process (a Python start-up each).
    """
    if not texts:
        return []
    entry = _verdicts_entry(texts)
    if entry is not None:
        try:
            known: list[str | None] = json.loads(entry.read_text())
            if len(known) == len(texts):
                return known
        except (OSError, ValueError):
            pass
    done = subprocess.run(
        [sys.executable, "-m", "gateway.routes", ROUTES_KEY],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise MlopsError(
            f"the gateway's routes check (python -m gateway.routes) failed: {done.stderr.strip()}"
        )
    verdicts: list[str | None] = json.loads(done.stdout)
    if entry is not None:
        build_cache.write_cache_file(entry, json.dumps(verdicts))
    return verdicts


def _verdicts_entry(texts: list[str]) -> Path | None:
    """The cache file of these documents' verdicts: named by them and every module of the gateway."""
    spec = importlib.util.find_spec("gateway") if build_cache.enabled() else None
    if spec is None or not spec.origin:
        return None
    digest = hashlib.sha256(f"{ROUTES_KEY}\0{sys.version}\0{yaml.__version__}\0".encode())
    try:
        for module in sorted(Path(spec.origin).parent.glob("*.py")):
            digest.update(f"{module.name}\0".encode() + module.read_bytes() + b"\0")
    except OSError:
        return None
    for text in texts:
        digest.update(text.encode() + b"\0")
    return cache_root() / "gateway-routes" / f"{digest.hexdigest()}.json"


def _route_references(view: EnvView) -> Iterator[Problem]:
    found = []
    for obj in view.objects:
        if obj.kind != "ConfigMap" or obj.group != "" or obj.name != ROUTES_CONFIGMAP:
            continue
        text = mapping(obj.document, "data").get(ROUTES_KEY)
        if not isinstance(text, str):
            continue
        try:
            found.append((obj, text, fast_yaml.load(text)))
        except yaml.YAMLError:
            continue  # the gateway's own routes check reports a file that does not parse
    verdicts = gateway_routes_verdicts([text for _, text, _ in found])
    for (obj, _, routes), verdict in zip(found, verdicts, strict=True):
        if verdict:
            # "routes.yaml: models.<model>.<field>: <what is wrong>" -> the field and the message
            message = verdict.removeprefix(f"{ROUTES_KEY}: ")
            field = f"data[{ROUTES_KEY}]"
            if message.startswith("models."):
                where, _, message = message.partition(": ")
                field += "." + where
            yield _problem(obj.file, obj.resource, field, message, "MLOPS131")
        models = routes.get("models") if isinstance(routes, dict) else None
        for model, spec in (models or {}).items() if isinstance(models, dict) else ():
            backends = spec.get("backends") if isinstance(spec, dict) else None
            routing = spec.get("routing") if isinstance(spec, dict) else None
            by_dns = isinstance(routing, dict) and routing.get("replicas") == "dns"
            for backend, target in (backends or {}).items() if isinstance(backends, dict) else ():
                if isinstance(target, dict) and isinstance(target.get("url"), str):
                    field = f"data[{ROUTES_KEY}].models.{model}.backends.{backend}.url"
                    message = _route_problem(view, str(model), str(backend), target["url"])
                    if message:
                        yield _problem(obj.file, obj.resource, field, message, "MLOPS068")
                    elif by_dns:
                        message = _headless_problem(view, target["url"])
                        if message:
                            yield _problem(obj.file, obj.resource, field, message, "MLOPS132")


def _headless_problem(view: EnvView, url: str) -> str | None:
    """Why the headless twin of a route's Service cannot list its ready pods (None when it can)."""
    parts = urlsplit(url)
    name, namespace = (parts.hostname or "").split(".")[:2]
    port = parts.port or 80
    service = view.find("Service", namespace, name)
    headless = view.find("Service", namespace, name + HEADLESS_SUFFIX)
    if service is None:
        return None  # MLOPS068 reports it
    twin = f"{name}{HEADLESS_SUFFIX}"
    if headless is None:
        return (
            f"{url}: routing.replicas dns finds the pods at Service {twin!r}, which is not rendered in "
            f"namespace {namespace!r}"
        )
    spec = mapping(headless.document, "spec")
    if spec.get("clusterIP") != "None":
        return f"{url}: Service {twin!r} ({headless.file}) is not headless: set spec.clusterIP: None"
    if spec.get("publishNotReadyAddresses") is True:
        return (
            f"{url}: Service {twin!r} ({headless.file}) publishes not-ready addresses: pods that start "
            "or terminate would get requests"
        )
    ports = [p.get("port") for p in spec.get("ports") or [] if isinstance(p, dict)]
    if port not in ports:
        return f"{url}: Service {twin!r} ({headless.file}) has no port {port} (ports: {ports})"
    if spec.get("selector") != mapping(service.document, "spec").get("selector"):
        return f"{url}: Service {twin!r} ({headless.file}) selects other pods than Service {name!r}"
    return None


def _route_problem(view: EnvView, model: str, backend: str, url: str) -> str | None:
    """Why a route's URL does not reach a Service serving `model` (None when it does)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    labels = host.split(".")
    if len(labels) < 2 or not (len(labels) == 2 or labels[2] == "svc"):
        return f"{url}: the host is not a Service name <name>.<namespace>[.svc.cluster.local]"
    name, namespace = labels[0], labels[1]
    port = parts.port or (443 if parts.scheme == "https" else 80)
    service = view.find("Service", namespace, name)
    if service is None:
        return f"{url}: Service {name!r} is not rendered in namespace {namespace!r} of this environment"
    ports = [
        p.get("port") for p in mapping(service.document, "spec").get("ports") or [] if isinstance(p, dict)
    ]
    if port not in ports:
        return f"{url}: Service {name!r} ({service.file}) has no port {port} (ports: {ports})"
    served = service.labels.get(MODEL_LABEL)
    if served is not None and served != model:
        return f"{url}: Service {name!r} serves model {served!r}, not {model!r}"
    track = service.labels.get(TRACK_LABEL)
    if backend == CANARY_BACKEND and track is not None and track != "canary":
        return (
            f"{url}: the canary backend routes to Service {name!r}, which is the {track} deployment "
            f"({service.file}); point it at <model>-canary-vllm, the canary folder's Service"
        )
    return None
