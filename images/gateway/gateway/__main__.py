"""Run the gateway: ``python -m gateway [--host H] [--port P | --fd N]`` (settings from GATEWAY_* env)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket

import uvloop

from gateway.app import create_app
from gateway.server import GatewayServer


async def _serve(sock: socket.socket) -> None:
    await GatewayServer(create_app(), asyncio.get_running_loop()).serve(sock)


def main(argv: list[str] | None = None) -> None:
    """Serve the gateway with its own HTTP server (``gateway.server``) on uvloop."""
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--fd", type=int, default=None, help="serve on an already bound socket (tests)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.create_server((args.host, args.port), backlog=2048, reuse_port=False)
    sock.setblocking(False)
    uvloop.run(_serve(sock))


if __name__ == "__main__":
    main()
