"""Routing across vLLM replicas on real generation: one replica direct, the gateway, vllm-router.

    python benchmarks/vllm_routing.py [--quick] [--rounds 3]

Two vLLM CPU replicas (.venv-vllm, `make vllm`; prefix caching on, as the base Deployment has
it) serve a Llama with random weights, sized so that prefill dominates (384 wide, 4 layers,
heads of 64: vLLM's CPU attention wants head_dim 64), each on its own loopback address
(127.0.0.2, 127.0.0.3) and one port, like the pods of a headless Service. In front of them:

- direct: every request to the first replica alone;
- gateway: ``python -m gateway`` with ``routing: {replicas: dns, policy: prefix-affinity}``,
  finding the two replicas through a real DNS server on 127.0.0.1 (tests/support/dns_server.py)
  exactly as it finds pods in the cluster;
- vllm-router 0.1.17 (.venv-vllm) with ``--policy round_robin`` and ``--policy cache_aware``.

The workload is a multi-turn chat: every user shares one long system prompt, has a long
context of their own in the first message (an order history) and asks ``turns`` questions one
after the other, each turn carrying the whole conversation so far; all users chat at once.
Each target gets fresh users (their own contexts), so no target finds another's conversations
in the cache. Rounds are interleaved (the targets' order rotates). Per target it prints, as the
median over rounds: TTFT p50/p90/p99 of the follow-up turns (where the routing decides whether
the history is cached), the first turns' TTFT p50, output tokens/s over the run, and vLLM's
prefix-cache hit rate over both replicas (``vllm:prefix_cache_hits`` / ``queries``, tokens).

``--quick`` is a smoke configuration (a smaller model, fewer users, one round) for a shared
machine; its numbers only show that everything runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
from mlops.local.local_servers import free_port, running, start, wait_ready
from mlops.local.local_vllm import CPU_ENV, CPU_FLAGS, vllm_python

REPO = Path(__file__).resolve().parents[1]
DNS_SERVER = REPO / "tests" / "support" / "dns_server.py"
MODEL = "support-chat"
SERVICE = "support-chat-vllm.models.svc.cluster.local"  # the route's host; DNS answers its -headless twin
KEY = "bench-key"


@dataclass(frozen=True)
class Config:
    """Model size and workload."""

    replicas: int = 2
    hidden: int = 384
    layers: int = 4
    heads: int = 6  # head_dim 64
    kv_heads: int = 2
    intermediate: int = 1024
    users: int = 16
    turns: int = 4
    system_words: int = 900
    context_words: int = 400
    max_tokens: int = 32
    rounds: int = 3


FULL = Config()
QUICK = Config(hidden=128, layers=2, heads=2, kv_heads=1, intermediate=256, users=4, turns=3,
               system_words=250, context_words=120, max_tokens=12, rounds=1)  # fmt: skip
TARGETS = ("direct", "gateway", "vllm-router round_robin", "vllm-router cache_aware")


def _build_model(work: Path, config: Config) -> tuple[Path, list[str]]:
    """A random-weight Llama with the trainer's tiny tokenizer; the words it tokenizes well."""
    from trainer.data import synthetic_conversations
    from trainer.tiny import train_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    texts = [m["content"] for c in synthetic_conversations(600, 0) for m in c["messages"]]
    tokenizer = train_tokenizer(texts)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=16384,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=config.hidden,
            intermediate_size=config.intermediate,
            num_hidden_layers=config.layers,
            num_attention_heads=config.heads,
            num_key_value_heads=config.kv_heads,
        )
    )
    folder = work / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    words = sorted({w for t in texts for w in re.findall(r"[a-z]+", t.lower())})
    return folder, words


def _start_replicas(work: Path, model_dir: Path, config: Config, stack: ExitStack) -> tuple[int, list[str]]:
    """vLLM replicas on 127.0.0.2.. and one port; (port, their URLs)."""
    port = free_port()
    python = vllm_python(REPO)
    threads = max(1, (os.cpu_count() or 1) // config.replicas)
    servers = []
    for index in range(config.replicas):
        host = f"127.0.0.{index + 2}"
        command = [str(python), "-m", "vllm.entrypoints.openai.api_server", f"--model={model_dir}",
                   "--served-model-name", MODEL, f"--host={host}", f"--port={port}",
                   "--max-model-len=16384", "--enable-prefix-caching", *CPU_FLAGS]  # fmt: skip
        env = {**CPU_ENV, "VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_CPU_OMP_THREADS_BIND": "nobind",
               "OMP_NUM_THREADS": str(threads)}  # fmt: skip
        server = start(command, url=f"http://{host}:{port}", name=f"vLLM {host}",
                       log=work / f"vllm-{host}.log", env=env)  # fmt: skip
        stack.callback(server.stop)
        servers.append(server)
    for server in servers:
        wait_ready(server, "/health", timeout=900, interval=1)
    return port, [s.url for s in servers]


def _start_gateway(work: Path, port: int, config: Config, stack: ExitStack) -> str:
    dns_port = free_port()
    addresses = ",".join(f"127.0.0.{i + 2}" for i in range(config.replicas))
    headless = SERVICE.replace(".", "-headless.", 1)
    command = [
        sys.executable,
        str(DNS_SERVER),
        "--port",
        str(dns_port),
        "--record",
        f"{headless}={addresses}",
    ]
    dns = start(command, url=f"http://127.0.0.1:{dns_port}", name="dns", log=work / "dns.log")
    stack.callback(dns.stop)
    routes = {"models": {MODEL: {
        "routing": {"replicas": "dns", "policy": "prefix-affinity", "loadFactor": 1.25},
        "backends": {"stable": {"url": f"http://{SERVICE}:{port}", "weight": 100}},
    }}}  # fmt: skip
    (work / "routes.yaml").write_text(json.dumps(routes))
    (work / "keys").write_text(KEY + "\n")
    gateway_port = free_port()
    env = {"GATEWAY_ROUTES_FILE": str(work / "routes.yaml"), "GATEWAY_API_KEYS_FILE": str(work / "keys"),
           "GATEWAY_DNS_SERVER": f"127.0.0.1:{dns_port}", "GATEWAY_READ_TIMEOUT_S": "600"}  # fmt: skip
    command = [sys.executable, "-m", "gateway", "--host", "127.0.0.1", "--port", str(gateway_port),
               "--log-level", "warning", "--workers", "1"]  # fmt: skip
    gateway = stack.enter_context(
        running(command, url=f"http://127.0.0.1:{gateway_port}", ready_path="/ready", name="gateway",
                log=work / "gateway.log", env=env, timeout=60)
    )  # fmt: skip
    return gateway.url


def _start_router(work: Path, replicas: list[str], policy: str, stack: ExitStack) -> str:
    port = free_port()
    router = vllm_python(REPO).parent / "vllm-router"
    command = [str(router), "--host", "127.0.0.1", "--port", str(port), "--worker-urls", *replicas,
               "--policy", policy, "--log-level", "warning",
               "--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port())]  # fmt: skip
    server = stack.enter_context(
        running(command, url=f"http://127.0.0.1:{port}", ready_path="/v1/models",
                name=f"vllm-router {policy}", log=work / f"router-{policy}.log")
    )  # fmt: skip
    return server.url


async def _turn(client: httpx.AsyncClient, url: str, messages: list[dict[str, str]], max_tokens: int):  # type: ignore[no-untyped-def]
    """One streamed chat turn: (seconds to the first token, output tokens, the answer's text)."""
    body = {"model": MODEL, "messages": messages, "max_tokens": max_tokens, "stream": True,
            "ignore_eos": True, "temperature": 0, "stream_options": {"include_usage": True}}  # fmt: skip
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    text: list[str] = []
    headers = {"Authorization": f"Bearer {KEY}"}
    async with client.stream("POST", url + "/v1/chat/completions", json=body, headers=headers) as answer:
        if answer.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {answer.status_code}: {(await answer.aread())[:300]!r}")
        async for line in answer.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                tokens = event["usage"].get("completion_tokens") or tokens
            for choice in event.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    text.append(piece)
                    if not first:
                        first = time.perf_counter() - started
    return first or time.perf_counter() - started, tokens, "".join(text)


async def _cache_counters(client: httpx.AsyncClient, replicas: list[str]) -> tuple[float, float]:
    hits = queries = 0.0
    for replica in replicas:
        for line in (await client.get(replica + "/metrics")).text.splitlines():
            if line.startswith("vllm:prefix_cache_hits_total"):
                hits += float(line.rsplit(" ", 1)[1])
            elif line.startswith("vllm:prefix_cache_queries_total"):
                queries += float(line.rsplit(" ", 1)[1])
    return hits, queries


def _percentile(values: list[float], q: float) -> float:
    if not values:  # the warm-up has first turns only
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _run(url: str, replicas: list[str], config: Config, system: str, words: list[str], seed: int):  # type: ignore[no-untyped-def]
    """All users chat through ``url`` at once; the row of numbers."""
    rng = random.Random(seed)
    first_turns: list[float] = []
    follow_ups: list[float] = []
    total_tokens = 0
    limits = httpx.Limits(max_connections=config.users + 4, max_keepalive_connections=config.users + 4)
    async with httpx.AsyncClient(timeout=900, limits=limits) as client:
        hits_before, queries_before = await _cache_counters(client, replicas)

        async def user(index: int) -> None:
            nonlocal total_tokens
            context = " ".join(rng.choice(words) for _ in range(config.context_words))
            messages = [{"role": "system", "content": system},
                        {"role": "user", "content": f"customer {seed}-{index} order history: {context}. "
                                                    "where is my order?"}]  # fmt: skip
            for turn in range(config.turns):
                ttft, tokens, text = await _turn(client, url, messages, config.max_tokens)
                (follow_ups if turn else first_turns).append(ttft)
                total_tokens += tokens
                question = f"question {turn + 1}: and when does it arrive?"
                messages += [{"role": "assistant", "content": text}, {"role": "user", "content": question}]

        began = time.perf_counter()
        await asyncio.gather(*(user(i) for i in range(config.users)))
        seconds = time.perf_counter() - began
        hits_after, queries_after = await _cache_counters(client, replicas)
    queried = queries_after - queries_before
    return {
        "p50": 1000 * _percentile(follow_ups, 0.5),
        "p90": 1000 * _percentile(follow_ups, 0.9),
        "p99": 1000 * _percentile(follow_ups, 0.99),
        "first_p50": 1000 * statistics.median(first_turns),
        "tokens_per_s": total_tokens / seconds,
        "hit_rate": (hits_after - hits_before) / queried if queried else 0.0,
    }


def _row(name: str, row: dict[str, float]) -> str:
    return (f"{name:<26} {row['p50']:>8.0f} {row['p90']:>8.0f} {row['p99']:>8.0f} {row['first_p50']:>10.0f} "
            f"{row['tokens_per_s']:>9.1f} {row['hit_rate']:>8.2f}")  # fmt: skip


HEADER = (f"{'target':<26} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'1st p50 ms':>10} "
          f"{'tokens/s':>9} {'hit rate':>8}")  # fmt: skip


def main() -> None:
    """Build the model, start the replicas and the routers, run the interleaved rounds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small model, 4 users, 1 round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per target (default: 3, --quick: 1)")
    options = parser.parse_args()
    config = QUICK if options.quick else FULL
    rounds = options.rounds or config.rounds

    work = Path(tempfile.mkdtemp(prefix="bench-vllm-routing-"))
    print(f"{config}\nbuilding a random-weight model in {work} ...", flush=True)
    model_dir, words = _build_model(work, config)
    rng = random.Random(0)
    system = "you are the support assistant of an online shop. " + " ".join(
        rng.choice(words) for _ in range(config.system_words)
    )
    with ExitStack() as stack:
        print(f"starting {config.replicas} vLLM replicas (minutes) ...", flush=True)
        port, replicas = _start_replicas(work, model_dir, config, stack)
        urls = {
            "direct": replicas[0],
            "gateway": _start_gateway(work, port, config, stack),
            "vllm-router round_robin": _start_router(work, replicas, "round_robin", stack),
            "vllm-router cache_aware": _start_router(work, replicas, "cache_aware", stack),
        }
        # Warm every path (and put the shared system prompt in both replicas' caches alike).
        warm = Config(**{**config.__dict__, "users": config.replicas * 2, "turns": 1})
        for name in TARGETS:
            asyncio.run(_run(urls[name], replicas, warm, system, words, seed=-1 - TARGETS.index(name)))
        results: dict[str, list[dict[str, float]]] = {name: [] for name in TARGETS}
        for number in range(rounds):
            order = TARGETS[number % len(TARGETS) :] + TARGETS[: number % len(TARGETS)]
            print(f"\nround {number + 1}/{rounds}\n{HEADER}", flush=True)
            for name in order:
                seed = 1000 * (number + 1) + TARGETS.index(name)
                row = asyncio.run(_run(urls[name], replicas, config, system, words, seed))
                results[name].append(row)
                print(_row(name, row), flush=True)
    print(f"\nmedian of {rounds} round(s); TTFT of follow-up turns (turn 2..{config.turns}) unless '1st'; "
          f"{config.users} users x {config.turns} turns, {config.max_tokens} tokens per answer")  # fmt: skip
    print(HEADER)
    for name in TARGETS:
        median = {k: statistics.median(r[k] for r in results[name]) for k in results[name][0]}
        print(_row(name, median))
    load = os.getloadavg()
    print(f"\nlogs in {work}; CPU: {os.cpu_count()} cores, load average {load[0]:.1f} (shared with others)")


if __name__ == "__main__":
    main()
