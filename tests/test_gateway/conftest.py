"""Fixtures: fast fixed backends and gateways (the session's vLLM is in tests/conftest.py).

Every server is a real process on 127.0.0.1, on a socket the fixture binds to port 0 and
hands over by file descriptor, and is stopped when its fixture ends.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from mlops.local.local_servers import LocalServer, start, wait_ready

API_KEY = "test-key-1"
FIXED_BACKEND = [sys.executable, str(Path(__file__).resolve().parents[1] / "support" / "fixed_backend.py")]
GATEWAY = [sys.executable, "-m", "gateway"]


class Server(LocalServer):
    """A server process and its base URL (mlops.local.local_servers: `kill` is SIGKILL, as a crashed pod)."""


def _start(
    command: list[str],
    args: list[str],
    env: dict[str, str] | None = None,
    ready_path: str = "/health",
    port: int = 0,
    reuse_port: bool = False,
    host: str = "127.0.0.1",
) -> Server:
    """Start `command args` on a socket bound here (port 0: any) and handed over by descriptor.

    ``reuse_port`` binds it with SO_REUSEPORT, so that a gateway can add its other workers' sockets.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    port = sock.getsockname()[1]
    started = start(
        [*command, *args, "--fd", str(sock.fileno())],
        url=f"http://{host}:{port}",
        name=Path(command[-1]).stem,
        env=env,
        pass_fds=[sock.fileno()],
    )
    sock.close()
    server = Server(started.name, started.url, started.process)
    wait_ready(server, ready_path, timeout=90, interval=0.05)
    return server


@pytest.fixture
def fixed_backend() -> Iterator[Callable[..., Server]]:
    """Start fast fixed-answer backends: ``fixed_backend(version, delay_ms=0, port=0, error_rate=0)``.

    ``host``: another loopback address (127.0.0.2, ...), as each pod of a headless Service has its own IP.

    ``api_key``: the backend refuses ``/v1`` requests without exactly this bearer key (vLLM ``--api-key``).
    """
    started: list[Server] = []

    def start(
        version: str,
        delay_ms: float = 0.0,
        model: str = "support-chat",
        port: int = 0,
        error_rate: float = 0,
        api_key: str | None = None,
        host: str = "127.0.0.1",
    ) -> Server:
        server = _start(
            FIXED_BACKEND,
            ["--served-model-name", model, "--model-version", version, "--delay-ms", str(delay_ms),
             "--error-rate", str(error_rate), *(["--api-key", api_key] if api_key else [])],
            port=port,
            host=host,
        )  # fmt: skip
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@dataclass
class Gateway(Server):
    """A gateway process with its routes and keys files."""

    routes_file: Path = Path()
    keys_file: Path = Path()

    def write_routes(self, backends: dict[str, tuple[str, int]], model: str = "support-chat") -> None:
        write_routes(self.routes_file, {model: backends})

    def metrics(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=5).text


def write_routes(path: Path, models: dict[str, dict[str, tuple[str, int]]]) -> None:
    data = {
        "models": {
            model: {
                "backends": {name: {"url": url, "weight": weight} for name, (url, weight) in backends.items()}
            }
            for model, backends in models.items()
        }
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data))
    tmp.replace(path)  # atomic, like the kubelet's symlink swap


def _start_gateway(
    folder: Path,
    backends: dict[str, tuple[str, int]],
    max_body_bytes: int = 64 * 1024,
    read_timeout_s: float = 30,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> Gateway:
    """A gateway process routing `support-chat` to ``backends``, its files in ``folder``.

    ``workers`` > 1 runs that many worker processes on one SO_REUSEPORT port (``gateway.workers``);
    ``env``: more ``GATEWAY_*`` settings.
    """
    folder.mkdir(parents=True)
    routes, keys = folder / "routes.yaml", folder / "api-keys"
    write_routes(routes, {"support-chat": backends})
    keys.write_text(f"# test keys\n{API_KEY}\n")
    env = {
        "GATEWAY_ROUTES_FILE": str(routes),
        "GATEWAY_API_KEYS_FILE": str(keys),
        "GATEWAY_MAX_BODY_BYTES": str(max_body_bytes),
        "GATEWAY_RELOAD_INTERVAL_S": "0.2",
        "GATEWAY_VERSION_REFRESH_S": "0.5",
        "GATEWAY_CONNECT_TIMEOUT_S": "1",
        "GATEWAY_READ_TIMEOUT_S": str(read_timeout_s),
        **(env or {}),
    }
    args = ["--log-level", "warning", "--workers", str(workers)]
    server = _start(GATEWAY, args, env=env, reuse_port=workers > 1)
    return Gateway(server.name, server.url, server.process, routes_file=routes, keys_file=keys)


@pytest.fixture(scope="session")
def start_gateway() -> Callable[..., Gateway]:
    """``start_gateway(folder, backends)`` for fixtures wider than one test (the caller stops it)."""
    return _start_gateway


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Start gateways: ``gateway({"stable": (url, weight), ...}, **options)``.

    Options: ``max_body_bytes``, ``read_timeout_s``, ``workers``, ``env`` (more ``GATEWAY_*``).
    """
    started: list[Gateway] = []

    def start(backends: dict[str, tuple[str, int]], **options: object) -> Gateway:
        instance = _start_gateway(tmp_path / f"gateway-{len(started)}", backends, **options)  # type: ignore[arg-type]
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()
