"""Environment-wide policies from issue 24 (MLOPS100, 102, 103): rules that relate several objects.

Each check is `(repo, env, rendered) -> Iterable[Problem]`, registered in `env_checks.CHECKS`;
the per-document rules of the same issue are in `fresh_install`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from mlops.rendering import fast_yaml
from mlops.rendering.render import RenderedKustomization
from mlops.validate.object_rules.fresh_install import KEDA_PAUSED_REPLICAS, scaled_target
from mlops.validate.objects import appsets
from mlops.validate.objects.env_objects import env_view
from mlops.validate.objects.pod_specs import annotations_of
from mlops.validate.objects.problems import Problem, field_path, mapping, resource_name
from mlops.validate.objects.violations import HINTS

METRICS_SERVER_CHART = "metrics-server"

KUBE_PROMETHEUS_STACK_CHART = "kube-prometheus-stack"

# kube-prometheus-stack values that scrape a component EKS keeps out of reach: the AWS-managed
# control plane (controller manager, scheduler, etcd) and kube-proxy, whose EKS add-on serves
# metrics on 127.0.0.1 only.
EKS_UNREACHABLE_SCRAPES = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")

_VALUES_REF = "$values/"


def check_metrics_server(
    repo: Path, env: str, rendered: Sequence[RenderedKustomization]
) -> Iterator[Problem]:
    """MLOPS102: an HPA with a Resource (or ContainerResource) metric needs metrics-server in its env.

    Upstream: kubernetes.io docs/tasks/run-application/horizontal-pod-autoscale ("the
    HorizontalPodAutoscaler ... fetches metrics from the resource metrics API
    (metrics.k8s.io) ... provided by an add-on named Metrics Server"); EKS does not install
    it (docs.aws.amazon.com/eks/latest/userguide/metrics-server.html). Without it the HPA's
    condition ScalingActive is False (FailedGetResourceMetric) and Argo CD's health check for
    HorizontalPodAutoscaler reports it Degraded (argo-cd v3.5
    resource_customizations/autoscaling/HorizontalPodAutoscaler/health.lua).
    """
    if _installs_chart(repo, env, rendered, METRICS_SERVER_CHART):
        return
    for result in rendered:
        for doc in result.documents:
            if not isinstance(doc, dict) or doc.get("kind") != "HorizontalPodAutoscaler":
                continue
            for index, metric in enumerate((doc.get("spec") or {}).get("metrics") or []):
                if isinstance(metric, dict) and metric.get("type") in ("Resource", "ContainerResource"):
                    yield Problem(
                        result.path,
                        resource_name(doc),
                        f"spec.metrics[{index}].type",
                        f"scales on a {metric['type']} metric but clusters/{env} installs no "
                        f"{METRICS_SERVER_CHART}: the HPA never gets a metric and stays Degraded",
                        "MLOPS102",
                        HINTS["MLOPS102"],
                    )
                    break


def check_eks_scrapes(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """MLOPS103: kube-prometheus-stack on EKS scrapes no control-plane component and no kube-proxy.

    Upstream: kube-prometheus-stack 88.0.0 values.yaml enables `kubeControllerManager`,
    `kubeScheduler`, `kubeEtcd` and `kubeProxy` by default, and its rules
    (templates/prometheus/rules-1.14/kubernetes-system-controller-manager.yaml, ...-scheduler,
    etcd.yaml, ...-kube-proxy) raise KubeControllerManagerDown, KubeSchedulerDown, etcd and
    KubeProxyDown alerts whenever the target is absent. EKS runs the first three in the
    AWS-managed control plane, not as pods in kube-system that the chart's Services select
    (docs.aws.amazon.com/eks/latest/userguide/prometheus.html), and the kube-proxy add-on binds
    its metrics to 127.0.0.1:10249 (aws/containers-roadmap#657, terraform-aws-eks#742).
    """
    for _file, app in env_view(repo, env, rendered).applications:
        if KUBE_PROMETHEUS_STACK_CHART not in appsets.helm_charts(app):
            continue
        for values_file in _value_files(app):
            values = _load(repo / values_file)
            for component in EKS_UNREACHABLE_SCRAPES:
                if mapping(values, component).get("enabled") is not False:
                    yield Problem(
                        values_file,
                        f"Application/{mapping(app, 'metadata').get('name')}",
                        f"{component}.enabled",
                        f"not false: EKS does not expose {component} to Prometheus, so its target is "
                        "missing and its Down alert fires from the first hour",
                        "MLOPS103",
                        HINTS["MLOPS103"],
                    )


def check_replicas_owner(
    repo: Path, env: str, rendered: Sequence[RenderedKustomization]
) -> Iterator[Problem]:
    """MLOPS100: a workload a ScaledObject scales leaves `spec.replicas` out, or pins the paused count.

    Upstream: KEDA 2.20 (concepts/scaling-deployments) owns the target's replica count through
    the HPA it creates; `autoscaling.keda.sh/paused-replicas: "<n>"` holds it at n. Argo CD
    with selfHeal re-applies any `spec.replicas` in git (argo-cd v3.5 docs/user-guide/
    best_practices.md, "Leaving Room For Imperativeness": leave replicas out when an HPA owns
    them), so a count in git that differs from KEDA's makes the two fight; with no count, a
    Deployment is created with 1 replica, which on a GPU model starts a GPU node before KEDA
    pauses it. The bootstrap component (base/models/components/bootstrap) sets both to 0.
    """
    del repo, env
    for result in rendered:
        docs = [d for d in result.documents if isinstance(d, dict)]
        workloads = {(str(d.get("kind")), str(mapping(d, "metadata").get("name"))): d for d in docs}
        for doc in docs:
            if doc.get("kind") != "ScaledObject":
                continue
            target = scaled_target(doc)
            workload = workloads.get(target) if target else None
            if workload is None:
                continue
            replicas = mapping(workload, "spec").get("replicas")
            paused = annotations_of(doc).get(KEDA_PAUSED_REPLICAS)
            if paused is None and replicas is not None:
                yield Problem(
                    result.path,
                    resource_name(workload),
                    "spec.replicas",
                    f"set to {replicas} while ScaledObject/{mapping(doc, 'metadata').get('name')} owns the "
                    "count: Argo CD and KEDA overwrite each other",
                    "MLOPS100",
                    HINTS["MLOPS100"],
                )
            elif paused is not None and str(paused) != str(replicas):
                yield Problem(
                    result.path,
                    resource_name(workload),
                    "spec.replicas",
                    f"is {replicas if replicas is not None else 'unset (1 on creation)'} while "
                    f"ScaledObject/{mapping(doc, 'metadata').get('name')} is paused at {paused}: the "
                    "Deployment starts pods the pause then removes",
                    "MLOPS100",
                    HINTS["MLOPS100"],
                )


def check_list_item_defaults(
    repo: Path, env: str, rendered: Sequence[RenderedKustomization]
) -> Iterator[Problem]:
    """MLOPS106: inside a list of a custom resource, every field whose CRD schema has a `default` is written.

    The class: the API server fills a structural schema's defaults in when it stores the object
    (kubernetes.io docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions,
    "Defaulting"), e.g. prometheus-operator v0.93.0's `RelabelConfig.action` (default
    `replace`) in ServiceMonitor/PodMonitor relabelings. A custom resource has no strategic
    merge keys, so a list is compared whole: Argo CD's diff of the live list item (with the
    default) against git's (without) finds a difference on every refresh, and the Application
    stays OutOfSync (argo-cd v3.5 docs/user-guide/diffing.md, "Known Kubernetes types in CRDs
    ... default values"). Fields outside lists are not reported: the three-way diff ignores a
    field git never set. Argo workflow kinds are not judged: their templates hold Argo
    expressions, and the controller, not the API server, reads their defaults.
    """
    del repo, env
    from mlops.conventions.paths import default_crds_dir
    from mlops.validate.objects.pod_specs import ARGO_WORKFLOW_KINDS
    from mlops.validate.runner.engine import schemas_for
    from mlops.validate.schema_checks.schemas import is_core_group, split_api_version

    index = schemas_for(default_crds_dir()).crds
    for result in rendered:
        for doc in result.documents:
            if not isinstance(doc, dict) or doc.get("kind") in ARGO_WORKFLOW_KINDS:
                continue
            group, version = split_api_version(str(doc.get("apiVersion", "")))
            if is_core_group(group):
                continue
            crd = index.get(group, str(doc.get("kind")), version)
            if crd is None:
                continue
            for field, name, default in _omitted_defaults(doc, crd.schema, [], False):
                yield Problem(
                    result.path,
                    resource_name(doc),
                    field_path([*field, name]),
                    f"omitted in a list item; the API server stores its default {default!r}, so Argo CD "
                    "sees the list differ from git on every sync (OutOfSync)",
                    "MLOPS106",
                    HINTS["MLOPS106"],
                )


def _omitted_defaults(
    value: Any, schema: Any, path: list[Any], in_list: bool
) -> Iterator[tuple[list[Any], str, Any]]:
    """(path of the object, field name, default) for each defaulted field missing below a list."""
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        if isinstance(properties, dict):
            if in_list:
                for name, sub in properties.items():
                    if isinstance(sub, dict) and "default" in sub and name not in value:
                        yield path, name, sub["default"]
            for name, child in value.items():
                yield from _omitted_defaults(child, properties.get(name), [*path, name], in_list)
        elif isinstance(schema.get("additionalProperties"), dict):
            for name, child in value.items():
                yield from _omitted_defaults(child, schema["additionalProperties"], [*path, name], in_list)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _omitted_defaults(item, schema["items"], [*path, index], True)


def _installs_chart(repo: Path, env: str, rendered: Sequence[RenderedKustomization], chart: str) -> bool:
    return any(chart in appsets.helm_charts(app) for _file, app in env_view(repo, env, rendered).applications)


def _value_files(app: dict[str, Any]) -> list[str]:
    """The repository-relative values files of an Application's Helm sources (`$values/<path>`)."""
    spec = mapping(app, "spec")
    sources = [spec.get("source"), *(spec.get("sources") or [])]
    files: list[str] = []
    for source in sources:
        for name in mapping(source, "helm").get("valueFiles") or [] if isinstance(source, dict) else []:
            if str(name).startswith(_VALUES_REF):
                files.append(str(name)[len(_VALUES_REF) :])
    return files


def _load(path: Path) -> dict[str, Any]:
    try:
        values = fast_yaml.load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return values if isinstance(values, dict) else {}
