"""One request on a client connection and the ways to answer it (``gateway.server`` parses it)."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from gateway.server import _Connection

_STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}
_JSON = b"application/json"


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    """An error in the shape OpenAI's API (and its clients) use."""
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def status_line(status: int) -> bytes:
    """The HTTP/1.1 status line of `status`, prebuilt for the known codes."""
    return _STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status


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

    def __init__(self, connection: _Connection) -> None:
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
