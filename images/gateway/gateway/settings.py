"""Gateway settings, read once from the environment (the Deployment sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """What the gateway reads, where, and how long it waits."""

    routes_file: Path = Path("/etc/gateway/routes/routes.yaml")
    # None turns authentication off (local demo only; the Deployment always mounts keys).
    api_keys_file: Path | None = Path("/etc/gateway/api-keys/keys")
    # The key the gateway sends to the backends (vLLM --api-key); None sends none.
    backend_api_key_file: Path | None = None
    max_body_bytes: int = 1024 * 1024
    connect_timeout_s: float = 2.0
    # Between bytes, not for the whole answer: a long generation streams for minutes.
    read_timeout_s: float = 120.0
    reload_interval_s: float = 2.0
    version_refresh_s: float = 15.0
    # A connection must deliver a request's complete headers within this long (slowloris).
    header_timeout_s: float = 5.0
    # Request line plus headers, at most (larger: 431); nginx's default buffers hold 4 x 8 KiB.
    max_header_bytes: int = 16 * 1024
    # Open client connections per worker process; one more is answered 503 and closed.
    max_connections: int = 4096
    # `routing.replicas: dns` backends: the DNS server asked ("host[:port]"; empty: resolv.conf's
    # first nameserver) and how often. Each ask costs one UDP packet per backend, and a TCP
    # connection when the answer is truncated (more pods than a UDP answer holds).
    dns_server: str = ""
    discovery_interval_s: float = 1.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Settings from ``GATEWAY_*`` variables, defaults for the rest."""
        env = os.environ if environ is None else environ
        keys = env.get("GATEWAY_API_KEYS_FILE", str(cls.api_keys_file))
        backend_key = env.get("GATEWAY_BACKEND_API_KEY_FILE", "")
        return cls(
            routes_file=Path(env.get("GATEWAY_ROUTES_FILE", str(cls.routes_file))),
            api_keys_file=Path(keys) if keys else None,
            backend_api_key_file=Path(backend_key) if backend_key else None,
            max_body_bytes=int(env.get("GATEWAY_MAX_BODY_BYTES", cls.max_body_bytes)),
            connect_timeout_s=float(env.get("GATEWAY_CONNECT_TIMEOUT_S", cls.connect_timeout_s)),
            read_timeout_s=float(env.get("GATEWAY_READ_TIMEOUT_S", cls.read_timeout_s)),
            reload_interval_s=float(env.get("GATEWAY_RELOAD_INTERVAL_S", cls.reload_interval_s)),
            version_refresh_s=float(env.get("GATEWAY_VERSION_REFRESH_S", cls.version_refresh_s)),
            header_timeout_s=float(env.get("GATEWAY_HEADER_TIMEOUT_S", cls.header_timeout_s)),
            max_header_bytes=int(env.get("GATEWAY_MAX_HEADER_BYTES", cls.max_header_bytes)),
            max_connections=int(env.get("GATEWAY_MAX_CONNECTIONS", cls.max_connections)),
            dns_server=env.get("GATEWAY_DNS_SERVER", cls.dns_server),
            discovery_interval_s=float(env.get("GATEWAY_DISCOVERY_INTERVAL_S", cls.discovery_interval_s)),
        )
