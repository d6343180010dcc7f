"""The metrics that the platform's exporters and our own services emit, by source.

Alert rules and dashboards may only use these (or recording rules defined in
base/monitoring). Add a metric here when you start relying on it, with the exporter that
emits it; the gateway and trainer entries are also checked against a live scrape
(test_emitted_metrics.py).
"""

from __future__ import annotations


def _histogram(name: str) -> set[str]:
    return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}


GATEWAY = {
    # images/gateway/gateway/metrics.py (contract in the team brief)
    "gateway_requests_total",
    *_histogram("gateway_request_duration_seconds"),
    *_histogram("gateway_time_to_first_token_seconds"),
    *_histogram("gateway_inter_token_latency_seconds"),  # canary analysis (mlops canary analyze)
    "gateway_tokens_total",
    "gateway_backend_retries_total",
    "gateway_inflight_requests",
    # gateway.replicas: per pod of a backend (routing across replicas)
    "gateway_replica_requests_total",
    "gateway_replica_inflight_requests",
}

TRAINER = {
    # images/trainer/trainer/metrics.py, served by PyTorchJob rank 0
    "trainer_global_step",
    "trainer_loss",
    "trainer_tokens_per_second",
    "trainer_checkpoints_saved_total",
}

VLLM = {
    # vLLM's OpenAI server /metrics (v0.32, the Deployment's image); also checked against a
    # running vLLM (test_emitted_metrics.py). 0.10 renamed gpu_cache_usage_perc to kv_cache_usage_perc.
    "vllm:num_requests_waiting",
    "vllm:num_requests_running",
    "vllm:kv_cache_usage_perc",
    *_histogram("vllm:time_to_first_token_seconds"),
    *_histogram("vllm:e2e_request_latency_seconds"),
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    # prefix caching (on in the base): tokens looked up in, and found in, the prefix cache
    # (vllm/v1/metrics/loggers.py, counters vllm:prefix_cache_queries / vllm:prefix_cache_hits)
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
}

DCGM = {
    # NVIDIA dcgm-exporter default counters (default-counters.csv)
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_POWER_USAGE",
}

KARPENTER = {
    # Karpenter v1 controller (docs: reference/metrics)
    "karpenter_nodepools_usage",
    "karpenter_nodepools_limit",
    "karpenter_nodeclaims_created_total",
    "karpenter_nodeclaims_terminated_total",
    "karpenter_nodeclaims_disrupted_total",
    "karpenter_cloudprovider_errors_total",
}

ARGO_WORKFLOWS = {
    # Argo Workflows v3.6+/v4 controller (OpenTelemetry metrics, Prometheus exporter
    # without counter suffixes: util/telemetry/builder/values.yaml upstream)
    "argo_workflows_workflowtemplate_triggered_total",
    *_histogram("argo_workflows_workflowtemplate_runtime"),
    "argo_workflows_gauge",
    "argo_workflows_pods_gauge",
}

KUBE_STATE_METRICS = {
    # kube-state-metrics from kube-prometheus-stack; node labels allow-listed in its values
    "kube_pod_status_phase",
    "kube_pod_container_resource_requests",
    "kube_deployment_status_replicas_available",
    "kube_node_labels",
}

PROMETHEUS = {
    # Prometheus itself: one `up` series per scrape target
    "up",
}

KNOWN_METRICS: dict[str, str] = {
    name: source
    for source, names in {
        "gateway": GATEWAY,
        "trainer": TRAINER,
        "vllm": VLLM,
        "dcgm-exporter": DCGM,
        "karpenter": KARPENTER,
        "argo-workflows": ARGO_WORKFLOWS,
        "kube-state-metrics": KUBE_STATE_METRICS,
        "prometheus": PROMETHEUS,
    }.items()
    for name in names
}
"""Every metric name rules and dashboards may use, mapped to the exporter that emits it."""
