"""The gateway's DNS client against a real DNS server on 127.0.0.1 that truncates over UDP.

A headless Service with more ready pods than one UDP answer holds comes back with TC=1 and only
some records (or none): the client must ask again over TCP and return every address, or fail
(DnsError, so discovery keeps what it knew), never return the part that fit.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import EDNS0, DNSRecord
from gateway.dns_client import DnsError, parse_server, resolve_a
from mlops.local.local_servers import free_port
from support.dns_server import LocalDns

NAME = "chat-vllm-headless.models.svc.cluster.local"
DNS_SERVER = Path(__file__).resolve().parents[1] / "support" / "dns_server.py"


def _addresses(count: int) -> list[str]:
    return sorted(f"10.1.{i // 200}.{i % 200 + 1}" for i in range(count))


@pytest.fixture
def dns() -> Iterator[LocalDns]:
    server = LocalDns()
    server.start()
    yield server
    server.stop()


def _resolve(address: str, timeout: float = 2.0) -> list[str]:
    return asyncio.run(resolve_a(NAME, parse_server(address), timeout))


def _over_udp(address: str, edns: int | None) -> DNSRecord:
    """What a plain UDP query gets (dig +bufsize / +noedns): the truncated answer itself."""
    host, port = parse_server(address)
    query = DNSRecord.question(NAME)
    if edns is not None:
        query.add_ar(EDNS0(udp_len=edns))
    return DNSRecord.parse(query.send(host, port, timeout=2))


def test_300_pods_come_back_in_full_through_the_tcp_retry(dns: LocalDns) -> None:
    addresses = _addresses(300)  # ~4.8 KB of answer: past the client's EDNS0 size of 4096
    dns.records.set(NAME, addresses)
    udp = _over_udp(dns.address, edns=4096)
    assert udp.header.tc == 1 and 0 < len(udp.rr) < 300  # what the client used to take as the pods
    assert _resolve(dns.address) == addresses
    assert dns.records.tcp_queries == 1


@pytest.mark.parametrize("truncated_answer", ["fit", "empty"])
def test_a_512_byte_udp_limit_loses_no_pod(dns: LocalDns, truncated_answer: str) -> None:
    """CoreDNS's bufsize plugin (or a query without EDNS) caps UDP at 512 bytes: ~29 A records."""
    addresses = _addresses(60)
    dns.records.set(NAME, addresses)
    dns.udp_limit = 512
    dns.truncated_answer = truncated_answer
    udp = _over_udp(dns.address, edns=None)
    assert udp.header.tc == 1 and len(udp.rr) < 60
    assert _resolve(dns.address) == addresses


def test_an_answer_that_fits_stays_on_udp(dns: LocalDns) -> None:
    dns.records.set(NAME, _addresses(3))
    dns.udp_limit = 512
    assert _resolve(dns.address) == _addresses(3)
    assert dns.records.tcp_queries == 0


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("close-mid-answer", r"the TCP answer from 127\.0\.0\.1:\d+ ended after \d+ of its \d+ bytes"),
        ("wrong-ident", "answer to another query"),
        ("truncated", f"the answer for {NAME} is truncated even over TCP"),
        ("silent", r"no answer from 127\.0\.0\.1:\d+ over TCP within 0\.5s"),
    ],
)
def test_a_bad_tcp_answer_is_an_error_not_the_udp_part(dns: LocalDns, fault: str, message: str) -> None:
    dns.records.set(NAME, _addresses(60))
    dns.udp_limit = 512
    dns.tcp_fault = fault
    with pytest.raises(DnsError, match=message):
        _resolve(dns.address, timeout=0.5)
    assert dns.records.tcp_queries == (0 if fault == "silent" else 1)


def test_the_script_server_truncates_at_its_udp_limit_and_answers_over_tcp() -> None:
    """The benchmark's way of running it: ``--udp-limit 512`` as a process."""
    addresses = _addresses(60)
    port = free_port()
    command = [sys.executable, str(DNS_SERVER), "--port", str(port), "--udp-limit", "512",
               "--record", f"{NAME}={','.join(addresses)}"]  # fmt: skip
    process = subprocess.Popen(command)
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                resolved = _resolve(address, timeout=0.5)
                break
            except DnsError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert resolved == addresses
        udp = _over_udp(address, edns=4096)
        assert udp.header.tc == 1 and len(udp.rr) < 60
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_script_refuses_a_udp_limit_below_512() -> None:
    done = subprocess.run(
        [sys.executable, str(DNS_SERVER), "--port", "5353", "--udp-limit", "100"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "--udp-limit 100: a UDP payload limit is 512 to 65535 bytes" in done.stderr
