"""A real DNS server on 127.0.0.1 (dnslib), UDP and TCP on one port, whose A records a test edits.

It stands in for CoreDNS answering a headless Service: one A record per ready pod, NXDOMAIN
when the Service has none. The gateway's discovery talks to it as it would in a pod. Like
CoreDNS, a UDP answer is cut to the client's EDNS0 payload size (512 bytes without EDNS), and
to ``udp_limit`` where one is set (as CoreDNS's ``bufsize`` plugin lowers it), with the TC bit
set and the records that fit (``truncated_answer="fit"``, as miekg/dns ``Msg.Truncate`` does for
CoreDNS) or none (``"empty"``, as dnslib's own server does). Over TCP the whole answer comes,
unless ``tcp_fault`` makes it misbehave: ``"close-mid-answer"`` (half the message, then close),
``"wrong-ident"`` (an answer to another query), ``"truncated"`` (TC=1 over TCP too, as CoreDNS
sends past 65535 bytes) or ``"silent"`` (reads the query, answers nothing for 5 s). The routing
benchmark runs it as a script with fixed records:

    python tests/support/dns_server.py --port 5353 --record NAME=10.0.0.1,10.0.0.2 [--udp-limit 512]
"""

from __future__ import annotations

import argparse
import socket
import struct
import threading
import time

from dnslib import EDNS0, QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import DNSHandler, DNSLogger, DNSServer

_CLASSIC_UDP = 512  # RFC 1035 section 4.2.1: the UDP size without EDNS0
TRUNCATED_ANSWERS = ("fit", "empty")


class Records:
    """name -> IPv4 addresses; a dnslib resolver that counts the queries it answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, list[str]] = {}
        self.queries = 0
        self.tcp_queries = 0

    def set(self, name: str, addresses: list[str]) -> None:
        """Answer ``name`` with these A records from now on."""
        with self._lock:
            self._records[name.rstrip(".")] = list(addresses)

    def resolve(self, request, handler):  # type: ignore[no-untyped-def]  # dnslib's resolver API
        """The A records of the asked name (TTL 1 s), or NXDOMAIN."""
        reply = request.reply()
        name = str(request.q.qname).rstrip(".")
        with self._lock:
            self.queries += 1
            if handler.protocol == "tcp":
                self.tcp_queries += 1
            addresses = self._records.get(name)
        if not addresses:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if request.q.qtype == QTYPE.A:
            for address in addresses:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=1))
        return reply


def udp_payload(request: DNSRecord, udp_limit: int | None) -> int:
    """The bytes a UDP answer to ``request`` may take: its EDNS0 size (at least 512), capped."""
    opt = next((r for r in request.ar if r.rtype == QTYPE.OPT), None)
    size = max(_CLASSIC_UDP, opt.rclass) if opt is not None else _CLASSIC_UDP
    return min(size, udp_limit) if udp_limit else size


def truncate(reply: DNSRecord, size: int, truncated_answer: str) -> bytes:
    """``reply`` packed into ``size`` bytes: whole, or with TC=1 and the answers that fit (or none)."""
    packet = reply.pack()
    if len(packet) <= size:
        return packet
    answers = reply.rr
    reply.header.tc = 1
    fit = 0
    if truncated_answer == "fit":  # the most answers that still fit: a binary search over the count
        low, high = 0, len(answers)
        while low < high:
            middle = (low + high + 1) // 2
            reply.rr = answers[:middle]
            if len(reply.pack()) <= size:
                low = middle
            else:
                high = middle - 1
        fit = low
    reply.rr = answers[:fit]
    return reply.pack()


class _Handler(DNSHandler):
    """dnslib's handler, with a real server's UDP truncation and the TCP faults a test asks for."""

    def handle(self) -> None:
        if self.server.socket_type != socket.SOCK_STREAM:
            super().handle()  # UDP: one datagram in, get_reply's datagram out
            return
        self.protocol = "tcp"
        query = self._read_message()
        if query is None:
            return
        if self.server.local.tcp_fault == "silent":
            time.sleep(5)
            return
        answer = self.get_reply(query)
        message = struct.pack("!H", len(answer)) + answer
        if self.server.local.tcp_fault == "close-mid-answer":
            message = message[: 2 + len(answer) // 2]  # the connection closes when handle returns
        self.request.sendall(message)

    def _read_message(self) -> bytes | None:
        """One length-prefixed message (RFC 1035 section 4.2.2), or None if the client left early."""
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            chunk = self.request.recv(8192)
            if not chunk:
                return None
            data += chunk
        return data[2 : 2 + struct.unpack("!H", data[:2])[0]]

    def get_reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        local: LocalDns = self.server.local
        if self.protocol == "tcp":
            if local.tcp_fault == "wrong-ident":
                reply.header.id ^= 0xFFFF
            if local.tcp_fault == "truncated":
                reply.header.tc = 1
            return reply.pack()
        size = udp_payload(request, local.udp_limit)
        if any(r.rtype == QTYPE.OPT for r in request.ar):
            reply.add_ar(EDNS0(udp_len=size))  # a server echoes EDNS0 with the size it answers for
        return truncate(reply, size, local.truncated_answer)


class LocalDns:
    """The server and its records; ``address`` is the ``GATEWAY_DNS_SERVER`` value.

    ``udp_limit``, ``truncated_answer`` and ``tcp_fault`` may be changed while it serves.
    """

    def __init__(self, port: int = 0, udp_limit: int | None = None, truncated_answer: str = "fit") -> None:
        self.records = Records()
        self.udp_limit = udp_limit
        self.truncated_answer = truncated_answer
        self.tcp_fault: str | None = None
        self._udp, self._tcp = self._bind(port)
        self.address = f"127.0.0.1:{self._udp.server.server_address[1]}"

    def _bind(self, port: int) -> tuple[DNSServer, DNSServer]:
        """UDP and TCP servers on one port (port 0: a free UDP port that TCP can have too)."""
        for _ in range(20):
            udp = self._server(port, tcp=False)
            try:
                return udp, self._server(udp.server.server_address[1], tcp=True)
            except OSError:
                udp.server.server_close()
                if port:
                    raise
        raise OSError("no port free for both UDP and TCP on 127.0.0.1")

    def _server(self, port: int, tcp: bool) -> DNSServer:
        server = DNSServer(
            self.records,
            port=port,
            address="127.0.0.1",
            tcp=tcp,
            handler=_Handler,
            logger=DNSLogger(logf=lambda _line: None),
        )
        server.server.local = self  # what _Handler reads
        return server

    def start(self) -> None:
        """Serve UDP and TCP, each in a thread."""
        self._udp.start_thread()
        self._tcp.start_thread()

    def stop(self) -> None:
        """Stop serving (the sockets stay bound: queries go unanswered, as from a hung server)."""
        self._udp.stop()
        self._tcp.stop()


def main() -> None:
    """Serve ``--record`` entries on 127.0.0.1:``--port`` (UDP and TCP) until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", action="append", default=[], help="NAME=IP[,IP...]")
    parser.add_argument(
        "--udp-limit", type=int, default=None, help="cap UDP answers at this many bytes (CoreDNS bufsize)"
    )
    parser.add_argument(
        "--truncated-answer",
        choices=TRUNCATED_ANSWERS,
        default="fit",
        help="what a TC=1 answer holds: the records that fit, or none",
    )
    args = parser.parse_args()
    if args.udp_limit is not None and not _CLASSIC_UDP <= args.udp_limit <= 65535:
        parser.error(f"--udp-limit {args.udp_limit}: a UDP payload limit is 512 to 65535 bytes")
    server = LocalDns(args.port, udp_limit=args.udp_limit, truncated_answer=args.truncated_answer)
    for record in args.record:
        name, _, addresses = record.partition("=")
        server.records.set(name, addresses.split(","))
    server.start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
