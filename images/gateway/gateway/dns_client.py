"""A minimal DNS client: the A records of one name from one server, over UDP and, when truncated, TCP.

Why not ``getaddrinfo``: it goes through the C library's resolver (``/etc/hosts``, nscd,
search domains), which may cache and which a test cannot point at its own server; and why not
a DNS library: the gateway needs one question type and a few dozen lines (RFC 1035 section 4,
plus an EDNS0 OPT record, RFC 6891, so that up to ~250 replicas fit one 4096-byte datagram).
An answer that does not fit the server's UDP limit comes back with the TC bit and only the
records that fit, or none (CoreDNS truncates to the client's EDNS size, 512 bytes without
EDNS, and its ``bufsize`` plugin lowers that size, 1232 by default). Taken as it is, it would
make replicas vanish, so TC means: ask again over TCP (RFC 7766), where a message
may hold 65535 bytes behind a 2-byte length (RFC 1035 section 4.2.2). An answer still
truncated there, cut short, or for another query is a ``DnsError``: the caller keeps the
replicas it knew. The answer's TTL is not used: the caller asks again every second or two, and
CoreDNS already caches for the record's TTL (its ``kubernetes`` plugin's ``ttl``, 5 s by default).
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
_TC = 0x0200  # the header's truncation flag (RFC 1035 section 4.1.1)
_EDNS_PAYLOAD = 4096


class DnsError(Exception):
    """No usable answer (timeout, server failure, malformed packet): keep what was known."""


class Truncated(DnsError):
    """The answer has the TC bit: its records are only those that fit, so none of them count."""


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
        Truncated: the TC bit is set (whatever records came with it).
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
    if flags & _TC:
        raise Truncated(f"truncated answer (TC bit set, answer count {answers})")
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


async def _ask_udp(query: bytes, server: tuple[str, int]) -> bytes:
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bytes] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Exchange(answer), remote_addr=server)
    try:
        transport.sendto(query)
        return await answer
    finally:
        transport.close()


async def _ask_tcp(query: bytes, server: tuple[str, int]) -> bytes:
    """One query over a fresh TCP connection: both messages carry a 2-byte length in front."""
    where = f"{server[0]}:{server[1]}"
    try:
        reader, writer = await asyncio.open_connection(*server)
    except OSError as exc:
        raise DnsError(f"the UDP answer was truncated and TCP to {where} failed: {exc}") from exc
    try:
        writer.write(struct.pack("!H", len(query)) + query)
        await writer.drain()
        try:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
        except asyncio.IncompleteReadError as exc:
            raise DnsError(f"the TCP connection to {where} closed before an answer") from exc
        try:
            return await reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise DnsError(
                f"the TCP answer from {where} ended after {len(exc.partial)} of its {length} bytes"
            ) from exc
    except OSError as exc:  # reset mid-answer
        raise DnsError(f"the TCP connection to {where} failed: {exc}") from exc
    finally:
        writer.close()


async def resolve_a(name: str, server: tuple[str, int], timeout: float = 1.0) -> list[str]:
    """The A records of ``name`` from ``server`` (sorted addresses; [] when the name has none).

    Asks over UDP; a truncated answer is asked again over TCP, within the same ``timeout``.

    Raises:
        DnsError: no answer within ``timeout``, or an unusable one (truncated even over TCP,
            cut short, for another query, malformed).
    """
    ident = secrets.randbelow(0x10000)
    query = _query(ident, name)
    transport = "UDP"
    try:
        async with asyncio.timeout(timeout):
            try:
                return parse_answer(await _ask_udp(query, server), ident)
            except Truncated:
                transport = "TCP"  # RFC 7766 section 5: the full answer is there
            try:
                return parse_answer(await _ask_tcp(query, server), ident)
            except Truncated as exc:
                # Over 65535 bytes (~4000 records): CoreDNS truncates TCP too; still not the set.
                raise DnsError(f"the answer for {name} is truncated even over TCP") from exc
    except TimeoutError as exc:
        where = f"{server[0]}:{server[1]}"
        raise DnsError(f"no answer from {where} over {transport} within {timeout:g}s") from exc
