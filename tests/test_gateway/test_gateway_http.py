"""The gateway's own HTTP/1.1 server, byte by byte: what clients other than the openai SDK send."""

from __future__ import annotations

import socket
import time

import pytest

pytestmark = pytest.mark.slow

API_KEY = "test-key-1"  # written into the keys file by the gateway fixture
BODY = b'{"model":"support-chat","messages":[{"role":"user","content":"hi"}]}'


def _completion(extra: bytes = b"", path: bytes = b"/v1/chat/completions") -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n%s\r\n%s" % (path, API_KEY.encode(), len(BODY), extra, BODY)
    )


def _exchange(url: str, request: bytes, answers: int, wait_close: bool = False) -> bytes:
    """Send raw bytes; read until `answers` complete answers (or the close) arrived."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
            if not wait_close and data.count(b"HTTP/1.1 2") >= answers and data.endswith(b"}"):
                return data
    raise AssertionError(f"no complete answer in 10 s: {data!r}")


@pytest.fixture
def gw(gateway, fixed_backend):  # type: ignore[no-untyped-def]
    """A gateway in front of one fixed backend that serves version 7."""
    return gateway({"stable": (fixed_backend("7").url, 100)})


def test_pipelined_requests_are_answered_in_order(gw) -> None:  # type: ignore[no-untyped-def]
    health = b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n"
    request = _completion() + health + _completion(path=b"/v1/completions")
    data = _exchange(gw.url, request, answers=3)
    chat = data.index(b'"chat.completion"')
    ok = data.index(b'{"status":"ok"}')
    text = data.index(b'"text_completion"')
    assert chat < ok < text


def test_http_1_0_client_gets_its_answer_and_the_connection_closes(gw) -> None:  # type: ignore[no-untyped-def]
    request = _completion().replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    data = _exchange(gw.url, request, answers=1, wait_close=True)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close" in data.lower()
    assert b'"chat.completion"' in data


def test_expect_100_continue_gets_continue_then_the_answer(gw) -> None:  # type: ignore[no-untyped-def]
    data = _exchange(gw.url, _completion(b"Expect: 100-continue\r\n"), answers=1)
    assert data.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")


def test_h2c_upgrade_is_answered_as_http_1_1(gw) -> None:  # type: ignore[no-untyped-def]
    # curl --http2 on an http:// URL asks this way; the answer comes in HTTP/1.1, as uvicorn's did.
    request = (
        b"GET /v1/models HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"
        b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
        % API_KEY.encode()
    )
    data = _exchange(gw.url, request, answers=1, wait_close=True)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'"id":"support-chat"' in data


def test_malformed_request_is_400_and_closed(gw) -> None:  # type: ignore[no-untyped-def]
    data = _exchange(gw.url, b"NOT HTTP AT ALL\r\n\r\n", answers=0, wait_close=True)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_chunked_upload_is_read_whole(gw) -> None:  # type: ignore[no-untyped-def]
    half = len(BODY) // 2
    pieces = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, BODY[:half], len(BODY) - half, BODY[half:])
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%s" % (API_KEY.encode(), pieces)
    )
    data = _exchange(gw.url, request, answers=1)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"x-model-version: 7" in data
