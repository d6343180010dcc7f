"""MLOPS014: containers run as a user their image knows, or get what a user-less process needs.

Two ways a pod's `runAsUser` breaks a Python image at start:

- An image built here (`images/<name>/Dockerfile`) creates one user (`useradd --uid 10001`)
  and owns its home and files by it; a pod that runs it as another UID has no passwd entry,
  no home and no write access to what the image prepared. Such a pod must run as the UID
  of the Dockerfile's last `USER`.
- A third-party Python/torch image (vLLM, PyTorch) run as an arbitrary UID has no passwd
  entry for it. `getpass.getuser()` then falls through `LOGNAME`/`USER`/`LNAME`/`USERNAME`
  to `pwd.getpwuid()`, which raises KeyError (OSError from Python 3.13;
  https://docs.python.org/3/library/getpass.html#getpass.getuser). torch's Inductor cache
  calls it at import time, even with TORCHINDUCTOR_CACHE_DIR set (pytorch/pytorch#140765,
  vllm-project/vllm#44548 `KeyError: 'getpwuid(): uid not found'`, kserve/kserve#5666), so
  vLLM dies before it serves. Such a container needs `USER` and `HOME` in its env and every
  cache directory (XDG, Hugging Face, Triton, Inductor, vLLM's) on a writable mount,
  because the root filesystem is read-only (MLOPS005).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

from mlops.conventions.image_refs import upstream_of
from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects.pod_specs import Container
from mlops.validate.objects.problems import Problem
from mlops.validate.objects.violations import HINTS
from mlops.validate.objects.workloads import RenderedPod, rendered_pods

TORCH_IMAGES = {
    # image repository (without registry host for Docker Hub) -> cache variables it needs
    "vllm/vllm-openai": (
        "XDG_CACHE_HOME",
        "HF_HOME",
        "TRITON_CACHE_DIR",
        "TORCHINDUCTOR_CACHE_DIR",
        "VLLM_CACHE_ROOT",
    ),
    "pytorch/pytorch": ("XDG_CACHE_HOME", "HF_HOME", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR"),
    "nvcr.io/nvidia/pytorch": ("XDG_CACHE_HOME", "HF_HOME", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR"),
}
"""Third-party Python/torch images this rule knows, and the cache directories each one writes."""

_USER_LINE = re.compile(r"^\s*USER\s+(\S+)", re.M | re.I)
_USERADD = re.compile(r"useradd\b[^\n&;]*?--uid[ =](\d+)[^\n&;]*?\s([a-z_][a-z0-9_-]*)\s*(?:$|&&|;|\\)", re.M)


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """Report containers of `env` whose user the image does not know (see the module docstring)."""
    built = image_uids(repo)
    for found in rendered_pods(rendered):
        for container in found.pod.containers:
            image = str(container.spec.get("image", ""))
            repository = _repository(image)
            uid, where = _run_as_user(found, container)
            name = next(
                (n for n in built if repository == f"mlops/{n}" or repository.endswith(f"/mlops/{n}")), None
            )
            if name is not None:
                if uid is not None and uid != built[name]:
                    yield _problem(
                        found,
                        where,
                        f"runs images/{name} as UID {uid} but its Dockerfile creates and runs as UID "
                        f"{built[name]}: no passwd entry or home for {uid}, "
                        "and the image's files are not its own",
                    )
                continue
            needs = next((v for r, v in TORCH_IMAGES.items() if repository in (r, f"docker.io/{r}")), None)
            if needs is None or uid is None or uid == 0:
                continue
            missing = _missing_user_env(container, needs)
            if missing:
                yield _problem(
                    found,
                    found.field(*container.path[len(found.pod.path) :], "env"),
                    f"runs {repository} as UID {uid}, which has no passwd entry in the image, without "
                    f"{', '.join(missing)}: getpass.getuser() raises KeyError "
                    "and torch's caches are not writable",
                )


@cache
def image_uids(repo: Path) -> dict[str, int]:
    """images/<name> -> the numeric UID its Dockerfile's last `USER` runs as."""
    uids: dict[str, int] = {}
    for dockerfile in sorted((repo / "images").glob("*/Dockerfile")):
        text = dockerfile.read_text()
        users = _USER_LINE.findall(text)
        if not users:
            continue
        user = users[-1].split(":", 1)[0]
        if user.isdigit():
            uids[dockerfile.parent.name] = int(user)
        else:
            named = {n: int(u) for u, n in _USERADD.findall(text)}
            if user in named:
                uids[dockerfile.parent.name] = named[user]
    return uids


def _repository(image: str) -> str:
    # an image through the ECR pull-through cache is the upstream image it caches
    name = upstream_of(image).split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: name.rindex(":")]
    return name


def _run_as_user(found: RenderedPod, container: Container) -> tuple[int | None, str]:
    own = (container.spec.get("securityContext") or {}).get("runAsUser")
    if own is not None:
        return int(own), found.field(*container.path[len(found.pod.path) :], "securityContext", "runAsUser")
    pod_uid = found.pod.security_context.get("runAsUser")
    return (int(pod_uid) if pod_uid is not None else None), found.field("securityContext", "runAsUser")


def _missing_user_env(container: Container, caches: tuple[str, ...]) -> list[str]:
    env = {e.get("name"): e.get("value") for e in container.spec.get("env") or [] if isinstance(e, dict)}
    writable = [
        str(m.get("mountPath", "")).rstrip("/")
        for m in container.spec.get("volumeMounts") or []
        if isinstance(m, dict) and not m.get("readOnly")
    ]
    missing = [name for name in ("USER", "HOME") if not env.get(name)]
    for name in ("HOME", *caches):
        value = env.get(name)
        if name == "HOME" and not value:
            continue
        if not value:
            missing.append(name)
        elif not _under(str(value), writable):
            missing.append(f"{name} on a writable mount ({value} is not)")
    return missing


def _under(path: str, mounts: list[str]) -> bool:
    return any(path == m or path.startswith(m + "/") for m in mounts if m)


def _problem(found: RenderedPod, field: str, message: str) -> Problem:
    return Problem(found.file, found.resource, field, message, "MLOPS014", HINTS["MLOPS014"])
