"""Replicas found by DNS: scale-out and scale-in under load, prefix affinity and its load bound.

Each replica is a fixed backend on its own loopback address (127.0.0.2, 127.0.0.3, ...) and one
port, as the pods of a headless Service share a port; a real DNS server on 127.0.0.1
(tests/support/dns_server.py) answers the Service's name with their A records, and the test
edits those records as the endpoints controller would when a pod becomes ready or terminates.
Each fixed backend signs its answers with its version, so the client sees which replica answered.
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
import yaml
from support.dns_server import LocalDns

pytestmark = pytest.mark.slow

API_KEY = "test-key-1"  # written into the keys file by the gateway fixture
SERVICE = "support-chat-vllm.models.svc.cluster.local"  # what the route names
HOST = "support-chat-vllm-headless.models.svc.cluster.local"  # what the gateway asks DNS
SYSTEM = {"role": "system", "content": "You are the support assistant of an online shop. " * 20}


@pytest.fixture
def dns() -> Iterator[LocalDns]:
    server = LocalDns()
    server.start()
    yield server
    server.stop()


def _replicas(fixed_backend, count: int, delay_ms: float = 0.0):  # type: ignore[no-untyped-def]
    """``count`` fixed backends on 127.0.0.2.. and one port: (port, addresses, servers)."""
    servers = [fixed_backend("r2", delay_ms=delay_ms, host="127.0.0.2")]
    port = int(servers[0].url.rsplit(":", 1)[1])
    for index in range(3, count + 2):
        servers.append(fixed_backend(f"r{index}", delay_ms=delay_ms, host=f"127.0.0.{index}", port=port))
    return port, [f"127.0.0.{i}" for i in range(2, count + 2)], servers


def _dns_gateway(gateway, fixed_backend, dns: LocalDns, port: int, routing: dict[str, object]):  # type: ignore[no-untyped-def]
    """A gateway whose support-chat backend is the headless Service, resolved by ``dns``."""
    gw = gateway(
        {"stable": (f"http://127.0.0.2:{port}", 100)},
        env={"GATEWAY_DNS_SERVER": dns.address, "GATEWAY_DISCOVERY_INTERVAL_S": "0.5"},
    )
    routes = {
        "models": {
            "support-chat": {
                "routing": {"replicas": "dns", **routing},
                "backends": {"stable": {"url": f"http://{SERVICE}:{port}", "weight": 100}},
            }
        }
    }
    tmp = gw.routes_file.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(routes))
    tmp.replace(gw.routes_file)
    return gw


def _wait_for_replicas(gw, addresses: list[str], port: int, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    wanted = {f"{a}:{port}" for a in addresses}
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = set(re.findall(r'gateway_replica_inflight_requests\{[^}]*replica="([^"]+)"', gw.metrics()))
        if seen == wanted:
            return
        time.sleep(0.1)
    raise AssertionError(f"the gateway's replicas are {sorted(seen)}, not {sorted(wanted)}")


def _client(gw) -> openai.AsyncOpenAI:  # type: ignore[no-untyped-def]
    # max_retries=0: every failure the gateway lets through must count.
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=API_KEY, max_retries=0, timeout=30)


async def _chat(client: openai.AsyncOpenAI, messages: list[dict[str, str]]) -> str:
    """One streamed chat; the replica (fixed backend version) that answered."""
    stream = await client.chat.completions.create(model="support-chat", messages=messages, stream=True)
    fingerprint = "?"
    async for chunk in stream:
        fingerprint = chunk.system_fingerprint or fingerprint
    return fingerprint.rsplit(":", 1)[-1]


async def _load(gw, seconds: float, users: int, during=None):  # type: ignore[no-untyped-def]
    """``users`` concurrent users chatting for ``seconds``; ``during(t0)`` runs alongside.

    Returns (started at, replica) per answered request, and the failures.
    """
    client = _client(gw)
    answered: list[tuple[float, str]] = []
    failures: list[str] = []
    began = time.monotonic()

    async def user(index: int) -> None:
        turn = 0
        while time.monotonic() - began < seconds:
            messages = [SYSTEM, {"role": "user", "content": f"user {index} turn {turn}"}]
            started = time.monotonic() - began
            try:
                answered.append((started, await _chat(client, messages)))
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                failures.append(f"{type(exc).__name__}: {exc}")
            turn += 1

    tasks = [user(i) for i in range(users)]
    if during is not None:
        tasks.append(during(began))
    await asyncio.gather(*tasks)
    await client.close()
    return answered, failures


def test_replica_added_under_load_takes_traffic_within_seconds(gateway, fixed_backend, dns) -> None:  # type: ignore[no-untyped-def]
    port, addresses, _ = _replicas(fixed_backend, 2, delay_ms=20)
    dns.records.set(HOST, addresses[:1])
    gw = _dns_gateway(gateway, fixed_backend, dns, port, {"policy": "least-outstanding"})
    _wait_for_replicas(gw, addresses[:1], port)
    added_at = 2.0

    async def scale_out(began: float) -> None:
        await asyncio.sleep(added_at)
        dns.records.set(HOST, addresses)  # the new pod became ready

    answered, failures = asyncio.run(_load(gw, 8.0, users=12, during=scale_out))
    assert failures == []
    assert {r for t, r in answered if t < added_at} == {"r2"}
    first_on_new = min(t for t, r in answered if r == "r3")
    assert first_on_new - added_at < 3.0, (
        f"the new replica's first request came {first_on_new - added_at:.1f}s late"
    )
    later = collections.Counter(r for t, r in answered if t > added_at + 3.0)
    # least outstanding: the two equal replicas share the load
    assert later["r3"] > 0.3 * sum(later.values()), later


def test_replica_removed_under_load_drains_with_no_failed_request(gateway, fixed_backend, dns) -> None:  # type: ignore[no-untyped-def]
    port, addresses, servers = _replicas(fixed_backend, 2, delay_ms=20)
    dns.records.set(HOST, addresses)
    gw = _dns_gateway(gateway, fixed_backend, dns, port, {"policy": "least-outstanding"})
    _wait_for_replicas(gw, addresses, port)
    removed_at = 2.0

    async def scale_in(began: float) -> None:
        await asyncio.sleep(removed_at)
        dns.records.set(HOST, addresses[:1])  # the pod terminates: out of the endpoints at once
        # preStop: it serves on while the change reaches the gateway and its streams end (each
        # takes about 0.2 s here); then the process exits, as vLLM does after SIGTERM.
        await asyncio.sleep(2.5)
        servers[1].kill()

    answered, failures = asyncio.run(_load(gw, 7.0, users=12, during=scale_in))
    assert failures == []
    assert {r for t, r in answered if t < removed_at} == {"r2", "r3"}
    # No request begun once the gateway could have seen the change went to the leaving replica.
    late = [t for t, r in answered if r == "r3" and t > removed_at + 2.0]
    assert late == [], f"{len(late)} requests went to the removed replica after it left DNS"
    assert sum(1 for t, _ in answered if t > removed_at + 2.0) > 20


def _conversation(user: int, turns: int) -> list[dict[str, str]]:
    messages = [SYSTEM, {"role": "user", "content": f"I am user {user}; where is my order?"}]
    for turn in range(1, turns):
        messages += [
            {"role": "assistant", "content": "Thanks for reaching out! Your order has shipped."},
            {"role": "user", "content": f"turn {turn}: and when does it arrive?"},
        ]
    return messages


def test_prefix_affinity_keeps_each_conversation_on_one_replica(gateway, fixed_backend, dns) -> None:  # type: ignore[no-untyped-def]
    port, addresses, _ = _replicas(fixed_backend, 3)
    dns.records.set(HOST, addresses)
    gw = _dns_gateway(gateway, fixed_backend, dns, port, {"policy": "prefix-affinity", "loadFactor": 1.25})
    _wait_for_replicas(gw, addresses, port)

    async def conversations() -> dict[int, set[str]]:
        client = _client(gw)
        served: dict[int, set[str]] = collections.defaultdict(set)

        users = iter(range(24))

        async def chats() -> None:
            for index in users:
                for turns in range(1, 5):  # each turn repeats the history and adds to it
                    served[index].add(await _chat(client, _conversation(index, turns)))

        # Two at a time: a request finds at most one other in flight, under the bound's floor
        # (gateway.balancer.BOUND_FLOOR), so nothing spills; a least-outstanding choice (idle
        # replicas tie) would scatter the turns.
        await asyncio.gather(*(chats() for _ in range(2)))
        await client.close()
        return served

    served = asyncio.run(conversations())
    moved = {user: replicas for user, replicas in served.items() if len(replicas) != 1}
    assert moved == {}, f"conversations answered by more than one replica: {moved}"
    used = collections.Counter(next(iter(r)) for r in served.values())
    assert len(used) == 3, f"24 conversations should spread over the 3 replicas: {used}"
    assert 'choice="affinity"' in gw.metrics()


def test_bounded_load_spills_a_hot_conversation_to_other_replicas(gateway, fixed_backend, dns) -> None:  # type: ignore[no-untyped-def]
    port, addresses, _ = _replicas(fixed_backend, 2, delay_ms=30)
    dns.records.set(HOST, addresses)
    gw = _dns_gateway(gateway, fixed_backend, dns, port, {"policy": "prefix-affinity", "loadFactor": 1.25})
    _wait_for_replicas(gw, addresses, port)

    async def burst() -> collections.Counter[str]:
        client = _client(gw)
        answers = await asyncio.gather(*(_chat(client, _conversation(7, 2)) for _ in range(16)))
        await client.close()
        return collections.Counter(answers)

    served = asyncio.run(burst())
    # 16 requests of one conversation at once: the bound (1.25 x the mean) keeps either replica
    # from holding more than ceil(1.25 * 16 / 2) = 10 of them. The first that finds its replica
    # over the bound spills; the conversation is then remembered where it went (its cache is on
    # both replicas by then), so later ones count as affinity there until that one is full too.
    assert set(served) == {"r2", "r3"} and max(served.values()) <= 10, served
    spills = re.findall(r'gateway_replica_requests_total\{[^}]*choice="spill"[^}]*\} (\S+)', gw.metrics())
    assert sum(float(v) for v in spills) >= 1, spills


def test_discovery_keeps_the_last_replicas_when_dns_stops_answering(gateway, fixed_backend, dns) -> None:  # type: ignore[no-untyped-def]
    port, addresses, _ = _replicas(fixed_backend, 2)
    dns.records.set(HOST, addresses)
    gw = _dns_gateway(gateway, fixed_backend, dns, port, {})
    _wait_for_replicas(gw, addresses, port)
    dns.stop()
    time.sleep(2.0)  # several discovery rounds time out
    _wait_for_replicas(gw, addresses, port, timeout=1)
    answered, failures = asyncio.run(_load(gw, 1.0, users=4))
    assert failures == [] and {r for _, r in answered} == {"r2", "r3"}


def _many_pods(addresses: list[str], count: int) -> list[str]:
    """``count`` ready pods: the real replicas, then pods on 127.0.1.x that only DNS knows of."""
    return addresses + [f"127.0.1.{i}" for i in range(1, count - len(addresses) + 1)]


def test_pods_past_a_truncated_udp_answer_are_replicas_too(gateway, fixed_backend, dns) -> None:  # type: ignore[no-untyped-def]
    port, addresses, _ = _replicas(fixed_backend, 2)
    pods = _many_pods(addresses, 40)
    dns.udp_limit = 512  # CoreDNS with `bufsize 512`: about 29 A records fit, then TC=1
    dns.records.set(HOST, pods)
    gw = _dns_gateway(gateway, fixed_backend, dns, port, {})
    _wait_for_replicas(gw, pods, port)
    assert dns.records.tcp_queries > 0


def test_a_tcp_answer_cut_short_keeps_the_last_replicas(gateway, fixed_backend, dns) -> None:  # type: ignore[no-untyped-def]
    port, addresses, _ = _replicas(fixed_backend, 2)
    pods = _many_pods(addresses, 40)
    dns.udp_limit = 512
    dns.records.set(HOST, pods)
    gw = _dns_gateway(gateway, fixed_backend, dns, port, {})
    _wait_for_replicas(gw, pods, port)
    dns.tcp_fault = "close-mid-answer"
    asked = dns.records.tcp_queries
    deadline = time.monotonic() + 10
    while dns.records.tcp_queries < asked + 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert dns.records.tcp_queries >= asked + 3, "the gateway stopped asking over TCP"
    # Neither the part that fit over UDP nor none: the 40 it knew.
    _wait_for_replicas(gw, pods, port, timeout=1)
    dns.tcp_fault = None
    dns.records.set(HOST, pods[:35])  # answered in full again, it follows the scale-in
    _wait_for_replicas(gw, pods[:35], port)


def test_a_backend_without_ready_pods_answers_503_and_the_first_ready_pod_serves(
    gateway, fixed_backend, dns
) -> None:  # type: ignore[no-untyped-def]
    port, addresses, _ = _replicas(fixed_backend, 1)
    dns.records.set(HOST, addresses)
    gw = _dns_gateway(gateway, fixed_backend, dns, port, {})
    _wait_for_replicas(gw, addresses, port)
    dns.records.set(HOST, [])  # scaled to zero: CoreDNS answers NXDOMAIN
    _wait_for_replicas(gw, [], port)
    body = {"model": "support-chat", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    answer = httpx.post(gw.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert answer.status_code == 503
    assert answer.json()["error"]["message"] == "No backend of model `support-chat` is reachable."
    dns.records.set(HOST, addresses)
    _wait_for_replicas(gw, addresses, port)
    answer = httpx.post(gw.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert answer.status_code == 200 and answer.json()["system_fingerprint"] == "support-chat:r2"


def test_validate_and_the_gateway_spell_the_headless_twin_alike() -> None:
    """mlops validate (MLOPS132) looks for the Service the gateway resolves: one suffix, two spellings."""
    from gateway.routes import HEADLESS_SUFFIX
    from mlops.validate.env_rules.references import HEADLESS_SUFFIX as VALIDATE_SUFFIX

    assert VALIDATE_SUFFIX == HEADLESS_SUFFIX


def test_a_short_service_name_resolves_as_the_cluster_domain() -> None:
    """The gateway asks DNS without a search path: a route's `<name>.<namespace>` host must not
    become a bare `<name>-headless.<namespace>` query, which answers NXDOMAIN (no pods, 503s)."""
    from gateway.routes import headless_host

    assert headless_host("chat-vllm.models") == "chat-vllm-headless.models.svc.cluster.local"
    assert (
        headless_host("chat-vllm.models.svc.cluster.local") == "chat-vllm-headless.models.svc.cluster.local"
    )
    assert headless_host("chat-vllm.models.svc") == "chat-vllm-headless.models.svc.cluster.local"


def test_one_empty_dns_answer_does_not_drop_every_replica(dns, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """CoreDNS can answer NXDOMAIN in passing (coredns/coredns#6518): only a lasting one empties the set."""
    from gateway import replicas as replicas_module
    from gateway.dns_client import parse_server
    from gateway.replicas import ReplicaSet

    class Pool:
        closed = False

        def close(self) -> None:
            self.closed = True

    monkeypatch.setattr(replicas_module, "EMPTY_GRACE_S", 0.5)
    found = ReplicaSet(f"http://{SERVICE}:8000", "dns", lambda url: Pool())  # type: ignore[arg-type,return-value]
    server = parse_server(dns.address)

    def addresses() -> list[str]:
        asyncio.run(found.discover(server, 1.0))
        return sorted(r.address for r in found.replicas)

    dns.records.set(HOST, ["10.0.0.1", "10.0.0.2"])
    assert addresses() == ["10.0.0.1:8000", "10.0.0.2:8000"]
    dns.records.set(HOST, [])
    assert addresses() == ["10.0.0.1:8000", "10.0.0.2:8000"]  # one empty answer: kept
    dns.records.set(HOST, ["10.0.0.1", "10.0.0.2"])
    assert addresses() == ["10.0.0.1:8000", "10.0.0.2:8000"]  # and the grace starts over
    dns.records.set(HOST, [])
    assert addresses() == ["10.0.0.1:8000", "10.0.0.2:8000"]
    time.sleep(0.6)
    assert addresses() == []  # still empty past the grace: the model has no ready pod
    # A scale-in is followed at once; only "no pod at all" waits.
    dns.records.set(HOST, ["10.0.0.1", "10.0.0.2"])
    assert len(addresses()) == 2
    dns.records.set(HOST, ["10.0.0.2"])
    assert addresses() == ["10.0.0.2:8000"]
