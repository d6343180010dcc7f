"""Run the gateway: ``python -m gateway [--host H] [--port P | --fd N] [--workers N]``.

Settings come from GATEWAY_* variables; ``--workers`` defaults to ``$GATEWAY_WORKERS`` (the
Deployment sets it to the pod's CPU limit), else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys

import uvloop

from gateway.app import create_app
from gateway.server import GatewayServer
from gateway.shared_metrics import Peers
from gateway.workers import reuse_port_sockets, run_workers


def _serve(sock: socket.socket, peers: Peers | None = None) -> None:
    """Serve on ``sock`` until SIGTERM/SIGINT: the whole gateway, or one worker of several."""

    async def serve() -> None:
        await GatewayServer(create_app(peers=peers), asyncio.get_running_loop()).serve(sock)

    uvloop.run(serve())


def main(argv: list[str] | None = None) -> int:
    """Serve the gateway with its own HTTP server (``gateway.server``) on uvloop, in one or more processes."""
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--fd", type=int, default=None, help="serve on an already bound socket (tests)")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("GATEWAY_WORKERS") or 1),
        help="processes sharing the port, one per CPU (default: $GATEWAY_WORKERS, else 1)",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, not {args.workers}")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.create_server((args.host, args.port), backlog=2048, reuse_port=args.workers > 1)
    sock.setblocking(False)
    if args.workers == 1:
        _serve(sock)
        return 0
    try:
        sockets = reuse_port_sockets(sock, args.workers)
    except ValueError as exc:
        parser.error(str(exc))
    return run_workers(sockets, _serve)


if __name__ == "__main__":
    sys.exit(main())
