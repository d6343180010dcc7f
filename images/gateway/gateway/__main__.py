"""Run the gateway: ``python -m gateway [--host H] [--port P | --fd N]`` (settings from GATEWAY_* env)."""

from __future__ import annotations

import argparse
import logging
import socket

import uvicorn

from gateway.app import create_app


def main(argv: list[str] | None = None) -> None:
    """Serve the gateway on uvicorn with uvloop and httptools (the fastest pair uvicorn has)."""
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--fd", type=int, default=None, help="serve on an already bound socket (tests)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = uvicorn.Config(
        create_app(),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        # One access-log line per request costs more than the proxying itself; metrics count requests.
        access_log=False,
        server_header=False,
        # Clients reach the pods through a Service; X-Forwarded-* rewriting would be wasted work.
        proxy_headers=False,
        log_level=args.log_level,
        timeout_keep_alive=75,
    )
    server = uvicorn.Server(config)
    # uvicorn's own --fd assumes a Unix socket; a socket made from the fd knows its family.
    server.run(sockets=[socket.socket(fileno=args.fd)] if args.fd is not None else None)


if __name__ == "__main__":
    main()
