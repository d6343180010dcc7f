"""HTTP/1.1 keep-alive client for the model backends, built on asyncio protocols and httptools.

httpx costs several hundred microseconds per request and aiohttp about a hundred; the gateway's
budget for its whole overhead is one millisecond, so the hot path talks to the backends through
this small client: one pool of idle keep-alive connections per backend, the request written in
one ``write``, the response parsed by httptools (the C parser uvicorn uses) and handed over as
raw body chunks so SSE streams pass through byte for byte.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools


class BackendUnavailable(Exception):
    """The backend could not be reached before it saw the request: safe to try another backend."""


class BackendTimeout(Exception):
    """The backend accepted the request but sent nothing within the read timeout."""


class BackendBroken(Exception):
    """The connection broke after the response began: the request cannot be retried."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; serves one request at a time."""

    def __init__(self, pool: BackendPool) -> None:
        self._pool = pool
        self._loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._response: UpstreamResponse | None = None
        # The read timeout is checked lazily: each byte only stamps ``_last_read``, and one
        # timer per connection re-arms itself for what is left (cancelling and re-creating
        # a timer for every chunk and every request cost more than parsing the response).
        self._timer: asyncio.TimerHandle | None = None
        self._last_read = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._last_read = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(BackendBroken(f"malformed response from {self._pool.url}: {exc}"))
            self._abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        response = self._response
        if response is not None and not response.complete:
            if response.status == 0:
                # Nothing came back: the backend died or closed an idle keep-alive connection
                # just as we reused it. It has not answered, so another try is safe.
                self._fail(BackendUnavailable(f"{self._pool.url} closed the connection: {exc}"))
            else:
                self._fail(BackendBroken(f"{self._pool.url} closed the connection mid-response"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._response is not None
        self._response.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        response = self._response
        assert response is not None
        response.status = self._parser.get_status_code()
        self._keep_alive = self._parser.should_keep_alive()
        if not response.headers_ready.done():
            response.headers_ready.set_result(None)

    def on_body(self, body: bytes) -> None:
        assert self._response is not None
        self._response._feed(body)

    def on_message_complete(self) -> None:
        response = self._response
        assert response is not None
        self._response = None
        response._finish()
        if self._keep_alive and not self.closed:
            self._pool._release(self)
        else:
            self._abort()

    # request
    def send(self, request: bytes, response: UpstreamResponse) -> None:
        self._response = response
        response._connection = self
        self._last_read = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_later(self._pool.read_timeout, self._check_read_timeout)
        assert self.transport is not None
        self.transport.write(request)

    def _check_read_timeout(self) -> None:
        self._timer = None
        if self._response is None or self.closed:
            return  # idle in the pool: the next request arms the timer again
        silent = self._loop.time() - self._last_read
        if silent < self._pool.read_timeout:
            self._timer = self._loop.call_later(self._pool.read_timeout - silent, self._check_read_timeout)
            return
        self._fail(BackendTimeout(f"{self._pool.url} sent nothing for {self._pool.read_timeout:g}s"))
        self._abort()

    def _fail(self, exc: Exception) -> None:
        response = self._response
        self._response = None
        if response is not None:
            response._fail(exc)

    def _abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class UpstreamResponse:
    """A backend's response: status and headers first, then the body as it arrives."""

    __slots__ = (
        "status",
        "headers",
        "headers_ready",
        "complete",
        "_chunks",
        "_waiter",
        "_error",
        "_loop",
        "_connection",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_ready: asyncio.Future[None] = loop.create_future()
        self.complete = False
        self._chunks: list[bytes] = []
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self._loop = loop
        self._connection: _Connection | None = None

    def abort(self) -> None:
        """Drop the connection (the client left): the backend stops generating for nobody."""
        if self._connection is not None and not self.complete:
            self._connection._abort()

    def header(self, name: bytes) -> bytes | None:
        """The first value of a (lower-case) header, or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def read(self) -> bytes:
        """The whole body."""
        if self.complete and self._error is None:  # it came with the head: no generator needed
            parts, self._chunks = self._chunks, []
            return parts[0] if len(parts) == 1 else b"".join(parts)
        parts = []
        async for chunk in self.chunks():
            parts.append(chunk)
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as the backend sends them (those that arrived together, joined)."""
        while True:
            if self._chunks:
                chunks, self._chunks = self._chunks, []
                # One piece per wake-up: the gateway then writes what arrived in one go.
                yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
                continue
            if self._error is not None:
                raise self._error
            if self.complete:
                return
            self._waiter = self._loop.create_future()
            await self._waiter

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._wake()

    def _finish(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, exc: Exception) -> None:
        self._error = exc
        if not self.headers_ready.done():
            self.headers_ready.set_exception(exc)
            # Nobody may await headers_ready (e.g. a cancelled request); keep asyncio quiet.
            self.headers_ready.exception()
        self._wake()


class BackendPool:
    """Idle keep-alive connections to one backend URL, and the requests sent through them."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_idle: int = 512,
        loop: asyncio.AbstractEventLoop | None = None,
        auth_header: bytes = b"",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"backend url {url!r}: only http://host[:port] URLs are supported")
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path_prefix = parts.path.rstrip("/").encode()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self.loop = loop or asyncio.get_running_loop()
        self._idle: deque[_Connection] = deque()
        self._closed = False
        self._host_header = f"{self.host}:{self.port}".encode()
        # "Authorization: Bearer <key>\r\n": the gateway's own key for the backend (vLLM
        # --api-key), on every request; a client's Authorization header is never forwarded.
        self.auth_header = auth_header

    async def _connect(self) -> _Connection:
        try:
            _, protocol = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Connection(self), self.host, self.port),
                self.connect_timeout,
            )
        except (TimeoutError, OSError) as exc:
            raise BackendUnavailable(f"cannot connect to {self.url}: {exc or type(exc).__name__}") from exc
        return protocol

    def _release(self, connection: _Connection) -> None:
        if not self._closed and len(self._idle) < self.max_idle:
            self._idle.append(connection)
        else:
            connection._abort()

    def close(self) -> None:
        """Close every idle connection; connections still busy close when their answer ends."""
        self._closed = True
        while self._idle:
            self._idle.pop()._abort()

    def _build(self, method: bytes, path: bytes, body: bytes, content_type: bytes) -> bytes:
        head = b"%s %s%s HTTP/1.1\r\nHost: %s\r\n%s" % (
            method,
            self.path_prefix,
            path,
            self._host_header,
            self.auth_header,
        )
        if body or method == b"POST":
            head += b"Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type, len(body))
        return head + b"\r\n" + body

    async def request(
        self, method: bytes, path: bytes, body: bytes = b"", content_type: bytes = b"application/json"
    ) -> UpstreamResponse:
        """Send a request and wait for the response's status and headers.

        Raises:
            BackendUnavailable: no connection, or the backend closed it before answering.
            BackendTimeout: no response headers within the read timeout.
        """
        raw = self._build(method, path, body, content_type)
        # A reused keep-alive connection may have been closed by the backend meanwhile;
        # that is no failure of the backend, so it earns one more try on a fresh connection.
        for attempt in (0, 1):
            connection = None
            while self._idle:
                candidate = self._idle.pop()
                if not candidate.closed:
                    connection = candidate
                    break
            reused = connection is not None
            if connection is None:
                connection = await self._connect()
            response = UpstreamResponse(self.loop)
            connection.send(raw, response)
            try:
                await response.headers_ready
            except BackendUnavailable:
                if reused and attempt == 0:
                    continue
                raise
            except asyncio.CancelledError:
                connection._abort()
                raise
            return response
        raise AssertionError("unreachable")
