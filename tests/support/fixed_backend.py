"""A minimal OpenAI-shaped backend that answers every completion with the same fixed text.

It exists to measure and drill the gateway, not to serve users (so it lives with the tests, not
in the gateway image): the latency benchmark puts it behind the gateway, vllm-router and
LiteLLM so that what is measured is the proxy, not a model;
the tests run two of them to check the canary split and kill one under load. It is a bare
asyncio protocol over httptools, so one process answers tens of thousands of requests a
second. Like the vLLM Deployment, it lists ``<model>`` and ``<model>:<version>`` on
``/v1/models``; with ``--api-key`` it refuses every ``/v1`` request without exactly that
bearer key, as vLLM's ``--api-key`` does.

    python tests/support/fixed_backend.py --served-model-name support-chat --model-version 3 --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
import socket

import httptools
import orjson

_TEXT = "Thanks for reaching out! Your order has shipped."
_WORDS = _TEXT.split(" ")


class _Answers:
    """The pre-encoded responses of one backend."""

    def __init__(self, model: str, version: str, delay_s: float, error_rate: float = 0.0) -> None:
        fingerprint = f"{model}:{version}"
        self.delay_s = delay_s
        self.error_rate = error_rate
        self.completions = 0
        usage = {"prompt_tokens": 12, "completion_tokens": len(_WORDS), "total_tokens": 12 + len(_WORDS)}
        chat = {
            "id": "chatcmpl-fixed",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "system_fingerprint": fingerprint,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": _TEXT}, "finish_reason": "stop"}
            ],
            "usage": usage,
        }
        text = {
            "id": "cmpl-fixed",
            "object": "text_completion",
            "created": 0,
            "model": model,
            "system_fingerprint": fingerprint,
            "choices": [{"index": 0, "text": _TEXT, "finish_reason": "stop", "logprobs": None}],
            "usage": usage,
        }
        self.chat = _response(200, b"application/json", orjson.dumps(chat))
        self.text = _response(200, b"application/json", orjson.dumps(text))
        models = {
            "object": "list",
            "data": [{"id": model, "object": "model"}, {"id": fingerprint, "object": "model"}],
        }
        self.models = _response(200, b"application/json", orjson.dumps(models))
        self.health = _response(200, b"application/json", b'{"status":"ok"}')
        self.not_found = _response(404, b"application/json", b'{"error":{"message":"not found"}}')
        self.unauthorized = _response(401, b"application/json", b'{"error":"Unauthorized"}')
        self.server_error = _response(
            500, b"application/json", b'{"error":{"message":"internal error","type":"server_error"}}'
        )
        self.chat_stream = _stream(
            [
                {
                    "id": "chatcmpl-fixed",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "system_fingerprint": fingerprint,
                    "choices": [
                        {"index": 0, "delta": {"content": w if i == 0 else " " + w}, "finish_reason": None}
                    ],
                }
                for i, w in enumerate(_WORDS)
            ]
        )
        self.text_stream = _stream(
            [
                {
                    "id": "cmpl-fixed",
                    "object": "text_completion",
                    "model": model,
                    "system_fingerprint": fingerprint,
                    "choices": [{"index": 0, "text": w if i == 0 else " " + w, "finish_reason": None}],
                }
                for i, w in enumerate(_WORDS)
            ]
        )

    def fails_next(self) -> bool:
        """Whether the next completion is an error: exactly ``error_rate`` of them, evenly spread."""
        self.completions += 1
        n, rate = self.completions, self.error_rate
        return int(n * rate) > int((n - 1) * rate)


_REASONS = {200: b"OK", 401: b"Unauthorized", 404: b"Not Found", 500: b"Internal Server Error"}


def _response(status: int, content_type: bytes, body: bytes) -> bytes:
    reason = _REASONS[status]
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
        % (status, reason, content_type, len(body))
        + body
    )


def _stream(events: list[dict[str, object]]) -> tuple[bytes, ...]:
    """Response head, then one chunked-encoding piece per SSE event (the last one ends the body)."""
    chunks = [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
    pieces = [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks]
    pieces[-1] += b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    return (head, *pieces)


class _Server(asyncio.Protocol):
    def __init__(self, answers: _Answers) -> None:
        self._answers = answers
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._body: list[bytes] = []
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.close()

    def on_url(self, url: bytes) -> None:
        self._url = url

    def on_message_begin(self) -> None:
        self._body = []

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        a = self._answers
        body = b"".join(self._body)
        stream = b'"stream":true' in body or b'"stream": true' in body
        url = self._url
        if a.error_rate and url.endswith(b"completions") and a.fails_next():
            assert self._transport is not None
            self._transport.write(a.server_error)
            return
        if url == b"/v1/chat/completions" and stream:
            self._stream_out(a.chat_stream)
            return
        if url == b"/v1/completions" and stream:
            self._stream_out(a.text_stream)
            return
        if url == b"/v1/chat/completions":
            answer = a.chat
        elif url == b"/v1/completions":
            answer = a.text
        elif url == b"/v1/models":
            answer = a.models
        elif url == b"/health":
            answer = a.health
        else:
            answer = a.not_found
        assert self._transport is not None
        if a.delay_s and url.endswith(b"completions"):
            asyncio.get_running_loop().call_later(a.delay_s, self._reply, answer)
        else:
            self._transport.write(answer)

    def _stream_out(self, pieces: tuple[bytes, ...]) -> None:
        """Like a model: with a delay, each event comes that long after the previous one."""
        assert self._transport is not None
        delay = self._answers.delay_s
        if not delay:
            self._transport.write(b"".join(pieces))
            return
        self._transport.write(pieces[0])
        loop = asyncio.get_running_loop()
        for i, piece in enumerate(pieces[1:], start=1):
            loop.call_later(i * delay, self._reply, piece)

    def _reply(self, answer: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(answer)


class _KeyedServer(_Server):
    """A backend started with ``--api-key``: every ``/v1`` request must carry that key, and only it.

    A separate class so that the unkeyed backend (the benchmark's) parses no header at all.
    """

    def __init__(self, answers: _Answers, authorization: bytes) -> None:
        super().__init__(answers)
        self._authorization = authorization
        self._seen: list[bytes] = []

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._seen = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"authorization":
            self._seen.append(value)

    def on_message_complete(self) -> None:
        if self._url.startswith(b"/v1") and self._seen != [self._authorization]:
            assert self._transport is not None
            self._transport.write(self._answers.unauthorized)
            return
        super().on_message_complete()


async def serve(
    sock: socket.socket,
    model: str,
    version: str,
    delay_s: float = 0.0,
    error_rate: float = 0.0,
    api_key: str | None = None,
) -> None:
    """Answer on ``sock`` until cancelled."""
    answers = _Answers(model, version, delay_s, error_rate)
    if api_key:
        authorization = b"Bearer " + api_key.encode()
        server = await asyncio.get_running_loop().create_server(
            lambda: _KeyedServer(answers, authorization), sock=sock
        )
    else:
        server = await asyncio.get_running_loop().create_server(lambda: _Server(answers), sock=sock)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve forever."""
    parser = argparse.ArgumentParser(prog="fixed_backend.py", description=__doc__)
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--model-version", default="1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--fd", type=int, default=None, help="serve on an already bound socket")
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        help="wait this long before each answer, or each event of a stream",
    )
    parser.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="answer this fraction of completions with HTTP 500 (a broken model version, for canary drills)",
    )
    parser.add_argument("--api-key", default=None, help="refuse /v1 requests without this bearer key")
    args = parser.parse_args(argv)
    if not 0.0 <= args.error_rate <= 1.0:
        parser.error(f"--error-rate must be between 0 and 1, got {args.error_rate}")
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.create_server((args.host, args.port), reuse_port=False)
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    delay_s = args.delay_ms / 1000
    run(serve(sock, args.served_model_name, args.model_version, delay_s, args.error_rate, args.api_key))


if __name__ == "__main__":
    main()
