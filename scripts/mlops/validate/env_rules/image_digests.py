"""MLOPS143: prod runs every third-party image by digest, or docs/dependencies.md lists it to pin.

A tag on a public registry moves (Docker Hub's official images are rebuilt under the same tag
whenever their base changes), and the pull-through cache re-imports a moved tag; only a
digest names one set of bytes. A digest can be read only from the registry, so an image not
pinned yet must be on the release step's list, `docs/dependencies.md` section "Digests to
pin" (a table whose first column is the upstream reference, e.g. `alpine/git:v2.47.2`, with
the command that reads its digest): anything else is a problem, never a silent skip.

What is checked: every container image of a rendered prod pod except this repository's own
(`mlops/*`, MLOPS023) and run-time templates, and every image block an upstream chart's
`apps/upstream/<chart>/values-prod.yaml` sets (a mapping with `repository`, optionally
`registry`, `tag`, `digest`). The charts' default images are not seen offline; the values
name each chart's images explicitly to route them through the cache (docs/dependencies.md).
So a prod values file that names no image at all is itself a problem (its chart's defaults
would run from a public registry by tag, unseen), unless docs/dependencies.md names the chart
under "Not routed yet" with the reason (nvcr.io has no cache rule).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from mlops.conventions.image_refs import upstream_of
from mlops.rendering import fast_yaml
from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects.problems import Problem
from mlops.validate.objects.violations import HINTS
from mlops.validate.objects.workloads import rendered_pods

ENVIRONMENTS = ("prod",)
DEPENDENCIES = "docs/dependencies.md"
SECTION = "### Digests to pin"
NOT_ROUTED = "Not routed yet"
CHART_VALUES = "apps/upstream/*/values-{env}.yaml"
_LISTED = re.compile(r"^\|\s*`([^`]+)`\s*\|")


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """Report prod third-party images without a digest that the release-step list does not name."""
    if env not in ENVIRONMENTS:
        return
    listed = documented(repo)
    for found in rendered_pods(rendered):
        for container in found.pod.containers:
            image = str(container.spec.get("image", ""))
            if _own_or_templated(image) or _pinned(image) or upstream_of(image) in listed:
                continue
            yield _problem(
                found.file,
                found.resource,
                found.field(*container.path[len(found.pod.path) :], "image"),
                image,
            )
    not_routed = _not_routed_text(repo)
    for path in sorted(repo.glob(CHART_VALUES.format(env=env))):
        yield from _chart_values(repo, path, listed, not_routed)


def documented(repo: Path) -> set[str]:
    """The upstream references the "Digests to pin" table of docs/dependencies.md lists."""
    path = repo / DEPENDENCIES
    if not path.is_file():
        return set()
    listed: set[str] = set()
    inside = False
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            inside = line.strip() == SECTION
            continue
        match = _LISTED.match(line) if inside else None
        if match:
            listed.add(match.group(1))
    return listed


def _not_routed_text(repo: Path) -> str:
    """The "Not routed yet" list of docs/dependencies.md: from that line to the next heading."""
    path = repo / DEPENDENCIES
    if not path.is_file():
        return ""
    text = path.read_text()
    start = text.find(f"\n{NOT_ROUTED}")
    if start < 0:
        return ""
    end = text.find("\n#", start + 1)
    return text[start : end if end >= 0 else len(text)]


def _chart_values(repo: Path, path: Path, listed: set[str], not_routed: str) -> Iterator[Problem]:
    try:
        values = fast_yaml.load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return  # MLOPS049 reports the file
    chart = path.parent.name
    blocks = list(_image_blocks(values, []))
    if not blocks and not re.search(rf"(?<![\w-]){re.escape(chart)}(?![\w-])", not_routed):
        yield Problem(
            str(path.relative_to(repo)),
            f"chart/{chart}",
            "image",
            f"prod runs the {chart} chart's default images: this file names no image block, so "
            f"they come from a public registry by tag, past the pull-through cache and the digest "
            f"list; set its image repositories to the cache, or name {chart} under "
            f'"{NOT_ROUTED}" in {DEPENDENCIES} with the reason',
            "MLOPS143",
            HINTS["MLOPS143"],
        )
    names = {entry.split("@")[0].rsplit(":", 1)[0] for entry in listed}
    for field, block in blocks:
        image = str(block["repository"])
        if block.get("registry"):
            image = f"{block['registry']}/{image}"
        if block.get("tag"):
            image = f"{image}:{block['tag']}"
        if block.get("digest"):
            image = f"{image}@{block['digest']}"
        upstream = upstream_of(image)
        # No tag here: the chart's default (its appVersion) applies, so the name decides.
        if _pinned(image) or upstream in listed or (not block.get("tag") and upstream in names):
            continue
        yield _problem(str(path.relative_to(repo)), f"chart/{chart}", f"{field}.repository", image)


def _image_blocks(node: Any, path: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every mapping with a `repository` string (a chart's image block), with its dotted path."""
    if isinstance(node, dict):
        if isinstance(node.get("repository"), str):
            yield ".".join(path), node
            return
        for key, value in node.items():
            yield from _image_blocks(value, [*path, str(key)])
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _image_blocks(value, [*path, str(index)])


def _own_or_templated(image: str) -> bool:
    if not image or "{{" in image or "$(" in image:
        return True
    host, _, rest = image.partition("/")
    return ".dkr.ecr." in host and rest.split("/", 1)[0] in ("mlops", "mlops-cache")


def _pinned(image: str) -> bool:
    return "@sha256:" in image


def _problem(file: str, resource: str, field: str, image: str) -> Problem:
    return Problem(
        file,
        resource,
        field,
        f"prod runs {image} by tag, and {DEPENDENCIES} ({SECTION.lstrip('# ')}) does not list "
        f"{upstream_of(image)}: a moved tag changes what prod runs",
        "MLOPS143",
        HINTS["MLOPS143"],
    )
