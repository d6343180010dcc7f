"""The gateway under hostile clients: each test attacks a real gateway process over a socket."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

API_KEY = "test-key-1"  # written into the keys file by the gateway fixture
BODY = b'{"model":"support-chat","messages":[{"role":"user","content":"hi"}]}'


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_until_closed(sock: socket.socket, within: float) -> tuple[bytes, float]:
    """Everything the gateway sends until it closes the connection, and when it closed (s from now)."""
    started = time.monotonic()
    data = b""
    while True:
        remaining = within - (time.monotonic() - started)
        kept_open = f"the gateway kept the connection open for {within} s; got {data!r}"
        if remaining <= 0:
            raise AssertionError(kept_open)
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        except TimeoutError:
            raise AssertionError(kept_open) from None
        if not chunk:
            return data, time.monotonic() - started
        data += chunk


def _chat(url: str, key: str = API_KEY) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        content=BODY,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=10,
    )


@pytest.fixture
def gw(gateway, fixed_backend):  # type: ignore[no-untyped-def]
    """A gateway (headers due within 1 s, at most 8 connections) in front of a backend serving version 7."""
    env = {"GATEWAY_HEADER_TIMEOUT_S": "1", "GATEWAY_MAX_CONNECTIONS": "8"}
    return gateway({"stable": (fixed_backend("7").url, 100)}, env=env)


def test_slow_header_client_is_cut_off_with_408(gw) -> None:  # type: ignore[no-untyped-def]
    with _connect(gw.url) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n")
        started = time.monotonic()
        closed = False
        for i in range(30):  # one header line every 0.2 s: slowloris, never the blank line
            time.sleep(0.2)
            try:
                sock.sendall(b"X-Slow-%d: x\r\n" % i)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        data, _ = _read_until_closed(sock, within=1) if not closed else (sock.recv(65536), 0.0)
        elapsed = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
    assert 1 <= elapsed < 3.5, elapsed  # the deadline is 1 s, checked once a second
    assert _chat(gw.url).status_code == 200  # the others are served meanwhile


def test_connection_that_never_speaks_is_closed(gw) -> None:  # type: ignore[no-untyped-def]
    with _connect(gw.url) as sock:
        data, closed_after = _read_until_closed(sock, within=4)
    assert data == b""
    assert closed_after < 3.5


def test_64_kib_header_is_refused_with_431_and_closed(gw) -> None:  # type: ignore[no-untyped-def]
    big = b"x" * 64 * 1024
    request = b"GET /v1/models HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\nX-Big: %s\r\n\r\n" % (
        API_KEY.encode(),
        big,
    )
    with _connect(gw.url) as sock:
        sock.sendall(request)
        data, _ = _read_until_closed(sock, within=3)
    assert data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), data[:200]
    assert b'"code":"request_header_fields_too_large"' in data
    assert b"connection: close" in data


def test_header_growing_past_the_cap_is_refused_before_it_ends(gw) -> None:  # type: ignore[no-untyped-def]
    # Never finished, so only the running count can stop it (well before the 1 s deadline's 408).
    with _connect(gw.url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\nX-Big: ")
        for _ in range(16):
            try:
                sock.sendall(b"x" * 8192)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.01)
        data, _ = _read_until_closed(sock, within=3)
    assert data.startswith(b"HTTP/1.1 431 "), data[:200]


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        # No key on a completion path: refused at once, the announced megabyte never awaited.
        (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000000\r\n\r\n", b"401"),
        (b"POST /v1/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n", b"401"),
        # A key, but more than the body limit announced.
        (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"
            b"Content-Length: 100000000\r\n\r\n" % API_KEY.encode(),
            b"413",
        ),
        # Paths that take no body answer without it.
        (b"GET /health HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\n", b"200"),
        (b"POST /v1/models HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\n", b"405"),
        (b"POST /metrics HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n", b"405"),
    ],
)
def test_announced_body_is_not_awaited_before_authentication(gw, request_head: bytes, status: bytes) -> None:  # type: ignore[no-untyped-def]
    with _connect(gw.url) as sock:
        sock.sendall(request_head)  # and never the body
        data, closed_after = _read_until_closed(sock, within=3)
    assert data.startswith(b"HTTP/1.1 " + status), data[:200]
    assert closed_after < 0.9  # answered and closed at once, not by the 1 s header deadline


def test_connections_beyond_the_cap_are_refused_with_503(gw) -> None:  # type: ignore[no-untyped-def]
    held = []
    try:
        for _ in range(8):  # keep-alive connections, each with a request answered: the cap
            sock = _connect(gw.url)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
            held.append(sock)
        with _connect(gw.url) as extra:
            data, closed_after = _read_until_closed(extra, within=3)
        assert data.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), data
        assert b"too many open connections" in data
        assert closed_after < 0.9
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the gateway notices the close and takes a new connection again
            try:
                response = httpx.get(gw.url + "/health", timeout=5)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                break
            assert time.monotonic() < deadline, "a freed slot was never reused"
            time.sleep(0.05)
    finally:
        for sock in held:
            sock.close()


def _wait_for(check, timeout: float = 5) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_emptied_or_missing_keys_file_denies_everyone_and_fails_ready(gateway, fixed_backend) -> None:  # type: ignore[no-untyped-def]
    gw = gateway({"stable": (fixed_backend("7").url, 100)})
    _wait_for(lambda: httpx.get(gw.url + "/ready", timeout=5).status_code == 200)
    assert _chat(gw.url).status_code == 200

    gw.keys_file.write_text("")  # revoke every key at once
    _wait_for(lambda: _chat(gw.url).status_code == 401)
    ready = httpx.get(gw.url + "/ready", timeout=5)
    assert ready.status_code == 503
    assert f"{gw.keys_file}: no API key in the file" in ready.json()["problems"][0]
    models = httpx.get(gw.url + "/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)
    assert models.status_code == 401

    gw.keys_file.write_text(f"{API_KEY}\n")
    _wait_for(lambda: _chat(gw.url).status_code == 200)
    gw.keys_file.unlink()  # an unmounted (unreadable) Secret denies too
    _wait_for(lambda: _chat(gw.url).status_code == 401)
    assert "cannot read the API keys file" in httpx.get(gw.url + "/ready", timeout=5).json()["problems"][0]


class _SilentBackend:
    """A backend that answers /v1/models but never a completion, and notes when the gateway hangs up."""

    def __init__(self) -> None:
        self.completion_received = threading.Event()
        self.completion_dropped = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> _SilentBackend:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, sock=self._sock)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if head.startswith(b"GET /v1/models"):
                body = b'{"object":"list","data":[{"id":"support-chat"},{"id":"support-chat:7"}]}'
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                continue
            self.completion_received.set()
            try:  # never answer; the gateway closing the connection ends this read
                while await reader.read(65536):
                    pass
            except ConnectionError:
                pass
            self.completion_dropped.set()
            return


@pytest.fixture
def silent_backend() -> Iterator[_SilentBackend]:
    with _SilentBackend() as backend:
        yield backend


def test_client_leaving_before_the_answer_drops_the_backend_request(gateway, silent_backend) -> None:  # type: ignore[no-untyped-def]
    gw = gateway({"stable": (silent_backend.url, 100)}, read_timeout_s=60)
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (API_KEY.encode(), len(BODY), BODY)
    )
    with _connect(gw.url) as sock:
        sock.sendall(request)
        assert silent_backend.completion_received.wait(5)
    # The client has gone; the backend must see the gateway hang up long before its 60 s timeout.
    assert silent_backend.completion_dropped.wait(3), "the backend request outlived its client"
    _wait_for(lambda: 'code="499"' in gw.metrics())


def test_backend_gets_the_gateway_key_never_the_clients(gateway, fixed_backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    backend = fixed_backend("7", api_key="backend-secret")
    key_file = tmp_path / "backend-key"
    key_file.write_text("not-the-backend-key\n")
    gw = gateway({"stable": (backend.url, 100)}, env={"GATEWAY_BACKEND_API_KEY_FILE": str(key_file)})

    refused = _chat(gw.url)  # the backend refuses a wrong key (as it would the client's own)
    assert refused.status_code == 401 and refused.json() == {"error": "Unauthorized"}

    key_file.write_text("backend-secret\n")  # rotated: re-read without a restart
    _wait_for(lambda: _chat(gw.url).status_code == 200)
    # The keyed backend accepts only exactly its own key: a forwarded client key would be refused.
    # Its /v1/models (the version probe, every GATEWAY_VERSION_REFRESH_S = 15 s) is keyed too:
    # without the key the version would stay unknown.
    _wait_for(lambda: _chat(gw.url).headers.get("x-model-version") == "7", timeout=30)
    assert httpx.get(gw.url + "/ready", timeout=5).status_code == 200

    key_file.write_text("")
    _wait_for(lambda: httpx.get(gw.url + "/ready", timeout=5).status_code == 503)
    problems = httpx.get(gw.url + "/ready", timeout=5).json()["problems"]
    assert f"{key_file}: the backend API key file is empty" in problems
