"""One request on a client connection and the ways to answer it (``gateway.server`` parses it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import Protocol

import orjson

_STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}
_JSON = b"application/json"


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    """An error in the shape OpenAI's API (and its clients) use."""
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def status_line(status: int) -> bytes:
    """The HTTP/1.1 status line of `status`, prebuilt for the known codes."""
    return _STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status


class DateSource(Protocol):
    """The server's prebuilt ``date:`` header line, refreshed once a second."""

    @property
    def date_header(self) -> bytes:
        """The header line, with its CRLF."""
        ...


class Connection(Protocol):
    """What an exchange needs of its connection (``gateway.server`` provides it).

    Typed here, not imported from the server, so that this module is a leaf: the server and
    the app both import it, and it imports neither.
    """

    @property
    def server(self) -> DateSource:
        """The server the connection belongs to."""
        ...

    @property
    def paused(self) -> asyncio.Future[None] | None:
        """Set while the client's socket buffer is full: a stream waits on it."""
        ...

    def write(self, data: bytes) -> None:
        """Write to the client now."""

    def write_soon(self, data: bytes) -> None:
        """Write at the end of this event-loop turn."""

    def answered(self, exchange: Exchange) -> None:
        """Go on with the next request once this exchange's answer is complete."""


class Exchange:
    """One request on a connection and the ways to answer it (exactly one of them, once).

    ``respond`` sends a whole answer in one write; ``start`` + ``send_chunk`` + ``finish``
    send a chunked stream. ``on_disconnect``, when set, is called if the client leaves before
    the answer is complete.
    """

    __slots__ = (
        "method",
        "path",
        "query",
        "headers",
        "http_version",
        "received_at",
        "parts",
        "size",
        "body_complete",
        "keep_alive",
        "refusal",
        "answered",
        "streaming",
        "on_disconnect",
        "_connection",
    )

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.method = b""
        self.path = b""
        self.query = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.http_version = "1.1"
        self.received_at = 0.0
        self.parts: list[bytes] = []
        self.size = 0
        self.body_complete = False
        self.keep_alive = True
        # (status, JSON body) when the request is refused before its body is read.
        self.refusal: tuple[int, bytes] | None = None
        self.answered = False
        self.streaming = False
        self.on_disconnect: Callable[[], object] | None = None

    @property
    def body(self) -> bytes:
        """The whole request body (the server read it before handing the request over)."""
        parts = self.parts
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _head(self, status: int, headers: list[tuple[bytes, bytes]]) -> list[bytes]:
        head = [status_line(status), self._connection.server.date_header]
        for name, value in headers:
            head += (name, b": ", value, b"\r\n")
        if not self.keep_alive:
            head.append(b"connection: close\r\n")
        return head

    def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Send a whole answer (head and body in one write); ``headers`` without content-length."""
        head = self._head(status, headers)
        head += (b"content-length: %d\r\n\r\n" % len(body), body)
        self.answered = True
        self._connection.write(b"".join(head))
        self._connection.answered(self)

    def respond_json(self, status: int, body: bytes) -> None:
        """Send a JSON answer (the error bodies)."""
        self.respond(status, [(b"content-type", _JSON)], body)

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Send the head of a chunked answer (a stream)."""
        head = self._head(status, headers)
        head.append(b"transfer-encoding: chunked\r\n\r\n")
        self.streaming = True
        self._connection.write_soon(b"".join(head))

    async def send_chunk(self, data: bytes) -> None:
        """Send one piece of a stream; waits while a slow client's socket buffer is full."""
        connection = self._connection
        connection.write_soon(b"%x\r\n%s\r\n" % (len(data), data))
        if connection.paused is not None:
            await connection.paused

    def finish(self) -> None:
        """End a stream."""
        self.answered = True
        self._connection.write_soon(b"0\r\n\r\n")
        self._connection.answered(self)
