"""Server processes on this machine: start one, wait until it answers, stop it with its children.

The demo, the canary demo, the tests and the benchmarks start gateways, fixed backends, vLLM,
MLflow and Prometheus through this module, so each gets the same behaviour: its own process
group (stopping it also stops the workers it forks: uvicorn's, vLLM's engine), its output in
a log file whose tail a failure quotes, and a readiness wait that notices an early exit::

    with running([sys.executable, "-m", "gateway", "--port", str(port)], url=url, log=log) as gateway:
        httpx.get(gateway.url + "/health")
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlops.conventions.errors import MlopsError

LOG_TAIL_CHARS = 3000
"""How much of a server's log an error quotes."""


class ServerError(MlopsError):
    """A local server exited early or did not become ready; the message quotes its log."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now (bind to port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalServer:
    """A running server: what to call it, its base URL, its process (leader of its group) and log.

    Attributes:
        name: how messages name it (`vLLM`, `gateway`).
        url: its base URL, `http://127.0.0.1:<port>`.
        process: the process; it leads its own process group.
        log: the file its stdout and stderr go to, or None when they are the caller's.
    """

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path | None = None

    def log_tail(self) -> str:
        """Return the end of its log (empty without a log file)."""
        if self.log is None or not self.log.is_file():
            return ""
        return self.log.read_text(errors="replace")[-LOG_TAIL_CHARS:]

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a node that vanishes would."""
        _signal_group(self.process, signal.SIGKILL)
        self.process.wait(30)

    def stop(self, grace_s: float = 20) -> None:
        """SIGTERM the group (servers shut their workers down), SIGKILL what is left after `grace_s`."""
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
        # the leader may be gone while a worker it forked lives on: the group goes too
        self.kill()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def start(
    argv: Sequence[str],
    *,
    url: str,
    name: str | None = None,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> LocalServer:
    """Start `argv` in its own process group and return at once (`wait_ready` waits for it).

    Args:
        argv: the command line.
        url: the base URL it will answer on.
        name: how messages name it (default: the program's file name).
        log: a file that receives its output (appended to); None leaves it on the caller's.
        env: variables set on top of this process's environment.
        pass_fds: file descriptors it inherits (a socket bound by the caller).
    """
    full_env = {**os.environ, **(env or {})}
    label = name or Path(argv[0]).name
    if log is None:
        process = subprocess.Popen(list(argv), env=full_env, pass_fds=pass_fds, start_new_session=True)
        return LocalServer(label, url, process)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        process = subprocess.Popen(
            list(argv),
            env=full_env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
            start_new_session=True,
        )
    return LocalServer(label, url, process, log)


def wait_ready(
    server: LocalServer,
    path: str = "/health",
    *,
    timeout: float = 120.0,
    interval: float = 0.1,
    error: type[MlopsError] = ServerError,
) -> None:
    """Wait until `server.url + path` answers 200; stop the server and raise `error` if it never does.

    Raises:
        MlopsError: `error`, when the server exits first or is not ready within `timeout` seconds;
            the message names the log and quotes its tail.
    """
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            server.stop()
            where = f"; log {server.log}:\n{server.log_tail()}" if server.log else ""
            raise error(f"{server.name} exited with {server.process.returncode} before answering{where}")
        try:
            if httpx.get(server.url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    server.stop()
    where = f"; log {server.log}:\n{server.log_tail()}" if server.log else ""
    raise error(f"{server.name} did not answer {path} within {timeout:.0f} s{where}")


@contextmanager
def running(
    argv: Sequence[str],
    *,
    url: str,
    ready_path: str = "/health",
    timeout: float = 120.0,
    name: str | None = None,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    error: type[MlopsError] = ServerError,
) -> Iterator[LocalServer]:
    """Start a server, wait until it is ready, yield it, and stop it whatever happened."""
    server = start(argv, url=url, name=name, log=log, env=env)
    try:
        wait_ready(server, ready_path, timeout=timeout, error=error)
        yield server
    finally:
        server.stop()
