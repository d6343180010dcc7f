"""Pin an environment's platform images by digest: rewrite the `images:` entries of its overlays.

The images workflow pushes a release `vX.Y.Z` as `mlops/<image>:X.Y.Z` and, on that tag,
runs `mlops images pin` with the digests it pushed, proposing the change as a pull request.
Each kustomize `images:` entry named `mlops/<image>` under overlays/ENV gets `newTag: X.Y.Z`
and `digest: sha256:...`; kustomize v5 then renders `<registry>/mlops/<image>:X.Y.Z@sha256:...`,
which the kubelet pulls by digest (the tag stays for people reading it). Edits go through
ruamel.yaml's round-trip mode, so comments and key order stay; every entry is checked and
every new file text built before the first write, so bad input changes nothing.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from mlops.conventions.errors import MlopsError, shown
from mlops.validate.env_rules.delivery import IMAGES_WORKFLOW, built_images

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
RELEASE = re.compile(r"^\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class Pin:
    """One `images:` entry rewritten: where it is and what it names now."""

    path: str
    image: str
    old: str
    new: str


def parse_pins(pairs: Iterable[str], lines: Iterable[str] = ()) -> dict[str, str]:
    """Return image -> digest from `IMAGE=DIGEST` arguments and `IMAGE DIGEST` lines (`#` comments).

    Raises:
        MlopsError: a malformed pair or digest, or one image given two digests.
    """
    entries: list[tuple[str, str]] = []
    for pair in pairs:
        image, sep, digest = pair.partition("=")
        if not sep:
            raise MlopsError(f"{shown(pair)} is not IMAGE=sha256:<64 hex>")
        entries.append((image.strip(), digest.strip()))
    for number, line in enumerate(lines, start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 2:
            raise MlopsError(
                f"digest list line {number}: {shown(line.rstrip())} is not 'IMAGE sha256:<64 hex>'"
            )
        entries.append((words[0], words[1]))
    pins: dict[str, str] = {}
    for image, digest in entries:
        if not DIGEST.match(digest):
            raise MlopsError(f"image {shown(image)}: digest {shown(digest)} is not sha256:<64 lowercase hex>")
        if pins.get(image, digest) != digest:
            raise MlopsError(f"image {shown(image)} is given two digests: {pins[image]} and {digest}")
        pins[image] = digest
    if not pins:
        raise MlopsError("no digests given: pass IMAGE=sha256:... or --digests FILE")
    return pins


def pin_images(repo: Path, env: str, release: str, pins: Mapping[str, str]) -> tuple[list[Pin], list[str]]:
    """Rewrite overlays/ENV's `images:` entries of the pinned images; return the pins and unused images.

    An image the images workflow builds but no overlay of ENV names (trainer: prod runs it by
    commit from a workflow) is returned as unused, not an error: the workflow passes every
    image it pushed.

    Raises:
        MlopsError: a release that is not X.Y.Z, an image the images workflow does not build,
            or an overlay that does not parse; no file is written then.
    """
    if not RELEASE.match(release):
        raise MlopsError(f"release {shown(release)} is not X.Y.Z (the tag vX.Y.Z without its v)")
    built = built_images(repo)
    unknown = sorted(set(pins) - built)
    if unknown:
        known = ", ".join(sorted(built))
        raise MlopsError(f"{IMAGES_WORKFLOW} builds no mlops/{unknown[0]} (it builds {known}); no change")
    overlays = repo / "overlays" / env
    changed: dict[Path, str] = {}
    done: list[Pin] = []
    for path in sorted(overlays.rglob("kustomization.yaml")):
        text, file_pins = _pinned_text(path, release, pins)
        rel = str(path.relative_to(repo))
        done.extend(Pin(rel, image, old, new) for image, old, new in file_pins)
        if text is not None:
            changed[path] = text
    for path, text in changed.items():
        path.write_text(text)
    return done, sorted(set(pins) - {pin.image for pin in done})


def _pinned_text(
    path: Path, release: str, pins: Mapping[str, str]
) -> tuple[str | None, list[tuple[str, str, str]]]:
    """Return the file's new text (None when unchanged) and (image, old, new) per rewritten entry."""
    yaml = _yaml()
    try:
        data = yaml.load(path.read_text())
    except YAMLError as exc:
        raise MlopsError(f"{path}: not YAML ({exc.__class__.__name__}); nothing changed") from exc
    entries = data.get("images") if isinstance(data, CommentedMap) else None
    found: list[tuple[str, str, str]] = []
    for entry in entries or []:
        name = str(entry.get("name", "")) if isinstance(entry, CommentedMap) else ""
        image = name.removeprefix("mlops/")
        if image == name or image not in pins:
            continue
        old = (
            f"{entry.get('newTag', '')}@{entry['digest']}"
            if "digest" in entry
            else str(entry.get("newTag", ""))
        )
        _set_after(entry, "newTag", release, after="newName")
        _set_after(entry, "digest", pins[image], after="newTag")
        found.append((image, old, f"{release}@{pins[image]}"))
    if not found:
        return None, []
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue(), found


def _set_after(entry: CommentedMap, key: str, value: str, *, after: str) -> None:
    if key in entry:
        entry[key] = value
        return
    keys = list(entry.keys())
    entry.insert(keys.index(after) + 1 if after in keys else len(keys), key, value)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml
