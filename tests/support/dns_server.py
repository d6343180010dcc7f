"""A real DNS server on 127.0.0.1 (dnslib) whose A records a test edits while it runs.

It stands in for CoreDNS answering a headless Service: one A record per ready pod, NXDOMAIN
when the Service has none. The gateway's discovery talks to it over UDP as it would in a pod.
The routing benchmark runs it as a script with fixed records:

    python tests/support/dns_server.py --port 5353 --record NAME=10.0.0.1,10.0.0.2
"""

from __future__ import annotations

import argparse
import threading
import time

from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import DNSLogger, DNSServer


class Records:
    """name -> IPv4 addresses; a dnslib resolver."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, list[str]] = {}
        self.queries = 0

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
            addresses = self._records.get(name)
        if not addresses:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if request.q.qtype == QTYPE.A:
            for address in addresses:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=1))
        return reply


class LocalDns:
    """The server and its records; ``address`` is the ``GATEWAY_DNS_SERVER`` value."""

    def __init__(self, port: int = 0) -> None:
        self.records = Records()
        self._server = DNSServer(
            self.records, port=port, address="127.0.0.1", logger=DNSLogger(logf=lambda _line: None)
        )
        self.address = f"127.0.0.1:{self._server.server.server_address[1]}"

    def start(self) -> None:
        """Serve in a thread."""
        self._server.start_thread()

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()


def main() -> None:
    """Serve ``--record`` entries on 127.0.0.1:``--port`` until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", action="append", default=[], help="NAME=IP[,IP...]")
    args = parser.parse_args()
    server = LocalDns(args.port)
    for record in args.record:
        name, _, addresses = record.partition("=")
        server.records.set(name, addresses.split(","))
    server.start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
