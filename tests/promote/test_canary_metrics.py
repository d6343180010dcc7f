"""What canary analysis counts in a window, from a real Prometheus scraping a page the test writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mlops.canary import prometheus
from mlops.canary.canary_metrics import measure
from support.canary import start_prometheus

LABELS = 'model="support-chat",backend="canary",version="2"'
REPO = Path(__file__).resolve().parents[2]


class _Page:
    """A /metrics page whose text the test sets."""

    def __init__(self) -> None:
        self.text = ""
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = page.text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def page() -> Iterator[_Page]:
    served = _Page()
    yield served
    served.server.shutdown()


def _requests(ok: int, errors: int | None = None) -> str:
    lines = [f'gateway_requests_total{{{LABELS},code="200"}} {ok}']
    if errors is not None:
        lines.append(f'gateway_requests_total{{{LABELS},code="500"}} {errors}')
    return "# TYPE gateway_requests_total counter\n" + "\n".join(lines) + "\n"


def _scraped(url: str, promql: str, value: float) -> None:
    deadline = time.monotonic() + 15
    while [v for _, v in prometheus.query(url, promql, time.time())] != [value]:
        assert time.monotonic() < deadline, f"Prometheus never scraped {promql} = {value}"
        time.sleep(0.2)


def test_a_series_born_inside_the_window_counts_from_zero(page: _Page, tmp_path: Path) -> None:
    # The canary's first 5xx appears between two scrapes. increase() alone sees one value of the
    # new series and no growth, so the 7 errors vanished and a failing canary looked healthy.
    page.text = _requests(10)
    with start_prometheus(tmp_path, [page.target]) as url:
        _scraped(url, f'gateway_requests_total{{{LABELS},code="200"}}', 10)
        time.sleep(2)
        start = time.time()
        time.sleep(1.5)
        page.text = _requests(30, errors=7)
        _scraped(url, f'gateway_requests_total{{{LABELS},code="500"}}', 7)
        time.sleep(1.5)
        at = time.time()
        track = measure(url, "support-chat", "canary", "2", int(at - start), at, [])
    assert track.errors == 7
    # 20 more answers on the series that existed (increase() extrapolates to the window's edges) + 7.
    assert 27 <= track.requests <= 27 + 20 * 0.6, track


def test_a_forged_series_from_another_target_is_ignored(page: _Page, tmp_path: Path) -> None:
    # Any pod Prometheus scrapes may emit gateway_* series, and may even label them as the
    # gateway's. Selected by model, backend and version only, 5000 forged 5xx answers of the
    # canary aborted a healthy canary (or forged 200s would have advanced a broken one).
    forger = _Page()
    forged = f'{{{LABELS},code="500",job="gateway",namespace="gateway"}}'
    try:
        page.text = _requests(100, errors=0)
        forger.text = f"# TYPE gateway_requests_total counter\ngateway_requests_total{forged} 0\n"
        with start_prometheus(tmp_path, [page.target], others=[forger.target]) as url:
            _scraped(url, f'gateway_requests_total{{{LABELS},code="200"}}', 100)
            # Its own job label does not survive the scrape (honor_labels is off): it becomes exported_job.
            _scraped(url, f'gateway_requests_total{{{LABELS},code="500",exported_job="gateway"}}', 0)
            time.sleep(1.5)
            start = time.time()
            page.text = _requests(200, errors=0)
            forger.text = f"# TYPE gateway_requests_total counter\ngateway_requests_total{forged} 5000\n"
            _scraped(url, f'sum(gateway_requests_total{{{LABELS},code="500"}})', 5000)
            _scraped(url, f'gateway_requests_total{{{LABELS},code="200"}}', 200)
            time.sleep(1.5)
            at = time.time()
            # A window reaching back past the change, so that it holds a scrape of the 100 before.
            track = measure(url, "support-chat", "canary", "2", int(at - start) + 2, at, [])
    finally:
        forger.server.shutdown()
    assert track.errors == 0, track
    # The gateway's own answers only: its 100 new ones (extrapolated), or all 200 when the window's
    # first scrape already held the second value; the forged 5000 would be far above either.
    assert 100 <= track.requests <= 200 * 1.1, track


def _dcgm_scrape() -> dict[str, object]:
    """The scrape settings prometheus-operator writes for the shipped dcgm-exporter ServiceMonitor's endpoint.

    honorLabels -> honor_labels, metricRelabelings -> metric_relabel_configs (the fields keep their
    meaning, in snake case: prometheus-operator pkg/prometheus/promcfg.go).
    """
    import yaml

    monitor = yaml.safe_load((REPO / "base/monitoring/servicemonitor-dcgm-exporter.yaml").read_text())
    (endpoint,) = monitor["spec"]["endpoints"]
    snake = {"targetLabel": "target_label", "sourceLabels": "source_labels"}
    rules = [{snake.get(k, k): v for k, v in rule.items()} for rule in endpoint.get("metricRelabelings", [])]
    return {"honor_labels": endpoint["honorLabels"], "metric_relabel_configs": rules}


@pytest.mark.parametrize("pinned", [True, False], ids=["shipped-dcgm-monitor", "honor-labels-alone"])
def test_a_target_whose_labels_are_honoured_forges_only_while_job_is_not_pinned(
    page: _Page, tmp_path: Path, pinned: bool
) -> None:
    # A target scraped with honor_labels (as dcgm-exporter's ServiceMonitor does) keeps the job and
    # namespace it emits. The shipped monitor pins job after the scrape (MLOPS086); without that,
    # 5000 forged 5xx answers land in the window canary analysis reads.
    scrape = _dcgm_scrape()
    assert scrape["honor_labels"] is True and scrape["metric_relabel_configs"]
    if not pinned:
        scrape["metric_relabel_configs"] = []
    forger = _Page()
    forged = f'{{{LABELS},code="500",job="gateway",namespace="gateway"}}'
    try:
        page.text = _requests(100, errors=0)
        forger.text = f"# TYPE gateway_requests_total counter\ngateway_requests_total{forged} 0\n"
        with start_prometheus(tmp_path, [page.target], others=[forger.target], other_scrape=scrape) as url:
            _scraped(url, f'gateway_requests_total{{{LABELS},code="200"}}', 100)
            job = "dcgm-exporter" if pinned else "gateway"
            forged_series = (
                f'gateway_requests_total{{{LABELS},code="500",job="{job}",instance="{forger.target}"}}'
            )
            _scraped(url, forged_series, 0)
            time.sleep(1.5)
            start = time.time()
            forger.text = f"# TYPE gateway_requests_total counter\ngateway_requests_total{forged} 5000\n"
            _scraped(url, f'sum(gateway_requests_total{{{LABELS},code="500"}})', 5000)
            time.sleep(1.5)
            at = time.time()
            track = measure(url, "support-chat", "canary", "2", int(at - start) + 2, at, [])
    finally:
        forger.server.shutdown()
    if pinned:
        assert track.errors == 0, track
    else:  # increase() extrapolates to the window's edges
        assert track.errors >= 5000, track
