"""MLOPS086: no monitor but the gateway's can give series job="gateway",namespace="gateway" (planted).

The attack itself, against a real Prometheus, is tests/promote/test_canary_metrics.py
(`test_a_target_whose_labels_are_honoured_forges_only_while_job_is_not_pinned`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops.validate.objects.violations import HINTS
from support.validate_cli import by_folder, validate_lines

MONITORING = "overlays/dev/monitoring"
PIN = (
    "      metricRelabelings:\n        - action: replace\n          targetLabel: job\n"
    "          replacement: dcgm-exporter\n"
)


def _replace(file: Path, old: str, new: str) -> None:
    text = file.read_text()
    assert old in text, f"{file} no longer contains {old!r}: update the planted defect"
    file.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    monitoring = repo_copy / "base/monitoring"
    # dcgm-exporter honours its targets' labels and no longer pins job after the scrape.
    _replace(monitoring / "servicemonitor-dcgm-exporter.yaml", PIN, "")
    # vLLM's monitor takes job from a pod label, and copies every pod label (labelmap).
    _replace(
        monitoring / "podmonitor-vllm.yaml",
        "        - action: replace\n          targetLabel: job\n          replacement: vllm\n",
        "        - action: replace\n          sourceLabels: [__meta_kubernetes_pod_label_app]\n"
        "          targetLabel: job\n"
        "        - action: labelmap\n          regex: __meta_kubernetes_pod_label_(.+)\n",
    )
    # MLflow's monitor names its series as the gateway's, and takes job from a Service label.
    _replace(monitoring / "servicemonitor-mlflow.yaml", "replacement: mlflow", "replacement: gateway")
    _replace(
        monitoring / "servicemonitor-mlflow.yaml",
        "spec:\n  namespaceSelector:",
        "spec:\n  jobLabel: app.kubernetes.io/name\n  targetLabels: [namespace]\n  namespaceSelector:",
    )
    return validate_lines(repo_copy, crds_dir, "dev")


def _line(resource: str, field: str, message: str) -> str:
    return f"{MONITORING}: {resource}: {field}: {message} [MLOPS086: {HINTS['MLOPS086']}]"


@pytest.mark.parametrize(
    ("resource", "field", "message"),
    [
        (
            "ServiceMonitor/dcgm-exporter",
            "spec.endpoints[0].honorLabels",
            "true lets each scraped target set its own job and namespace labels, so it can emit gateway_* "
            'series with job="gateway",namespace="gateway" that canary analysis trusts',
        ),
        (
            "PodMonitor/vllm",
            "spec.podMetricsEndpoints[0].relabelings[0]",
            "writes job from the source labels ['__meta_kubernetes_pod_label_app']: a scraped object that "
            "sets them to 'gateway' claims the gateway's job",
        ),
        (
            "PodMonitor/vllm",
            "spec.podMetricsEndpoints[0].relabelings[1]",
            "labelmap (regex '__meta_kubernetes_pod_label_(.+)') copies labels under names taken from the "
            "labels it matches, so a label of the scraped object can become job or namespace and claim the "
            "gateway's",
        ),
        (
            "ServiceMonitor/mlflow",
            "spec.endpoints[0].relabelings[0]",
            "sets job=\"gateway\", the gateway's own, on series that are not the gateway's",
        ),
        (
            "ServiceMonitor/mlflow",
            "spec.jobLabel",
            "takes `job` from the Services' label 'app.kubernetes.io/name': a Service labelled 'gateway' "
            'gives its series job="gateway", which canary analysis trusts',
        ),
        (
            "ServiceMonitor/mlflow",
            "spec.targetLabels",
            "copies the label 'namespace' of the scraped objects onto their series: whoever labels a pod or "
            'Service namespace: gateway gives it the namespace="gateway" canary analysis trusts',
        ),
    ],
    ids=[
        "honor-labels",
        "job-from-a-pod-label",
        "labelmap",
        "job-set-to-gateway",
        "job-label",
        "target-labels",
    ],
)
def test_a_monitor_that_can_claim_the_gateways_labels(
    lines: list[str], resource: str, field: str, message: str
) -> None:
    assert _line(resource, field, message) in by_folder(lines)


def test_only_the_planted_monitors_are_reported(lines: list[str]) -> None:
    assert len([line for line in lines if "[MLOPS086:" in line]) == 6
