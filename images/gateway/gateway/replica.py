"""One replica of a backend, as the balancer sees it: a pod's address, its in-flight count, its ejection.

A leaf with no third-party imports: `gateway.routes` (which `mlops validate` runs in a CLI-only
install) reads the ejection time and the pods' shape from here, `gateway.balancer` chooses among
replicas, `gateway.replicas` keeps them in step with DNS.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.upstream import BackendPool

# After a replica (or backend) refuses a connection, send it nothing for this long (unless it is
# the only choice left), so a dead pod costs one failed connect, not one per request.
EJECT_SECONDS = 2.0

# How a replica was chosen (the `choice` label of gateway_replica_requests_total).
LEAST = "least-outstanding"
AFFINITY = "affinity"
SPILL = "spill"
_CHOICES = (LEAST, AFFINITY, SPILL)


class Replica:
    """One pod (or, for a ``service`` backend, the Service) of a backend."""

    __slots__ = ("address", "pool", "token", "inflight", "ejected_until", "chosen")

    def __init__(self, address: str, pool: BackendPool) -> None:
        self.address = address
        self.pool = pool
        # Its rendezvous-hashing identity: the same in every gateway worker and pod.
        self.token = int.from_bytes(hashlib.blake2b(address.encode(), digest_size=8).digest(), "little")
        self.inflight = 0
        self.ejected_until = 0.0
        # Requests sent here, by how the replica was chosen (gateway_replica_requests_total):
        # plain integers on the hot path, read when Prometheus scrapes.
        self.chosen = dict.fromkeys(_CHOICES, 0)

    def eject(self, now: float) -> None:
        """Send it nothing new for a moment after it refused a connection."""
        self.ejected_until = now + EJECT_SECONDS


class ReplicaPods(Protocol):
    """What a backend's pods are to the balancer: its replicas now (``gateway.replicas.ReplicaSet``)."""

    replicas: list[Replica]
