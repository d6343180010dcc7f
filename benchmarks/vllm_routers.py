"""What a router costs on real generation: vLLM direct vs through the gateway vs through vllm-router.

    python benchmarks/vllm_routers.py [--requests-per-stream 4] [--max-tokens 64]

One vLLM (its CPU build from .venv-vllm, `make vllm`) serves a model the trainer trained for a
few steps, with the dev model Deployment's flags; in front of it, on loopback, the gateway
(`python -m gateway`, one process as one pod runs it) and vllm-router (PyPI `vllm-router`, the
vLLM project's Rust router, installed into .venv-vllm by `make vllm`). For 1, 8 and 32
concurrent streaming chats (each stream sends its requests one after the other, `ignore_eos`
so every answer is `--max-tokens` long) it prints, per target: output tokens/s over the
run, and time to first token (first content event) p50/p99. Every target sees the same vLLM;
a router's cost is its row minus the direct row at the same concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from mlops.local.local_servers import LocalServer, free_port, running
from mlops.local.local_vllm import serve, vllm_python
from mlops.rendering.render import render_kustomization
from mlops.rendering.vllm_args import deployment_args, local_args

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 32)
OVERLAY = "overlays/dev/models/support-chat"


def _train(work: Path) -> Path:
    result = work / "result.json"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db",
        "HF_HUB_OFFLINE": "1",
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
               "-m", "trainer.train", "--max-steps", "4", "--seq-len", "48", "--batch-size", "4",
               "--synthetic-conversations", "240", "--result-file", str(result)]  # fmt: skip
    subprocess.run(command, env=env, cwd=work, check=True, capture_output=True)
    return Path(json.loads(result.read_text())["artifact_uri"])


def _start_gateway(work: Path, backend: str, key: str, stack: ExitStack) -> str:
    port = free_port()
    (work / "routes.yaml").write_text(
        f"models:\n  support-chat:\n    backends:\n      stable: {{url: '{backend}', weight: 100}}\n"
    )
    (work / "keys").write_text(key + "\n")
    env = {"GATEWAY_ROUTES_FILE": str(work / "routes.yaml"), "GATEWAY_API_KEYS_FILE": str(work / "keys")}
    command = [
        sys.executable,
        "-m",
        "gateway",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    gateway = stack.enter_context(
        running(command, url=f"http://127.0.0.1:{port}", ready_path="/ready", name="gateway",
                log=work / "gateway.log", env=env)
    )  # fmt: skip
    return gateway.url


def _start_router(backend: str, log: Path, stack: ExitStack) -> str:
    port = free_port()
    router = vllm_python(REPO).parent / "vllm-router"
    command = [str(router), "--host", "127.0.0.1", "--port", str(port), "--worker-urls", backend,
               "--policy", "round_robin", "--log-level", "warning"]  # fmt: skip
    server = stack.enter_context(
        running(command, url=f"http://127.0.0.1:{port}", ready_path="/v1/models", name="vllm-router", log=log)
    )
    return server.url


async def _stream(client: httpx.AsyncClient, url: str, key: str, max_tokens: int) -> tuple[float, int]:
    """One streamed chat: (seconds to the first content event, content events received)."""
    body = {
        "model": "support-chat",
        "messages": [{"role": "user", "content": "Where is my order?"}],
        "max_tokens": max_tokens,
        "stream": True,
        "ignore_eos": True,
    }
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    headers = {"Authorization": f"Bearer {key}"}
    async with client.stream("POST", url + "/v1/chat/completions", json=body, headers=headers) as answer:
        answer.raise_for_status()
        async for line in answer.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                tokens += 1
                if not first:
                    first = time.perf_counter() - started
    return first, tokens


async def _run(url: str, key: str, streams: int, per_stream: int, max_tokens: int) -> dict[str, float]:
    ttfts: list[float] = []
    total = 0
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:

        async def worker() -> None:
            nonlocal total
            for _ in range(per_stream):
                first, tokens = await _stream(client, url, key, max_tokens)
                ttfts.append(first)
                total += tokens

        await _stream(client, url, key, 4)  # warm the connection and the path
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(streams)))
        seconds = time.perf_counter() - began
    ttfts.sort()
    return {
        "tokens_per_s": total / seconds,
        "ttft_p50_ms": 1000 * statistics.median(ttfts),
        "ttft_p99_ms": 1000 * ttfts[min(len(ttfts) - 1, int(0.99 * len(ttfts)))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-per-stream", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=64)
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-vllm-routers-"))
    print(f"training a tiny model in {work} ...", flush=True)
    model_dir = _train(work)
    (deployment,) = [d for d in render_kustomization(REPO, OVERLAY) if d["kind"] == "Deployment"]
    args = local_args(deployment_args(deployment), model_dir, port=free_port())
    print("starting vLLM ...", flush=True)
    key = f"sk-{secrets.token_hex(8)}"
    vllm: LocalServer
    with serve(REPO, args, work / "vllm.log", timeout=600) as vllm, ExitStack() as stack:
        gateway_url = _start_gateway(work, vllm.url, key, stack)
        router_url = _start_router(vllm.url, work / "router.log", stack)
        targets = {"direct": vllm.url, "gateway": gateway_url, "vllm-router": router_url}
        per_stream, max_tokens = options.requests_per_stream, options.max_tokens
        print(f"\n{max_tokens} tokens per answer, {per_stream} answers per stream")
        print(f"{'streams':>7}  {'target':<12} {'tokens/s':>9} {'TTFT p50 ms':>12} {'TTFT p99 ms':>12}")
        for streams in CONCURRENCY:
            for name, url in targets.items():
                row = asyncio.run(_run(url, key, streams, per_stream, max_tokens))
                print(f"{streams:>7}  {name:<12} {row['tokens_per_s']:>9.0f} "
                      f"{row['ttft_p50_ms']:>12.1f} {row['ttft_p99_ms']:>12.1f}", flush=True)  # fmt: skip
    print(f"\nlogs in {work} (CPU: {os.cpu_count()} cores, shared with whatever else runs)")


if __name__ == "__main__":
    main()
