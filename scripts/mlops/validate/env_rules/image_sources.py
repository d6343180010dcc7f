"""MLOPS140: prod's third-party images come through the ECR pull-through cache of its account.

A node that pulls straight from Docker Hub shares the anonymous limit of its NAT address
(10 pulls per hour per IP: https://docs.docker.com/docker-hub/usage/pulls/); an outage of
ghcr.io, quay.io or registry.k8s.io stops every pod that starts. terraform/modules/
pull-through-cache makes one cache rule per public registry of `mlops.conventions.image_refs.
PULL_THROUGH_CACHE` (AWS ECR user guide, "Sync an upstream registry with an Amazon ECR
private registry": https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html),
so prod names such an image `<prod registry>/<prefix>/<repository>` and ECR fetches it once.
An image whose registry is neither this environment's ECR (the platform's own mlops/*,
checked by MLOPS023) nor a cache prefix of it is a problem; so is a cached image from a
registry the cache has no rule for, which ECR cannot fetch.

Digests: MLOPS003 already requires prod images pinned by digest or a release tag; the
digests of the cached third-party images cannot be read offline and are listed to fill
in docs/dependencies.md ("Digests to pin").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from mlops.conventions.image_refs import PULL_THROUGH_CACHE, cache_prefix, split_registry, through_cache
from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects.problems import Problem
from mlops.validate.objects.violations import HINTS
from mlops.validate.objects.workloads import rendered_pods

ENVIRONMENTS = ("prod",)
"""Where the rule applies (dev routes the same way but may try an image from anywhere)."""


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """Report prod containers whose image a public registry serves directly (see the module docstring)."""
    if env not in ENVIRONMENTS:
        return
    for found in rendered_pods(rendered):
        for container in found.pod.containers:
            image = str(container.spec.get("image", ""))
            if not image or "{{" in image.split("/", 1)[0]:
                continue  # filled at run time by the workflow from its registry parameter
            host, _ = split_registry(image)
            if ".dkr.ecr." in host and host.endswith(".amazonaws.com"):
                prefix = image.split("/")[1]
                if cache_prefix(image) is None and prefix not in ("mlops", "mlops-cache"):
                    yield _problem(
                        found.file,
                        found.resource,
                        found.field(*container.path[len(found.pod.path) :], "image"),
                        f"{image} names ECR repository prefix {prefix}/, which is neither mlops/ nor "
                        f"a pull-through cache rule ({', '.join(sorted(PULL_THROUGH_CACHE.values()))})",
                    )
                continue
            if host not in PULL_THROUGH_CACHE:
                message = f"{image} comes straight from {host}, which has no pull-through cache rule"
            else:
                cached = through_cache("<prod registry>", image)
                message = f"{image} comes straight from {host}: pull it as {cached}"
            yield _problem(
                found.file,
                found.resource,
                found.field(*container.path[len(found.pod.path) :], "image"),
                message,
            )


def _problem(file: str, resource: str, field: str, message: str) -> Problem:
    return Problem(file, resource, field, message, "MLOPS140", HINTS["MLOPS140"])
