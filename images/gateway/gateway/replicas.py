"""The replicas (vLLM pods) behind each backend, found by DNS, and their per-replica metrics.

A backend with ``routing.replicas: dns`` has a headless twin of its Service,
``<service>-headless`` (``clusterIP: None``, ``publishNotReadyAddresses: false``; see
``gateway.routes.headless_host``): its DNS name has one A record per *ready* pod. The
gateway asks again every ``GATEWAY_DISCOVERY_INTERVAL_S`` (1 s), so a pod that KEDA adds takes
requests once it is ready and the records reach the gateway, and a pod that is terminating
leaves the records and is sent nothing new. Its requests in flight carry on over their open
connections: a replica that leaves only stops being chosen; its idle connections close at
once and its busy ones when their answer ends. Why DNS and not EndpointSlices: it needs no
Kubernetes API rights (no RBAC, no watch connection per gateway worker) and follows the same
ready condition; the price is up to CoreDNS's TTL of staleness (5 s), which the vLLM pod's
``preStop`` sleep covers (base/models/vllm/deployment.yaml).

A backend with ``routing.replicas: service`` (the default) is one replica, its url.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlsplit

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.balancer import Placements
from gateway.dns_client import DnsError, resolve_a
from gateway.replica import Replica
from gateway.routes import Backend, headless_host
from gateway.upstream import BackendPool

log = logging.getLogger("gateway")

# An answer with no pod removes every replica only once DNS has said so for this long: an empty
# answer (NXDOMAIN) is how a headless Service with no ready pod answers, but CoreDNS has been
# seen to answer it in passing for one that has pods (coredns/coredns#6518), and a model with
# one backend would answer 503 to everything until the next resolve.
EMPTY_GRACE_S = 2.5


class ReplicaSet:
    """The replicas of one backend url: fixed (``service``) or kept in step with DNS (``dns``)."""

    def __init__(self, url: str, mode: str, new_pool: Callable[[str], BackendPool]) -> None:
        parts = urlsplit(url)
        self.url = url
        self.mode = mode
        self.host = parts.hostname or ""
        self.port = parts.port or 80
        # `dns`: the name asked, the Service's headless twin; `service`: unused.
        self.dns_name = headless_host(self.host)
        self._new_pool = new_pool
        self.replicas: list[Replica] = []
        self.error: str | None = None
        self._empty_since: float | None = None
        # Where each conversation was last served (prefix affinity follows its KV cache).
        self.placements = Placements()
        if mode == "service":
            self.replicas = [Replica(f"{self.host}:{self.port}", new_pool(url))]

    def update(self, addresses: Iterable[str]) -> None:
        """Take the pod IPs DNS lists now: new ones join, gone ones drain and close."""
        wanted = {f"{a}:{self.port}" for a in addresses}
        current = {r.address: r for r in self.replicas}
        if wanted == current.keys():
            return
        kept = [r for r in self.replicas if r.address in wanted]
        added = [Replica(a, self._new_pool(f"http://{a}")) for a in sorted(wanted - current.keys())]
        for address in current.keys() - wanted:
            # No new request goes there; busy connections finish their answers, then close.
            current[address].pool.close()
        self.replicas = kept + added
        log.info("replicas of %s: %s", self.url, sorted(wanted) or "none")

    async def discover(self, server: tuple[str, int], timeout: float) -> None:
        """Ask DNS for the pods now (``dns`` mode); on failure keep the last known set."""
        if self.mode != "dns":
            return
        try:
            addresses = await resolve_a(self.dns_name, server, timeout)
        except (DnsError, OSError) as exc:
            if self.error is None:
                log.warning(
                    "DNS for %s failed, keeping %d known replicas: %s", self.host, len(self.replicas), exc
                )
            self.error = str(exc)
            return
        self.error = None
        if not addresses and self.replicas:
            now = time.monotonic()
            if self._empty_since is None:
                self._empty_since = now
                log.warning("DNS lists no pod for %s; keeping %d replicas for %.1fs unless it stays so",
                            self.host, len(self.replicas), EMPTY_GRACE_S)  # fmt: skip
            if now - self._empty_since < EMPTY_GRACE_S:
                return
        self._empty_since = None
        self.update(addresses)

    def close(self) -> None:
        """Close every replica's idle connections (the backend left the routes)."""
        for replica in self.replicas:
            replica.pool.close()


async def discover_all(sets: Iterable[ReplicaSet], server: tuple[str, int], timeout: float) -> None:
    """Refresh every ``dns`` replica set at once."""
    await asyncio.gather(*(s.discover(server, timeout) for s in sets if s.mode == "dns"))


class ReplicaCollector(Collector):
    """Per-replica series, read from the replica objects when Prometheus scrapes.

    Labels are bounded by the pods that exist: a replica that leaves takes its series with it.
    """

    def __init__(self, backends: Callable[[], Iterable[Backend]]) -> None:
        self._backends = backends

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """Yield the in-flight gauge and the choice counter of every replica."""
        inflight = GaugeMetricFamily(
            "gateway_replica_inflight_requests",
            "Requests in flight on one replica (pod IP:port) of a backend, from this gateway.",
            labels=["model", "backend", "replica"],
        )
        chosen = CounterMetricFamily(
            "gateway_replica_requests",
            "Requests sent to one replica, by how it was chosen: least-outstanding (or an opening turn "
            "placed by load), affinity (the "
            "conversation's replica) or spill (its replica was over the load bound).",
            labels=["model", "backend", "replica", "choice"],
        )
        for backend in self._backends():
            if backend.replicas is None:
                continue
            for replica in backend.replicas.replicas:
                labels = [backend.model, backend.name, replica.address]
                inflight.add_metric(labels, replica.inflight)
                for choice, count in replica.chosen.items():
                    chosen.add_metric([*labels, choice], count)
        yield inflight
        yield chosen
