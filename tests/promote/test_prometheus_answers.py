"""What canary analysis says when the URL it was given is not Prometheus' API: one line, not the page."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mlops.canary.prometheus import PrometheusError, query

PAGE = (
    "<!doctype html>\n<html>\n<head><title>Grafana</title></head>\n<body>\n"
    + "<div>x</div>\n" * 200
    + "</html>\n"
)


class _WebUi(BaseHTTPRequestHandler):
    """A web UI on the port (Grafana, a proxy's login page): HTML for every path."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web_ui() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebUi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_html_answer_is_one_line_naming_the_url_to_pass(web_ui: str) -> None:
    with pytest.raises(PrometheusError) as caught:
        query(web_ui, "up", 0.0)
    message = str(caught.value)
    assert "\n" not in message and "<html" not in message and len(message) < 400, message
    assert message.startswith(
        f"{web_ui}/api/v1/query answered HTTP 200 with text/html, not Prometheus' JSON API"
    )
    assert "http://127.0.0.1:9090" in message
