"""A CPU model server that speaks vLLM's OpenAI API over a Hugging Face model directory.

For tests and the local demo, where there is no GPU for vLLM: it loads the directory the
trainer saves (``config.json``, weights, tokenizer) with transformers and really generates.
It answers ``/health``, ``/v1/models``, ``/v1/chat/completions`` and ``/v1/completions``
(streaming with ``data: [DONE]`` at the end, like vLLM), and lists both ``<name>`` and
``<name>:<version>`` on ``/v1/models``, the way the vLLM Deployment does, so the gateway
learns the version from it exactly as in the cluster.

    python -m gateway.local_backend --model-dir DIR --served-model-name support-chat --model-version 3

Why not ``transformers serve``: it needs network-free environment variables set by hand,
answers only its pinned model name, and ends streams without ``data: [DONE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse


class _Generator:
    """The loaded model and tokenizer; one generation at a time (CPU, small models)."""

    def __init__(self, model_dir: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model: Any = AutoModelForCausalLM.from_pretrained(model_dir)
        self.model.eval()
        self.max_length = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self._lock = threading.Lock()

    def chat_prompt(self, messages: list[dict[str, Any]]) -> str:
        """The prompt text of a chat, by the tokenizer's chat template when it has one."""
        if getattr(self.tokenizer, "chat_template", None):
            return str(
                self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            )
        lines = [f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages]
        return "\n".join(lines) + "\nassistant:"

    def generate(self, prompt: str, params: dict[str, Any], on_text: Any = None) -> tuple[str, int, int, str]:
        """Generate; calls ``on_text(piece)`` as text appears. Returns text, token counts, finish reason."""
        torch = self._torch
        encoded = self.tokenizer(prompt, return_tensors="pt")
        input_ids = encoded["input_ids"][:, -(self.max_length // 2) :]
        prompt_tokens = int(input_ids.shape[1])
        max_new = max(1, min(int(params.get("max_tokens") or 16), self.max_length - prompt_tokens))
        requested = params.get("temperature")
        temperature = 1.0 if requested is None else float(requested)
        kwargs: dict[str, Any] = {"max_new_tokens": max_new, "do_sample": temperature > 0}
        if temperature > 0:
            kwargs["temperature"] = temperature
            kwargs["top_p"] = float(params.get("top_p") or 1.0)
        pad = self.tokenizer.pad_token_id
        kwargs["pad_token_id"] = pad if pad is not None else self.tokenizer.eos_token_id
        streamer: Any = _TextStreamer(self.tokenizer, on_text) if on_text else None
        with self._lock, torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                streamer=streamer,
                **kwargs,
            )
        new_ids = output[0, prompt_tokens:].tolist()
        eos = self.tokenizer.eos_token_id
        finish = "stop" if eos is not None and eos in new_ids else "length"
        if eos is not None and eos in new_ids:
            new_ids = new_ids[: new_ids.index(eos)]
        text = str(self.tokenizer.decode(new_ids, skip_special_tokens=True))
        return text, prompt_tokens, len(new_ids) + (1 if finish == "stop" else 0), finish


class _TextStreamer:
    """transformers streamer that hands decoded text increments to a callback."""

    def __init__(self, tokenizer: Any, on_text: Any) -> None:
        self._tokenizer = tokenizer
        self._on_text = on_text
        self._ids: list[int] = []
        self._sent = ""
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompt
            self._prompt_seen = True
            return
        self._ids.extend(int(i) for i in value.reshape(-1).tolist())
        text = self._tokenizer.decode(self._ids, skip_special_tokens=True)
        if len(text) > len(self._sent):
            self._on_text(text[len(self._sent) :])
            self._sent = text

    def end(self) -> None:
        self._on_text(None)


def build_app(generator: _Generator, served_model_name: str, model_version: str) -> FastAPI:
    """The OpenAI-compatible app over one loaded model."""
    app = FastAPI(title="local LLM backend", docs_url=None, redoc_url=None, openapi_url=None)
    versioned = f"{served_model_name}:{model_version}"

    def error(status: int, message: str, code: str | None = None) -> Response:
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
        return Response(orjson.dumps(body), status, media_type="application/json")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> Response:
        cards = [
            {"id": name, "object": "model", "created": 0, "owned_by": "local", "root": served_model_name}
            for name in (served_model_name, versioned)
        ]
        return Response(orjson.dumps({"object": "list", "data": cards}), media_type="application/json")

    async def complete(request: Request, chat: bool) -> Response:
        try:
            params = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return error(400, "body is not JSON")
        if params.get("model") not in (served_model_name, versioned):
            return error(404, f"The model `{params.get('model')}` does not exist.", "model_not_found")
        if chat:
            if not isinstance(params.get("messages"), list):
                return error(400, "'messages' must be a list")
            prompt = generator.chat_prompt(params["messages"])
        else:
            prompt = params.get("prompt")
            prompt = prompt[0] if isinstance(prompt, list) and prompt else prompt
            if not isinstance(prompt, str):
                return error(400, "'prompt' must be a string")
        ident = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        created = int(time.time())
        obj = "chat.completion" if chat else "text_completion"
        if params.get("stream"):
            include_usage = bool((params.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _stream(generator, prompt, params, chat, ident, created, served_model_name, include_usage),
                media_type="text/event-stream",
            )
        text, prompt_tokens, completion_tokens, finish = await asyncio.to_thread(
            generator.generate, prompt, params
        )
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        body = {
            "id": ident,
            "object": obj,
            "created": created,
            "model": served_model_name,
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return Response(orjson.dumps(body), media_type="application/json")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await complete(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await complete(request, chat=False)

    return app


async def _stream(
    generator: _Generator,
    prompt: str,
    params: dict[str, Any],
    chat: bool,
    ident: str,
    created: int,
    model: str,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def on_text(piece: str | None) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, piece)

    job = asyncio.ensure_future(asyncio.to_thread(generator.generate, prompt, params, on_text))
    obj = "chat.completion.chunk" if chat else "text_completion"

    def event(choice: dict[str, Any], usage: dict[str, int] | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": ident,
            "object": obj,
            "created": created,
            "model": model,
            "choices": [choice],
        }
        if include_usage:
            data["usage"] = usage
        return b"data: " + orjson.dumps(data) + b"\n\n"

    if chat:
        yield event({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None})
    while (piece := await queue.get()) is not None:
        if chat:
            yield event({"index": 0, "delta": {"content": piece}, "finish_reason": None})
        else:
            yield event({"index": 0, "text": piece, "finish_reason": None})
    _, prompt_tokens, completion_tokens, finish = await job
    last: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if chat:
        last["delta"] = {}
    else:
        last["text"] = ""
    yield event(last)
    if include_usage:
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        data = {"id": ident, "object": obj, "created": created, "model": model, "choices": [], "usage": usage}
        yield b"data: " + orjson.dumps(data) + b"\n\n"
    yield b"data: [DONE]\n\n"


def main(argv: list[str] | None = None) -> None:
    """Load the model and serve it."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m gateway.local_backend", description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True, help="Hugging Face model directory")
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument(
        "--model-version", default="0", help="the registry version, listed as <name>:<version>"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--fd", type=int, default=None, help="serve on an already bound socket (tests)")
    args = parser.parse_args(argv)
    generator = _Generator(args.model_dir)
    app = build_app(generator, args.served_model_name, args.model_version)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    # uvicorn's own --fd assumes a Unix socket; a socket made from the fd knows its family.
    sockets = [socket.socket(fileno=args.fd)] if args.fd is not None else None
    uvicorn.Server(config).run(sockets=sockets)


if __name__ == "__main__":
    main()
