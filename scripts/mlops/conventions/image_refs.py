"""Third-party image references and the ECR pull-through cache they come through (a leaf module).

terraform/modules/pull-through-cache creates one cache rule per public registry below; an
image `quay.io/x/y:1` is then pulled as `<account>.dkr.ecr.<region>.amazonaws.com/quay/x/y:1`.
"""

from __future__ import annotations

PULL_THROUGH_CACHE = {
    "docker.io": "docker-hub",
    "ghcr.io": "ghcr",
    "quay.io": "quay",
    "registry.k8s.io": "k8s",
    "public.ecr.aws": "ecr-public",
}
"""Public registry host -> repository prefix of its pull-through cache rule (the terraform module's)."""


def split_registry(image: str) -> tuple[str, str]:
    """Return (registry host, repository[:tag][@digest]) the way a container runtime reads a reference.

    A first path part without a dot, a colon or `localhost` is a Docker Hub repository, and a
    Docker Hub name without a slash is an official image under `library/`.
    """
    first, slash, rest = image.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        first, rest = "docker.io", image
    if first == "docker.io" and "/" not in rest.split("@")[0].split(":")[0]:
        rest = f"library/{rest}"
    return first, rest


def through_cache(registry: str, image: str) -> str:
    """Return `image` as pulled through `registry`'s pull-through cache.

    Args:
        registry: the ECR registry host of the environment's account.
        image: a reference on one of the public registries of PULL_THROUGH_CACHE.

    Raises:
        KeyError: the image's registry has no pull-through cache rule.
    """
    host, rest = split_registry(image)
    return f"{registry}/{PULL_THROUGH_CACHE[host]}/{rest}"


def cache_prefix(image: str) -> str | None:
    """Return the pull-through cache prefix an image comes through, or None when it does not.

    An image comes through the cache when its registry is a private ECR registry
    (`<account>.dkr.ecr.<region>.amazonaws.com`) and its first path part is a cache prefix.
    """
    host, _, rest = image.partition("/")
    if ".dkr.ecr." not in host or not host.endswith(".amazonaws.com"):
        return None
    prefix = rest.split("/", 1)[0]
    return prefix if prefix in PULL_THROUGH_CACHE.values() else None


def upstream_of(image: str) -> str:
    """Return the public reference an image pulled through the cache stands for (else the image).

    `<ecr>/docker-hub/vllm/vllm-openai:v1` -> `vllm/vllm-openai:v1`; `<ecr>/quay/x/y:1` -> `quay.io/x/y:1`.
    """
    prefix = cache_prefix(image)
    if prefix is None:
        return image
    host = next(h for h, p in PULL_THROUGH_CACHE.items() if p == prefix)
    rest = image.split("/", 2)[2]
    if host != "docker.io":
        return f"{host}/{rest}"
    return rest.removeprefix("library/")
