"""The gateway's HTTP/1.1 server: asyncio protocols and httptools, completions served without ASGI.

Profiled under load (py-spy, wrk at 64 connections), uvicorn spent more CPU per request than
the proxying itself: an ASGI scope and four message dicts per request, its request cycle object,
every response header checked by two regular expressions, and the response head and body
written in two ``send`` system calls. Here a completion request goes from the parser's
callbacks to ``Gateway.complete`` as one :class:`Exchange`, and a whole answer leaves in one
write. Every other path (``/health``, ``/ready``, ``/v1/models``, ``/metrics``, unknown ones)
goes through a small ASGI adapter to the FastAPI app, where microseconds do not matter.

What the server keeps from uvicorn: keep-alive with an idle timeout, pipelined requests
answered in order, ``Expect: 100-continue``, chunked request bodies, back-pressure on slow
stream readers, 400 on a malformed request, and a graceful stop on SIGTERM (stop accepting,
finish the requests in flight, then close).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from collections import deque
from collections.abc import MutableMapping
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httptools

from gateway.exchange import Exchange, status_line

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger("gateway.server")

Message = MutableMapping[str, Any]

# Idle keep-alive connections are closed after this long (uvicorn's setting was 75 s, longer
# than the AWS load balancer's 60 s idle timeout, so the balancer closes first and never
# sends on a connection the gateway is closing).
KEEP_ALIVE_S = 75.0
# How long a SIGTERM waits for requests in flight (the pod's grace period is longer).
STOP_GRACE_S = 25.0


class _Connection(asyncio.Protocol):
    """One client connection: parses requests, runs them one at a time, in order."""

    def __init__(self, server: GatewayServer) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.paused: asyncio.Future[None] | None = None
        self.idle_since = time.monotonic()
        self._parser = httptools.HttpRequestParser(self)
        self._reading: Exchange | None = None  # the request being parsed
        self._active: Exchange | None = None  # the request being answered
        self._queue: deque[Exchange] = deque()  # pipelined requests waiting their turn
        self._held: list[bytes] = []  # written at the end of this loop turn (write_soon)
        self._limit = server.gateway.settings.max_body_bytes
        self._completion_paths = server.gateway.completion_paths

    # ---- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        if self.paused is not None and not self.paused.done():
            self.paused.set_result(None)
        for exchange in (self._active, *self._queue):
            if exchange is not None and not exchange.answered and exchange.on_disconnect is not None:
                exchange.on_disconnect()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # An `Upgrade:` request (h2c, websocket) is answered as plain HTTP/1.1, as uvicorn
            # did; the parser stops after it, so it is the connection's last request.
            last = self._queue[-1] if self._queue else self._active
            if last is None:
                self._close()
            else:
                last.keep_alive = False
        except httptools.HttpParserError:
            self._bad_request(b"Invalid HTTP request received.")

    def pause_writing(self) -> None:
        if self.paused is None:
            self.paused = self.loop.create_future()

    def resume_writing(self) -> None:
        paused, self.paused = self.paused, None
        if paused is not None and not paused.done():
            paused.set_result(None)

    # ---- httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._reading = Exchange(self)

    def on_url(self, url: bytes) -> None:
        exchange = self._reading
        assert exchange is not None
        exchange.path += url

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self._reading
        assert exchange is not None
        exchange.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        exchange = self._reading
        assert exchange is not None
        parser = self._parser
        exchange.received_at = time.perf_counter()
        exchange.method = parser.get_method()
        exchange.http_version = parser.get_http_version()
        exchange.keep_alive = parser.should_keep_alive() and not self.server.stopping
        path, _, exchange.query = exchange.path.partition(b"?")
        exchange.path = path
        expect_continue = False
        for name, value in exchange.headers:
            if name == b"content-length":
                # httptools has checked that it is a number.
                if int(value) > self._limit:
                    exchange.refusal = (413, self.server.gateway.too_large)
            elif name == b"expect" and value.lower() == b"100-continue":
                expect_continue = True
        if exchange.method == b"POST" and path in self._completion_paths:
            refusal = self.server.gateway.refusal(exchange.headers)
            if refusal is not None:
                exchange.refusal = refusal
        if exchange.refusal is not None:
            self._refuse_early(exchange)
        elif expect_continue and self._active is None:
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        exchange = self._reading
        assert exchange is not None
        if exchange.refusal is not None:
            return  # refused: the rest of the body is read and dropped
        exchange.size += len(body)
        if exchange.size > self._limit:
            exchange.parts = []
            exchange.refusal = (413, self.server.gateway.too_large)
            self._refuse_early(exchange)
            return
        exchange.parts.append(body)

    def on_message_complete(self) -> None:
        exchange = self._reading
        assert exchange is not None
        self._reading = None
        exchange.body_complete = True
        if exchange.answered:  # refused early; keep-alive decided now that its body is drained
            if not exchange.keep_alive:
                self._close()
            return
        if self._active is not None:
            self._queue.append(exchange)
            assert self.transport is not None
            self.transport.pause_reading()  # one waiting request is enough; TCP holds the rest
            return
        self._run(exchange)

    # ---- answering -------------------------------------------------------------------------------
    def _refuse_early(self, exchange: Exchange) -> None:
        """Answer a refusal before its body is read, unless an earlier request is still running."""
        if self._active is None and not self._queue:
            assert exchange.refusal is not None
            self._active = exchange
            exchange.respond_json(*exchange.refusal)

    def _run(self, exchange: Exchange) -> None:
        self._active = exchange
        if exchange.refusal is not None:
            exchange.respond_json(*exchange.refusal)
            return
        upstream_path = self._completion_paths.get(exchange.path) if exchange.method == b"POST" else None
        if upstream_path is not None:
            self.loop.create_task(self._complete(exchange, upstream_path))
        else:
            self.loop.create_task(self._asgi(exchange))

    async def _complete(self, exchange: Exchange, upstream_path: bytes) -> None:
        try:
            await self.server.gateway.complete(exchange, upstream_path)
        except Exception:
            log.exception("completion request failed")
            self._fail(exchange)

    def _fail(self, exchange: Exchange) -> None:
        if exchange.answered:
            return
        if exchange.streaming:  # the head is out: cutting the connection is the only signal left
            self._close()
        else:
            exchange.respond_json(500, b'{"error":{"message":"internal error","type":"server_error"}}')

    def write(self, data: bytes) -> None:
        """Write to the client now (after anything ``write_soon`` holds), unless it has left."""
        if not self.closed:
            assert self.transport is not None
            if self._held:
                self._held.append(data)
                data = b"".join(self._held)
                self._held.clear()
            self.transport.write(data)

    def write_soon(self, data: bytes) -> None:
        """Write at the end of this event-loop turn, with whatever else is written in it.

        A stream's head, the events that arrived together and the final ``0`` chunk then
        leave in one ``send`` instead of one each.
        """
        if self.closed:
            return
        if not self._held:
            self.loop.call_soon(self._flush)
        self._held.append(data)

    def _flush(self) -> None:
        if self._held and not self.closed:
            assert self.transport is not None
            self.transport.write(b"".join(self._held))
        self._held.clear()

    def answered(self, exchange: Exchange) -> None:
        """Called by an exchange once its answer is complete: go on with the next request."""
        if exchange is not self._active:
            return
        self._active = None
        if not exchange.body_complete:
            return  # refused early: on_message_complete finishes it once its body is drained
        if not exchange.keep_alive:
            self._close()
            return
        self.idle_since = time.monotonic()
        if self._queue:
            following = self._queue.popleft()
            if not self._queue and self.transport is not None:
                self.transport.resume_reading()
            self._run(following)
        elif self.server.stopping:
            self._close()

    def idle(self) -> bool:
        """Whether nothing is being read or answered on this connection."""
        return self._active is None and self._reading is None and not self._queue

    def _bad_request(self, message: bytes) -> None:
        if self._active is None:
            body = b'{"error":{"message":"%s","type":"invalid_request_error"}}' % message
            self.write(status_line(400) + b"content-type: application/json\r\nconnection: close\r\n"
                       b"content-length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
        self._close()

    def _close(self) -> None:
        if not self.closed and self.transport is not None:
            self._flush()
            self.closed = True
            self.transport.close()

    # ---- everything else: the FastAPI app over ASGI -----------------------------------------
    async def _asgi(self, exchange: Exchange) -> None:
        assert self.transport is not None
        server, client = self.transport.get_extra_info("sockname"), self.transport.get_extra_info("peername")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": exchange.http_version,
            "method": exchange.method.decode("latin-1"),
            "scheme": "http",
            "path": unquote(exchange.path.decode("latin-1")),
            "raw_path": exchange.path,
            "query_string": exchange.query,
            "root_path": "",
            "headers": exchange.headers,
            "server": tuple(server[:2]) if server else None,
            "client": tuple(client[:2]) if client else None,
        }
        body_sent = False
        gone = self.loop.create_future()

        def _left() -> None:
            if not gone.done():
                gone.set_result(None)

        exchange.on_disconnect = _left
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": exchange.body, "more_body": False}
            await gone
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                # respond() writes the content-length itself.
                headers = [(n, v) for n, v in message.get("headers", []) if n.lower() != b"content-length"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body = b"" if exchange.method == b"HEAD" else b"".join(chunks)
                    exchange.respond(status, headers, body)

        try:
            await self.server.gateway.cold_app(scope, receive, send)
        except Exception:
            log.exception("request %s %s failed", exchange.method, exchange.path)
            self._fail(exchange)
        else:
            self._fail(exchange)  # an app that never finished its answer


class GatewayServer:
    """Listens, tracks connections, keeps the cached Date header, and stops gracefully."""

    def __init__(self, gateway: Gateway, loop: asyncio.AbstractEventLoop) -> None:
        self.gateway = gateway
        self.loop = loop
        self.connections: set[_Connection] = set()
        self.stopping = False
        self.date_header = b""
        self._stop = asyncio.Event()
        self._tick()

    def _tick(self) -> None:
        """Refresh the Date header once a second and close connections idle too long."""
        self.date_header = b"date: %s\r\n" % formatdate(usegmt=True).encode()
        cutoff = time.monotonic() - KEEP_ALIVE_S
        for connection in list(self.connections):
            if connection.idle() and connection.idle_since < cutoff:
                connection._close()
        self.loop.call_later(1.0, self._tick)

    def request_stop(self) -> None:
        """SIGTERM: stop accepting; connections close after their request in flight."""
        self.stopping = True
        self._stop.set()

    async def serve(self, sock: socket.socket) -> None:
        """Start the gateway, serve on ``sock`` until SIGTERM/SIGINT, then stop gracefully."""
        await self.gateway.startup()
        listener = await self.loop.create_server(lambda: _Connection(self), sock=sock, backlog=2048)
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(signum, self.request_stop)
        log.info("serving on %s", sock.getsockname())
        await self._stop.wait()
        listener.close()
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            for connection in list(self.connections):
                if connection.idle():
                    connection._close()
            if not self.connections:
                break
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            connection._close()
        await self.gateway.shutdown()
