"""Several gateway processes on one port: one per CPU the pod may use (``--workers``).

One event loop is one core. Measured on a 2-core machine at 64 connections, a single process
is CPU-bound, and the core under it sometimes runs at a tenth of its speed for 10-25 ms
(another tenant of the host; the process stays on the CPU, so the kernel counts no wait).
Every request the process holds waits for the whole slow spell, and at 64 connections such
spells touch about 1 % of requests: the p99. With one process per core each spell holds up
only the connections of the process on the slow core.

The parent binds one ``SO_REUSEPORT`` socket per worker (the kernel spreads new connections
over them) and forks the workers before any event loop exists. It serves nothing itself: it
passes SIGTERM/SIGINT on, and if a worker dies it stops the others and exits 1, so the kubelet
restarts the pod whole instead of leaving it at part strength.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from gateway.shared_metrics import Peers

log = logging.getLogger("gateway.workers")

_PR_SET_PDEATHSIG = 1


def reuse_port_sockets(first: socket.socket, count: int) -> list[socket.socket]:
    """``first`` and ``count - 1`` more listening sockets on its address, in one SO_REUSEPORT group."""
    if not first.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
        raise ValueError("several workers need a socket bound with SO_REUSEPORT")
    address = first.getsockname()[:2]
    more = [
        socket.create_server(address, family=first.family, backlog=2048, reuse_port=True)
        for _ in range(count - 1)
    ]
    for sock in more:
        sock.setblocking(False)
    return [first, *more]


def _die_with_parent(parent: int) -> None:
    """Have the kernel SIGTERM this worker if the parent dies (a SIGKILLed parent forwards nothing)."""
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux only
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request above was in place
        raise SystemExit("the gateway's parent process is gone")


def run_workers(sockets: list[socket.socket], serve: Callable[[socket.socket, Peers], None]) -> int:
    """Fork one worker per socket, running ``serve(sock, peers)``; wait for them all.

    ``peers`` names the private folder the workers meet in (``gateway.shared_metrics``) and the
    worker's index. Returns the parent's exit status: 0 after a SIGTERM/SIGINT that every
    worker finished from, 1 when a worker died on its own or failed.
    """
    folder = Path(tempfile.mkdtemp(prefix="gateway-workers-"))
    children: dict[int, int] = {}
    parent = os.getpid()
    for index, sock in enumerate(sockets):
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                _die_with_parent(parent)
                for other in sockets:
                    if other is not sock:
                        other.close()
                serve(sock, Peers(folder, index, len(sockets)))
                status = 0
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                logging.shutdown()
                os._exit(status)
        children[pid] = index
    for sock in sockets:
        sock.close()

    stopping = False

    def stop_all(_signum: int = 0, _frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for child in list(children):
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    failed = False
    try:
        while children:
            pid, status = os.wait()
            if pid not in children:
                continue
            index = children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            # Dying on its own fails the pod, whatever the exit code; so does a failed drain.
            failed = failed or code != 0 or not stopping
            if not stopping:
                log.error("worker %d (pid %d) exited with %d: stopping the others", index, pid, code)
                stop_all()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed else 0
