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
    address = first.getsockname()
    sockets = [first]
    for _ in range(count - 1):
        sock = socket.socket(first.family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


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

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in list(children):
            _kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = False
    try:
        while children:
            pid, status = os.wait()
            if pid not in children:
                continue
            index = children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if not stopping:
                log.error("worker %d (pid %d) exited with %d: stopping the others", index, pid, code)
                failed = stopping = True
                for child in list(children):
                    _kill(child, signal.SIGTERM)
            elif code != 0:
                failed = True
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed else 0


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
