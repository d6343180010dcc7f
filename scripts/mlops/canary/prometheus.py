"""A small client for Prometheus' HTTP query API (`/api/v1/query`), for canary analysis."""

from __future__ import annotations

import os

from mlops.conventions.errors import MlopsError

DEFAULT_URL = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
"""The in-cluster Prometheus (apps/upstream/kube-prometheus-stack); `$PROMETHEUS_URL` overrides it."""

TIMEOUT_S = 30


class PrometheusError(MlopsError):
    """Prometheus could not be reached or refused a query; the message says which and why."""


def default_url() -> str:
    """`$PROMETHEUS_URL`, else the in-cluster service."""
    return os.environ.get("PROMETHEUS_URL") or DEFAULT_URL


def query(url: str, promql: str, at: float) -> list[tuple[dict[str, str], float]]:
    """Evaluate the instant query `promql` at unix time `at`; return (labels, value) per series.

    Raises:
        PrometheusError: unreachable, an HTTP error, or a query Prometheus rejects.
    """
    # Imported here: `mlops validate` imports this module's neighbours for their constants, and
    # httpx (with rich, through its CLI module) is a fifth of its start-up.
    import httpx

    endpoint = url.rstrip("/") + "/api/v1/query"
    try:
        response = httpx.get(endpoint, params={"query": promql, "time": f"{at:.3f}"}, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise PrometheusError(
            f"cannot reach Prometheus at {url} ({exc}): from a laptop, run "
            "`kubectl -n monitoring port-forward svc/kube-prometheus-stack-prometheus 9090` "
            "and pass --prometheus http://127.0.0.1:9090"
        ) from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "status" not in body:
        # Something else answered (a web UI, a proxy's login page, Grafana): its page is no
        # use in a terminal, so say what answered and what URL is expected, on one line.
        kind = response.headers.get("content-type", "no content type").split(";")[0].strip()
        raise PrometheusError(
            f"{endpoint} answered HTTP {response.status_code} with {kind}, not Prometheus' JSON API: pass "
            "--prometheus (or PROMETHEUS_URL) the Prometheus base URL without a path, e.g. "
            "http://127.0.0.1:9090 after `kubectl -n monitoring port-forward "
            "svc/kube-prometheus-stack-prometheus 9090`"
        )
    if response.status_code != 200 or body.get("status") != "success":
        reason = " ".join(str(body.get("error") or body.get("errorType") or "no reason given").split())[:300]
        raise PrometheusError(
            f"Prometheus at {url} refused query {promql!r}: HTTP {response.status_code}: {reason}"
        )
    data = body["data"]
    if data.get("resultType") != "vector":
        raise PrometheusError(f"query {promql!r} returned a {data.get('resultType')}, not an instant vector")
    return [(series["metric"], float(series["value"][1])) for series in data["result"]]
