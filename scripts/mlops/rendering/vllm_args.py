"""The vLLM command line of a rendered model Deployment, and the same command line for a CPU run here.

The model Deployments (base/models/vllm, one per model overlay) start vLLM with container args
that reference the container's env (`$(SERVE_MAX_MODEL_LEN)`); the kubelet expands them. This
module does the same expansion, so the demo and the tests start vLLM with the flags the cluster
would, and the args contract test hands exactly those to vLLM's own parser::

    from mlops.rendering.vllm_args import deployment_args, local_args, model_deployments
    for path, deployment in model_deployments(render_env(repo, "dev")):
        args = deployment_args(deployment)   # ["/models/weights", "--served-model-name", ...]
    argv = local_args(args, model_dir, port=8000)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mlops.conventions.errors import MlopsError
from mlops.rendering.render import RenderedKustomization

CONTAINER = "vllm"
"""The name of the vLLM container in base/models/vllm/deployment.yaml."""

GPU_ONLY_FLAGS = ("--gpu-memory-utilization", "--tensor-parallel-size")
"""Flags that size vLLM to the node's GPUs: left out of a CPU run (one process, no GPU memory)."""

_LISTEN_FLAGS = ("--host", "--port")
SECRET_FLAGS = ("--api-key",)
"""Flags whose value the cluster fills from a Secret: a local run passes the key as VLLM_API_KEY
instead, which vLLM reads as well (vllm entrypoints/serve/middleware/register.py), so it never
shows on a printed command line."""
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class VllmArgsError(MlopsError):
    """A model Deployment's vLLM container cannot be turned into a command line."""


def expand(value: str, env: dict[str, str]) -> str:
    """Expand `$(NAME)` the way the kubelet does: known names are replaced, `$$` is a literal `$`.

    An unknown `$(NAME)` stays as written (the kubelet leaves it too, and vLLM then sees the text).
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REFERENCE.sub(replace, value)


def vllm_container(deployment: dict[str, Any]) -> dict[str, Any]:
    """Return the container named `vllm` of a Deployment."""
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    for container in containers:
        if container.get("name") == CONTAINER:
            return dict(container)
    name = deployment.get("metadata", {}).get("name", "?")
    raise VllmArgsError(f"Deployment {name}: no container named {CONTAINER!r}")


def deployment_args(deployment: dict[str, Any]) -> list[str]:
    """Return the vLLM container's args with `$(VAR)` expanded from its literal env values, in order."""
    container = vllm_container(deployment)
    env: dict[str, str] = {}
    for variable in container.get("env", []):
        if "value" in variable:  # valueFrom (secrets, field refs) has no value in the manifest
            env[variable["name"]] = expand(str(variable["value"]), env)
    return [expand(str(arg), env) for arg in container.get("args", [])]


def model_deployments(rendered: Iterable[RenderedKustomization]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (folder, Deployment) for every rendered Deployment that runs a vLLM container."""
    for kustomization in rendered:
        for doc in kustomization.documents:
            if doc.get("kind") != "Deployment":
                continue
            containers = doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
            if any(c.get("name") == CONTAINER for c in containers):
                yield kustomization.path, doc


def _without(args: Sequence[str], flags: Sequence[str]) -> list[str]:
    """`args` without `flags`, whether written `--flag=value` or `--flag value`."""
    kept: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
            continue
        name = arg.split("=", 1)[0]
        if name in flags:
            skip_value = "=" not in arg
            continue
        kept.append(arg)
    return kept


def local_args(
    args: Sequence[str], model_dir: Path, *, host: str = "127.0.0.1", port: int = 8000
) -> list[str]:
    """Return a Deployment's vLLM args for a CPU run on this machine.

    The positional model path (the weights the init container copied) becomes `model_dir`,
    GPU sizing flags are dropped, `--api-key` too (its value comes from a Secret; pass the key
    as env `VLLM_API_KEY`), and vLLM listens on `host:port`; every other flag (served names,
    context length, prefix caching) is kept as the cluster passes it.

    Raises:
        VllmArgsError: the args do not start with the model path.
    """
    if not args or args[0].startswith("-"):
        raise VllmArgsError(
            "the vLLM container's args must start with the model path (`vllm serve MODEL`), "
            f"got {list(args)[:3]}"
        )
    rest = _without(args[1:], (*GPU_ONLY_FLAGS, *_LISTEN_FLAGS, *SECRET_FLAGS))
    return [str(model_dir), *rest, f"--host={host}", f"--port={port}"]
