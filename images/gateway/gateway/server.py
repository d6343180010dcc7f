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

What it adds for clients that mean harm (none of them costs the hot path more than a comparison
per request; the clock is read once a second by ``GatewayServer._tick``, not per request):

- a deadline for a request's complete headers (``header_timeout_s``): a slowloris connection
  that trickles its headers, or opens and sends nothing, is answered 408 and closed;
- a cap on the request line and headers (``max_header_bytes``): beyond it, 431 and close;
- no body read that nobody will use: a request refused before its body (401, 413, 431) or one
  to a path that takes no body, that announces a body, is answered without it and the
  connection closes, instead of waiting for (or draining) what the client announced;
- a cap on open connections per worker (``max_connections``): one more is answered 503 and
  closed at once;
- a client that leaves cancels its request, so the backend sees the disconnect (see
  ``Gateway.complete``).
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

from gateway.exchange import Exchange, error_body, status_line

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


class _StopReading(Exception):
    """Raised from a parser callback so that llhttp parses nothing more of this connection."""


def _closing_answer(status: int, body: bytes) -> bytes:
    """A whole JSON answer that closes the connection (written outside any request cycle)."""
    return (
        status_line(status)
        + b"content-type: application/json\r\nconnection: close\r\n"
        + (b"content-length: %d\r\n\r\n%s" % (len(body), body))
    )


_TOO_MANY_CONNECTIONS = _closing_answer(
    503, error_body("The gateway has too many open connections; retry shortly.", "server_error", None)
)
_HEADERS_TOO_SLOW = _closing_answer(
    408, error_body("The request headers did not arrive in time.", "invalid_request_error", "request_timeout")
)


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
        # Header bytes of the request being parsed, counted per read, not per header: a lower
        # bound while its headers are incomplete; at most one read too many once they are.
        self._head_bytes = 0
        self._head_limit = server.gateway.settings.max_header_bytes
        self._last_read = 0
        # Whether this connection has sent any byte (the header deadline's 408 needs one).
        self.spoke = False
        # True once the gateway stops reading: the queued answers go out, then it closes.
        self._deaf = False

    # ---- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if len(self.server.connections) >= self.server.max_connections:
            self.closed = True
            transport.write(_TOO_MANY_CONNECTIONS)  # type: ignore[attr-defined]
            transport.close()
            return
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
        if self._deaf or self.closed:
            return
        self.spoke = True
        self._last_read = len(data)
        if self._reading is not None and not self._reading.received_at:  # inside a request's head
            self._head_bytes += len(data)
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
            if self._deaf:
                return  # _StopReading: the request is answered without the rest of the input
            self._bad_request(b"Invalid HTTP request received.")
            return
        reading = self._reading
        if reading is not None and not reading.received_at and self._head_bytes > self._head_limit:
            self._refuse_head()

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
        self._head_bytes = 0

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
        announced = False  # whether a body follows
        for name, value in exchange.headers:
            if name == b"content-length":
                # httptools has checked that it is a number.
                length = int(value)
                announced = length > 0
                if length > self._limit:
                    exchange.refusal = (413, self.server.gateway.too_large)
            elif name == b"transfer-encoding":
                announced = True
            elif name == b"expect" and value.lower() == b"100-continue":
                expect_continue = True
        completion = exchange.method == b"POST" and path in self._completion_paths
        if completion:  # the key first: a client without one learns nothing of the limits
            refusal = self.server.gateway.refusal(exchange.headers)
            if refusal is not None:
                exchange.refusal = refusal
        # The count is per read: only when it could be over the cap is the head measured exactly.
        if (
            self._head_bytes + self._last_read > self._head_limit
            and self._head_size(exchange) > self._head_limit
        ):
            exchange.refusal = (431, self.server.gateway.headers_too_large)
            exchange.keep_alive = False
        if announced and (exchange.refusal is not None or not completion):
            # Nobody will read this body: answer without it and close, rather than wait for it.
            self._answer_without_body(exchange)
        elif exchange.refusal is not None:
            self._refuse_early(exchange)
        elif expect_continue and self._active is None:
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    @staticmethod
    def _head_size(exchange: Exchange) -> int:
        """The request line and headers' size (bytes the client sent, give or take the spaces)."""
        size = len(exchange.path) + len(exchange.query) + 16
        for name, value in exchange.headers:
            size += len(name) + len(value) + 4
        return size

    def _answer_without_body(self, exchange: Exchange) -> None:
        """Stop reading the connection: answer ``exchange`` (after those before it) and close."""
        assert self.transport is not None
        exchange.keep_alive = False
        exchange.body_complete = True
        self._reading = None
        self._deaf = True
        self.transport.pause_reading()
        if self._active is None and not self._queue:
            self._run(exchange)
        else:
            self._queue.append(exchange)
        raise _StopReading  # llhttp stops here; feed_data raises, data_received ignores it

    def _refuse_head(self) -> None:
        """Headers past the cap and still coming: 431 (after the answers owed) and close."""
        assert self.transport is not None and self._reading is not None
        exchange, self._reading = self._reading, None
        exchange.refusal = (431, self.server.gateway.headers_too_large)
        exchange.keep_alive = False
        exchange.body_complete = True
        self._deaf = True
        self.transport.pause_reading()
        if self._active is None and not self._queue:
            self._run(exchange)
        else:
            self._queue.append(exchange)

    def headers_overdue(self) -> None:
        """The header deadline passed: answer 408 if the client sent anything, and close."""
        if self._active is None and not self._queue and self.spoke:
            self.write(_HEADERS_TOO_SLOW)
        self._close()

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
            # A client that leaves before the answer cancels the task, and with it the backend
            # request (a stream replaces this with its own handler once the answer began).
            exchange.on_disconnect = self.loop.create_task(self._complete(exchange, upstream_path)).cancel
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
            if not self._queue and self.transport is not None and not self._deaf:
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
        self.max_connections = gateway.settings.max_connections
        self._header_timeout = gateway.settings.header_timeout_s
        # connection -> (the request whose headers it was sending at a tick, since when)
        self._waiting_headers: dict[_Connection, tuple[Exchange | None, float]] = {}
        self.stopping = False
        self.date_header = b""
        self._stop = asyncio.Event()
        self._tick()

    def _tick(self) -> None:
        """Refresh the Date header once a second; close connections idle or slow too long.

        A connection owes headers while a request's head is incomplete, or before its first
        request. The deadline is checked here, once a second, rather than by a timer per
        request: the hot path never reads the clock for it, and the cut comes between
        ``header_timeout_s`` and one second later.
        """
        self.date_header = b"date: %s\r\n" % formatdate(usegmt=True).encode()
        now = time.monotonic()
        cutoff = now - KEEP_ALIVE_S
        header_cutoff = now - self._header_timeout
        waiting = self._waiting_headers
        for connection in list(self.connections):
            reading = connection._reading
            if reading is not None and not reading.received_at or not connection.spoke and connection.idle():
                seen = waiting.get(connection)
                if seen is None or seen[0] is not reading:
                    waiting[connection] = (reading, now)
                elif seen[1] < header_cutoff:
                    del waiting[connection]
                    connection.headers_overdue()
                continue
            waiting.pop(connection, None)
            if connection.idle() and connection.idle_since < cutoff:
                connection._close()
        for gone in [c for c in waiting if c.closed]:
            del waiting[gone]
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
