"""A minimal DNS client: the A records of one name, asked over UDP of one server.

Why not ``getaddrinfo``: it goes through the C library's resolver (``/etc/hosts``, nscd,
search domains), which may cache and which a test cannot point at its own server; and why not
a DNS library: the gateway needs one question type and a few dozen lines (RFC 1035 section 4,
plus an EDNS0 OPT record, RFC 6891, so that a model with many replicas is not truncated at 512
bytes). The answer's TTL is not used: the caller asks again every second or two, and CoreDNS
already caches for the record's TTL (its ``kubernetes`` plugin's ``ttl``, 5 s by default).
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import struct
from pathlib import Path

_A = 1
_IN = 1
_OPT = 41
_NXDOMAIN = 3
_EDNS_PAYLOAD = 4096


class DnsError(Exception):
    """No usable answer (timeout, server failure, malformed packet): keep what was known."""


def nameserver(resolv_conf: Path = Path("/etc/resolv.conf")) -> tuple[str, int]:
    """The first ``nameserver`` of resolv.conf (in a pod: the cluster DNS Service), port 53."""
    try:
        for line in resolv_conf.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                return parts[1], 53
    except OSError:
        pass
    return "127.0.0.1", 53


def parse_server(text: str) -> tuple[str, int]:
    """``host`` or ``host:port`` (``GATEWAY_DNS_SERVER``) as an address and port.

    Raises:
        ValueError: not an IPv4 address with an optional port.
    """
    host, _, port = text.partition(":")
    ipaddress.IPv4Address(host)
    return host, int(port) if port else 53


def _query(ident: int, name: str) -> bytes:
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 1)  # recursion desired, one OPT
    labels = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.rstrip(".").split(".") if p)
    question = labels + b"\x00" + struct.pack("!HH", _A, _IN)
    opt = b"\x00" + struct.pack("!HHIH", _OPT, _EDNS_PAYLOAD, 0, 0)
    return header + question + opt


def _skip_name(packet: bytes, at: int) -> int:
    while True:
        if at >= len(packet):
            raise DnsError("malformed answer: a name runs past the packet")
        length = packet[at]
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            return at + 2
        if length == 0:
            return at + 1
        at += 1 + length


def parse_answer(packet: bytes, ident: int) -> list[str]:
    """The IPv4 addresses of the A records in ``packet`` (sorted; [] for NXDOMAIN).

    Raises:
        DnsError: another query's answer, a server error, or a malformed packet.
    """
    try:
        return _parse_answer(packet, ident)
    except (struct.error, IndexError, ValueError) as exc:  # a packet cut short or lying about lengths
        raise DnsError(f"malformed answer: {exc}") from exc


def _parse_answer(packet: bytes, ident: int) -> list[str]:
    if len(packet) < 12:
        raise DnsError("malformed answer: shorter than a DNS header")
    got, flags, questions, answers = struct.unpack_from("!HHHH", packet)
    if got != ident:
        raise DnsError("answer to another query")
    rcode = flags & 0x000F
    if rcode == _NXDOMAIN:
        return []
    if rcode:
        raise DnsError(f"server answered rcode {rcode}")
    at = 12
    for _ in range(questions):
        at = _skip_name(packet, at) + 4
    addresses = []
    for _ in range(answers):
        at = _skip_name(packet, at)
        if at + 10 > len(packet):
            raise DnsError("malformed answer: a record runs past the packet")
        rtype, rclass, _ttl, length = struct.unpack_from("!HHIH", packet, at)
        at += 10
        if at + length > len(packet):
            raise DnsError("malformed answer: a record's data runs past the packet")
        if rtype == _A and rclass == _IN and length == 4:
            addresses.append(str(ipaddress.IPv4Address(bytes(packet[at : at + 4]))))
        at += length
    return sorted(set(addresses))


class _Exchange(asyncio.DatagramProtocol):
    def __init__(self, answer: asyncio.Future[bytes]) -> None:
        self.answer = answer

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(DnsError(f"DNS server unreachable: {exc}"))


async def resolve_a(name: str, server: tuple[str, int], timeout: float = 1.0) -> list[str]:
    """The A records of ``name`` from ``server`` (sorted addresses; [] when the name has none).

    Raises:
        DnsError: no answer within ``timeout``, or an unusable one.
    """
    loop = asyncio.get_running_loop()
    ident = secrets.randbelow(0x10000)
    answer: asyncio.Future[bytes] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Exchange(answer), remote_addr=server)
    try:
        transport.sendto(_query(ident, name))
        try:
            packet = await asyncio.wait_for(answer, timeout)
        except TimeoutError as exc:
            raise DnsError(f"no answer from {server[0]}:{server[1]} within {timeout:g}s") from exc
    finally:
        transport.close()
    return parse_answer(packet, ident)
