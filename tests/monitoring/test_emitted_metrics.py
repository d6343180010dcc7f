"""The gateway, trainer and vLLM metrics and labels that rules, dashboards and KEDA use exist when running."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from known_metrics import GATEWAY, TRAINER, VLLM
from mlops.rendering.render import render_envs
from prometheus_client.parser import text_string_to_metric_families
from promql import dashboard_queries, metric_names, substitute_grafana_variables
from support.vllm_servers import VllmReplica

REPO = Path(__file__).resolve().parents[2]
GATEWAY_SRC = REPO / "images" / "gateway"
API_KEY = "monitoring-test-key"


def _used_metrics(objects: list[dict[str, Any]]) -> set[str]:
    """Every metric name the rendered PrometheusRules and the dashboards select."""
    used = set()
    for obj in objects:
        if obj.get("kind") == "PrometheusRule":
            for group in obj["spec"]["groups"]:
                for rule in group["rules"]:
                    used |= metric_names(rule["expr"])
    for path in (REPO / "base" / "monitoring" / "dashboards").glob("*.json"):
        for _, expr in dashboard_queries(json.loads(path.read_text())):
            used |= metric_names(substitute_grafana_variables(expr))
    return used


def _samples(text: str) -> dict[str, list[dict[str, str]]]:
    """Sample name -> the label sets it was exposed with."""
    found: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(dict(sample.labels))
    return found


def _start(module: str, args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """Start `python -m module` on a socket bound here to a free port; wait for /health."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args, "--fd", str(sock.fileno())],
        pass_fds=[sock.fileno()],
        # `gateway` from the image's folder, `support.fixed_backend` from tests/.
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(GATEWAY_SRC), str(REPO / "tests")]), **env},
    )
    sock.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{module} exited with {process.returncode}"
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(f"{module} did not answer /health within 60 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real gateway routing `support-chat` to a fixed-answer backend serving version 3.

    A second backend that refuses connections takes most of the weight, so requests are
    retried on the first one and the retry counter has samples.
    """
    folder = tmp_path_factory.mktemp("gateway")
    backend, backend_url = _start(
        "support.fixed_backend", ["--served-model-name", "support-chat", "--model-version", "3"], {}
    )
    try:
        dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        dead.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}"
        dead.close()
        backends = {
            "stable": {"url": backend_url, "weight": 1},
            "gone": {"url": dead_url, "weight": 99},
        }
        routes = {"models": {"support-chat": {"backends": backends}}}
        (folder / "routes.yaml").write_text(yaml.safe_dump(routes))
        (folder / "keys").write_text(f"{API_KEY}\n")
        env = {
            "GATEWAY_ROUTES_FILE": str(folder / "routes.yaml"),
            "GATEWAY_API_KEYS_FILE": str(folder / "keys"),
            "GATEWAY_VERSION_REFRESH_S": "0.2",
        }
        gateway, gateway_url = _start("gateway", ["--log-level", "warning"], env)
        try:
            yield gateway_url
        finally:
            _stop(gateway)
    finally:
        _stop(backend)


def test_gateway_serves_every_metric_rules_and_dashboards_use(
    gateway_url: str, monitoring_objects: dict[str, list[dict[str, Any]]]
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    body = {"model": "support-chat", "messages": [{"role": "user", "content": "where is my order?"}]}
    for stream in (False, True, False, True):
        answer = httpx.post(
            f"{gateway_url}/v1/chat/completions", json={**body, "stream": stream}, headers=headers, timeout=30
        )
        assert answer.status_code == 200, answer.text
    samples = _samples(httpx.get(f"{gateway_url}/metrics", timeout=10).text)

    used = {
        name
        for env in monitoring_objects.values()
        for name in _used_metrics(env)
        if name.startswith("gateway_")
    }
    assert used <= GATEWAY
    missing = used - set(samples)
    assert not missing, f"rules or dashboards use gateway metrics the gateway does not serve: {missing}"

    labels = {
        "gateway_requests_total": {"model", "backend", "version", "code"},
        "gateway_request_duration_seconds_bucket": {"model", "backend", "version", "le"},
        "gateway_time_to_first_token_seconds_bucket": {"model", "backend", "version", "le"},
        "gateway_inter_token_latency_seconds_bucket": {"model", "backend", "version", "le"},
        "gateway_tokens_total": {"model", "version", "type"},
        "gateway_inflight_requests": {"model"},
    }
    for name, wanted in labels.items():
        assert any(wanted <= set(s) for s in samples[name]), f"{name} lacks labels {wanted}: {samples[name]}"
    # The latency SLO counts requests under 10 s: the histogram must have that bucket.
    assert any(s.get("le") == "10.0" for s in samples["gateway_request_duration_seconds_bucket"])
    assert {s["type"] for s in samples["gateway_tokens_total"]} == {"prompt", "completion"}
    assert any(s["model"] == "support-chat" and s["code"] == "200" for s in samples["gateway_requests_total"])


def test_trainer_serves_every_metric_rules_and_dashboards_use(
    monitoring_objects: dict[str, list[dict[str, Any]]],
) -> None:
    from trainer.metrics import TrainerMetrics

    metrics = TrainerMetrics()
    port = metrics.serve(0, addr="127.0.0.1")
    try:
        metrics.step(12, loss=2.5, tokens_per_second=1800.0)
        metrics.checkpoints_saved.inc()
        samples = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    finally:
        metrics.stop()

    used = {
        name
        for env in monitoring_objects.values()
        for name in _used_metrics(env)
        if name.startswith("trainer_")
    }
    assert used == TRAINER, f"rules and dashboards use {used}, known_metrics.TRAINER lists {TRAINER}"
    missing = used - set(samples)
    assert not missing, f"rules or dashboards use trainer metrics the trainer does not serve: {missing}"
    assert samples["trainer_global_step"] == [{}]


# Labels Prometheus gives every series of a PodMonitor target, besides the relabelings'.
_TARGET_LABELS = {"namespace", "pod", "container", "endpoint", "instance", "job"}
_SELECTOR = re.compile(r"(vllm:[A-Za-z0-9_:]+)\s*\{([^{}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^()]*)\)")


def _vllm_queries(
    monitoring: dict[str, list[dict[str, Any]]], models: list[dict[str, Any]]
) -> list[tuple[str, str]]:
    """(where, expr) of every PromQL query that selects a vllm:* metric: rules, dashboards, KEDA."""
    queries = []
    for env, objects in monitoring.items():
        for obj in objects:
            if obj.get("kind") == "PrometheusRule":
                for group in obj["spec"]["groups"]:
                    for rule in group["rules"]:
                        name = rule.get("alert") or rule.get("record")
                        where = f"{env} PrometheusRule {obj['metadata']['name']} {name}"
                        queries.append((where, rule["expr"]))
    for path in (REPO / "base" / "monitoring" / "dashboards").glob("*.json"):
        for where, expr in dashboard_queries(json.loads(path.read_text())):
            queries.append((f"{path.name} {where}", substitute_grafana_variables(expr)))
    for obj in models:
        if obj.get("kind") == "ScaledObject":
            for trigger in obj["spec"]["triggers"]:
                if trigger["type"] == "prometheus":
                    queries.append((f"ScaledObject {obj['metadata']['name']}", trigger["metadata"]["query"]))
    return [(where, expr) for where, expr in queries if "vllm:" in expr]


def _podmonitor_labels(monitoring: dict[str, list[dict[str, Any]]]) -> set[str]:
    """The labels the vLLM PodMonitor's relabelings add to every series."""
    labels = set()
    for objects in monitoring.values():
        for obj in objects:
            if obj.get("kind") == "PodMonitor" and obj["metadata"]["name"] == "vllm":
                for endpoint in obj["spec"]["podMetricsEndpoints"]:
                    relabelings = endpoint.get("relabelings", [])
                    labels |= {r["targetLabel"] for r in relabelings if "targetLabel" in r}
    assert labels, "no PodMonitor vllm in the rendered monitoring"
    return labels


@pytest.mark.slow
def test_vllm_serves_every_metric_and_label_rules_dashboards_and_keda_use(
    vllm: VllmReplica, monitoring_objects: dict[str, list[dict[str, Any]]], repo_root: Path
) -> None:
    # A request first, so the histograms and token counters have samples.
    answer = httpx.post(
        vllm.url + "/v1/completions",
        json={"model": "support-chat", "prompt": "where is my order", "max_tokens": 4},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    samples = _samples(httpx.get(vllm.url + "/metrics", timeout=10).text)
    release = httpx.get(vllm.url + "/version", timeout=10).json()["version"]
    models = [d for r in render_envs(repo_root, component="models") for d in r.documents]
    queries = _vllm_queries(monitoring_objects, models)
    assert any(where.startswith("ScaledObject") for where, _ in queries), "no KEDA query read"
    scraped = _TARGET_LABELS | _podmonitor_labels(monitoring_objects)

    problems = []
    for where, expr in queries:
        for name in sorted(n for n in metric_names(expr) if n.startswith("vllm:")):
            if name not in samples:
                problems.append(f"{where}: vLLM {release} has no metric {name}")
            elif name not in VLLM:
                problems.append(f"{where}: {name} is missing from known_metrics.VLLM")
        served = {label for name in metric_names(expr) for s in samples.get(name, []) for label in s}
        for name, matchers in _SELECTOR.findall(expr):
            vllm_labels = {label for s in samples.get(name, []) for label in s}
            for label in _MATCHER.findall(matchers):
                if label not in vllm_labels | scraped:
                    given = sorted(vllm_labels)
                    problems.append(f"{where}: {name} has no label {label!r} (vLLM gives {given})")
        if all(n.startswith("vllm:") for n in metric_names(expr)):
            for grouping in _GROUPING.findall(expr):
                for label in filter(None, (g.strip() for g in grouping.split(","))):
                    if label not in served | scraped | {"le"}:
                        problems.append(f"{where}: groups by {label!r}, which no vLLM series has")
    assert not problems, "\n".join(problems)
    # The KEDA query selects by vLLM's own label: the served name the Deployment passes first.
    assert {s.get("model_name") for s in samples["vllm:num_requests_waiting"]} == {"support-chat"}
