"""What one discovery resolve costs, by pod count: UDP alone, or UDP then the TCP retry.

Usage: python benchmarks/dns_discovery.py [--rounds 200]

Two test DNS servers (tests/support/dns_server.py, as processes on 127.0.0.1) hold a headless
name with 3 to 4000 A records: one truncates UDP at the client's EDNS0 size (4096, CoreDNS's
default behaviour), the other at 512 bytes (CoreDNS with ``bufsize 512``). For each, the
gateway's ``resolve_a`` asks ``--rounds`` times one after the other; it prints the addresses
returned (all of them, or the benchmark stops), whether the answer needed TCP, and the resolve
time's p50/p99. Those times are mostly the test server's: dnslib packs answers in pure Python
(and packs again to find what fits a truncated one), far slower than CoreDNS; so it also
prints the client's own share, ``parse_answer`` on the full answer. Loopback only: in a
cluster add the pod-to-CoreDNS round trips (one for UDP, two more for the TCP handshake and
answer).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dnslib import EDNS0, QTYPE, RR, A, DNSRecord
from gateway.dns_client import DnsError, parse_answer, resolve_a
from mlops.local.local_servers import free_port

DNS_SERVER = Path(__file__).resolve().parents[1] / "tests" / "support" / "dns_server.py"
PODS = (3, 28, 250, 300, 1000, 4000)


def _name(pods: int) -> str:
    return f"chat-{pods}-vllm-headless.models.svc.cluster.local"


def _addresses(pods: int) -> list[str]:
    return sorted(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(1, pods + 1))


def _serve(udp_limit: int | None) -> tuple[subprocess.Popen[bytes], tuple[str, int]]:
    port = free_port()
    command = [sys.executable, str(DNS_SERVER), "--port", str(port)]
    command += ["--udp-limit", str(udp_limit)] if udp_limit else []
    for pods in PODS:
        command += ["--record", f"{_name(pods)}={','.join(_addresses(pods))}"]
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 30
    while True:
        try:
            asyncio.run(resolve_a(_name(3), ("127.0.0.1", port), 0.5))
            return process, ("127.0.0.1", port)
        except DnsError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)


def _truncated_over_udp(server: tuple[str, int], pods: int) -> bool:
    query = DNSRecord.question(_name(pods))
    query.add_ar(EDNS0(udp_len=4096))  # what the gateway's query says
    return bool(DNSRecord.parse(query.send(*server, timeout=2)).header.tc)


async def _time(server: tuple[str, int], pods: int, rounds: int) -> list[float]:
    wanted = _addresses(pods)
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        got = await resolve_a(_name(pods), server, 2.0)
        times.append((time.perf_counter() - began) * 1000)
        if got != wanted:
            raise SystemExit(f"{pods} pods: resolve_a returned {len(got)} addresses")
    return times


def _parse_ms(pods: int, rounds: int) -> float:
    """Median ms for the client to parse the full answer (what it does once TCP brings it)."""
    reply = DNSRecord.question(_name(pods)).reply()
    for address in _addresses(pods):
        reply.add_answer(RR(_name(pods), QTYPE.A, rdata=A(address), ttl=5))
    packet = reply.pack()
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        parse_answer(packet, reply.header.id)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    print(f"{'UDP limit':>10} {'pods':>5} {'returned':>8} {'via':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for udp_limit in (None, 512):
        process, server = _serve(udp_limit)
        try:
            for pods in PODS:
                times = sorted(asyncio.run(_time(server, pods, args.rounds)))
                via = "UDP+TCP" if _truncated_over_udp(server, pods) else "UDP"
                p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
                limit = str(udp_limit) if udp_limit else "EDNS 4096"
                print(f"{limit:>10} {pods:>5} {pods:>8} {via:>8} {statistics.median(times):7.2f} {p99:7.2f}")
        finally:
            process.terminate()
            process.wait(timeout=10)
    parsed = ", ".join(f"{pods} pods {_parse_ms(pods, args.rounds):.2f}" for pods in PODS)
    print(f"client parse_answer, median ms: {parsed}")


if __name__ == "__main__":
    main()
