"""Several gateway workers on one port: traffic, metrics that add up, and stopping together."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gateway.shared_metrics import Peers, PeerUnavailable, SharedMetrics, merge_expositions
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

API_KEY = "test-key-1"
BODY = {"model": "support-chat", "messages": [{"role": "user", "content": "hi"}]}


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


def _sample(text: str, name: str) -> float:
    match = re.search(rf"^{name}\{{[^}}]*\}} ([0-9.e+]+)$", text, re.M)
    assert match, f"no {name} in\n{text}"
    return float(match.group(1))


@pytest.mark.slow
def test_a_scrape_of_any_worker_counts_every_workers_requests(gateway, fixed_backend) -> None:  # type: ignore[no-untyped-def]
    gw = gateway({"stable": (fixed_backend("4").url, 100)}, workers=2)
    workers = _children(gw.process.pid)
    assert len(workers) == 2
    # 16 connections: the kernel spreads them over both workers' sockets by their ports.
    for _ in range(16):
        with httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10) as client:
            for _ in range(5):
                answer = client.post(gw.url + "/v1/chat/completions", json=BODY)
                assert answer.status_code == 200
                assert answer.headers["x-model-version"] == "4"
    for _ in range(6):  # each scrape on a new connection, so it lands on either worker
        text = httpx.get(gw.url + "/metrics", timeout=10).text
        assert _sample(text, "gateway_requests_total") == 80
        assert _sample(text, "gateway_request_duration_seconds_count") == 80
        assert _sample(text, "gateway_inflight_requests") == 0

    gw.process.send_signal(signal.SIGTERM)
    assert gw.process.wait(30) == 0
    assert not any(_alive(pid) for pid in workers)


@pytest.mark.slow
def test_a_worker_that_dies_takes_the_whole_gateway_down(gateway, fixed_backend) -> None:  # type: ignore[no-untyped-def]
    gw = gateway({"stable": (fixed_backend("4").url, 100)}, workers=2)
    first, second = _children(gw.process.pid)
    os.kill(first, signal.SIGKILL)
    # A pod at half strength would stay ready; exiting lets the kubelet restart it whole.
    assert gw.process.wait(30) == 1
    deadline = time.monotonic() + 10
    while _alive(second) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(second)


def test_several_workers_need_a_socket_bound_for_sharing(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "--fd", str(sock.fileno()), "--workers", "2"],
            pass_fds=[sock.fileno()],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "GATEWAY_ROUTES_FILE": str(tmp_path / "routes.yaml")},
        )
    finally:
        sock.close()
    assert done.returncode == 2
    assert "several workers need a socket bound with SO_REUSEPORT" in done.stderr


def _registry(requests: float, inflight: float, seconds: list[float]) -> CollectorRegistry:
    registry = CollectorRegistry()
    counter = Counter("gateway_requests", "Requests.", ["model", "code"], registry=registry)
    counter.labels("support-chat", "200").inc(requests)
    Gauge("gateway_inflight_requests", "In flight.", ["model"], registry=registry).labels("support-chat").set(
        inflight
    )
    histogram = Histogram(
        "gateway_request_duration_seconds", "Time.", ["model"], buckets=(0.1, 1), registry=registry
    )
    for value in seconds:
        histogram.labels("support-chat").observe(value)
    return registry


def test_expositions_add_up_series_by_series() -> None:
    first = generate_latest(_registry(3, 1, [0.05, 0.5]))
    second = generate_latest(_registry(4, 2, [2.0]))
    extra = CollectorRegistry()
    Counter("gateway_requests", "Requests.", ["model", "code"], registry=extra).labels("other", "503").inc(9)

    merged = merge_expositions([first, second, generate_latest(extra)]).decode()

    families = {f.name: f for f in text_string_to_metric_families(merged)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples
    }
    assert samples[("gateway_requests_total", (("code", "200"), ("model", "support-chat")))] == 7
    assert samples[("gateway_requests_total", (("code", "503"), ("model", "other")))] == 9
    assert samples[("gateway_inflight_requests", (("model", "support-chat"),))] == 3
    duration = "gateway_request_duration_seconds"
    assert samples[(f"{duration}_bucket", (("le", "0.1"), ("model", "support-chat")))] == 1
    assert samples[(f"{duration}_bucket", (("le", "1.0"), ("model", "support-chat")))] == 2
    assert samples[(f"{duration}_bucket", (("le", "+Inf"), ("model", "support-chat")))] == 3
    assert samples[(f"{duration}_count", (("model", "support-chat"),))] == 3
    assert samples[(f"{duration}_sum", (("model", "support-chat"),))] == pytest.approx(2.55)
    # `_created` is when the first worker created the series, not a sum of timestamps.
    created = [v for (name, _), v in samples.items() if name == "gateway_requests_created"]
    assert created and all(1e9 < v < time.time() + 1 for v in created)
    assert families["gateway_requests"].type == "counter"
    assert families[duration].type == "histogram"


def test_workers_hand_their_metrics_to_the_scraped_one_over_their_sockets(tmp_path: Path) -> None:
    async def scenario() -> tuple[str, str]:
        first = SharedMetrics(Peers(tmp_path, 0, 2), _registry(3, 0, []))
        second = SharedMetrics(Peers(tmp_path, 1, 2), _registry(4, 0, []))
        await first.start()
        await second.start()
        both = (await first.exposition()).decode()
        second.close()
        await asyncio.sleep(0.05)
        (tmp_path / "1.sock").unlink()
        try:
            await first.exposition()
        except PeerUnavailable as exc:
            missing = str(exc)
        else:
            missing = ""
        first.close()
        return both, missing

    both, missing = asyncio.run(scenario())
    assert _sample(both, "gateway_requests_total") == 7
    # One worker's share missing would read as a counter reset: the scrape fails instead.
    assert missing.startswith("worker 1 did not hand over its metrics")
