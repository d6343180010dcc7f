"""Which file, and which line of it, a problem about a rendered object is about.

kustomize says which file each object came from (its origin annotation, kept per document by
`mlops.rendering.build_cache`), but not which file set a field: a patch of the overlay may have. So the
field is looked up in the files a person would edit, the first that holds it winning:

1. the patch files of the kustomizations the folder's build reads (`patches[].path`, the
   deprecated `patchesStrategicMerge`) that patch this object: a strategic-merge patch naming
   its kind and name (after `namePrefix`, or the `target` of the entry), or a JSON6902 patch
   whose operation's `path` is the field;
2. the file the object came from.

Lists are followed by their merge key where the rendered item has a `name` (a patch's
`containers[0]` is not the rendered `containers[0]`). Where the field is in none of them, the
line is that of the deepest part of it the origin file has (the container, the document).
A file outside the kustomization folder is followed by the folder, `(overlays/dev/gateway)`:
one base serves several overlays.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from mlops.rendering import build_cache, fast_yaml
from mlops.rendering.render import RenderedKustomization
from mlops.validate.objects.problems import Problem, mapping

_FIELD_PART = re.compile(r'\.?([^.\[\]]+)|\[(\d+)\]|\["([^"]*)"\]|\[([^\]"]+)\]')
_KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_EMBEDDED = re.compile(r"^(.*) \(in (\S+) (\S+)\)$")


@dataclass(frozen=True)
class _Object:
    folder: str
    origin: str | None
    document: dict[str, Any]


def locate(repo: Path, rendered: Sequence[RenderedKustomization], problems: list[Problem]) -> list[Problem]:
    """Return `problems` with each problem about a rendered object naming its file and line.

    A problem whose file is not a rendered folder, or whose resource that folder did not
    render (a build failure, coverage, a repository-wide rule), is returned as it is.
    """
    index: dict[tuple[str, str], _Object] = {}
    for result in rendered:
        for doc, origin in zip(result.documents, result.origins, strict=False):
            if isinstance(doc, dict):
                index.setdefault((result.path, _resource(doc)), _Object(result.path, origin, doc))
    located = []
    for problem in problems:
        resource = problem.resource
        embedded = _EMBEDDED.match(resource)
        found = index.get((problem.file, embedded.group(2) if embedded else resource))
        if found is None or found.origin is None:
            located.append(_with_line(repo, problem))
            continue
        # An embedded manifest's field is inside a string of its parent: name that string's line.
        where = _where(repo, found, embedded.group(3) if embedded else problem.field)
        located.append(replace(problem, file=where))
    return located


def _resource(doc: dict[str, Any]) -> str:
    kind = doc.get("kind") or "(no kind)"
    meta = mapping(doc, "metadata")
    return f"{kind}/{meta.get('name') or meta.get('generateName') or '(no name)'}"


def _with_line(repo: Path, problem: Problem) -> Problem:
    """A problem that names a YAML file of the repository (a model's version file), with its field's line."""
    if not problem.file.endswith((".yaml", ".yml")) or not problem.field:
        return problem
    file = repo / problem.file
    if not file.is_file():
        return problem
    try:
        doc = fast_yaml.load(file.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return problem
    line = _line_in_origin(
        repo, problem.file, doc if isinstance(doc, dict) else {}, field_parts(problem.field)
    )
    return replace(problem, file=f"{problem.file}:{line}") if line else problem


def _where(repo: Path, found: _Object, field: str) -> str:
    parts = field_parts(field)
    generated = _generated(repo, found, parts)
    if generated is not None:
        return generated
    file, line = found.origin, None
    # A strategic-merge patch repeats the kind and name to say what it patches; it does not set them.
    identity = parts[:1] in (["kind"], ["apiVersion"]) or parts[:2] in (
        ["metadata", "name"],
        ["metadata", "namespace"],
    )
    for patch in [] if identity else _patches(repo, found.folder):
        hit = _line_in_patch(repo, patch, found.document, parts)
        if hit is not None:
            file, line = patch.file, hit
            break
    else:
        line = _line_in_origin(repo, str(found.origin), found.document, parts)
    shown = f"{file}:{line}" if line else str(file)
    if not str(file).startswith(found.folder + "/"):
        shown += f" ({found.folder})"
    return shown


@dataclass(frozen=True)
class Named:
    """A list item chosen by its `name` (`containers[vllm]`), as the rules that know it write it."""

    name: str


Part = str | int | Named


def _generated(repo: Path, found: _Object, parts: list[Part]) -> str | None:
    """For a ConfigMap/Secret a generator made from files, the file its `data[key]` came from.

    kustomize names the kustomization as the origin of a generated object; a field under
    `data[routes.yaml]` was written in the file `routes.yaml` (`files: [routes.yaml]` or
    `files: [key=path]`), whose line is looked up like any manifest's.
    """
    origin = str(found.origin)
    if Path(origin).name not in _KUSTOMIZATIONS or len(parts) < 2 or parts[0] not in ("data", "stringData"):
        return None
    try:
        kustomization = fast_yaml.load((repo / origin).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    name = str(mapping(found.document, "metadata").get("name", ""))
    data_key = parts[1].name if isinstance(parts[1], Named) else str(parts[1])
    for generator in ("configMapGenerator", "secretGenerator"):
        for entry in (kustomization if isinstance(kustomization, dict) else {}).get(generator) or []:
            if not isinstance(entry, dict) or str(entry.get("name")) not in name:
                continue
            for item in entry.get("files") or []:
                key, _, path = str(item).rpartition("=")
                if (key or Path(path).name) != data_key:
                    continue
                file = Path(origin).parent / path
                shown = str(file)
                try:
                    data = fast_yaml.load(str(mapping(found.document, str(parts[0])).get(data_key, "")))
                except yaml.YAMLError:
                    data = None
                line = _line_in_origin(repo, shown, data if isinstance(data, dict) else {}, parts[2:])
                where = f"{shown}:{line}" if line else shown
                return where if shown.startswith(found.folder + "/") else f"{where} ({found.folder})"
    return None


def field_parts(field: str) -> list[Part]:
    """`spec.containers[0].resources.limits["nvidia.com/gpu"]` as keys, indexes and named items."""
    parts: list[Part] = []
    if field in ("", "(document)"):
        return parts
    for match in _FIELD_PART.finditer(field):
        key, index, quoted, named = match.groups()
        if index is not None:
            parts.append(int(index))
        elif quoted is not None:
            parts.append(quoted)
        elif named is not None:
            parts.append(Named(named))
        else:
            parts.append(key)
    return parts


@dataclass(frozen=True)
class _Patch:
    file: str
    target: dict[str, Any]


def _patches(repo: Path, folder: str) -> list[_Patch]:
    """The patch files the build of `folder` reads, the folder's own first."""
    scope = build_cache.build_scope(repo / folder)
    if scope is None:
        return []
    found: list[_Patch] = []
    kustomizations = build_cache.kustomization_files(scope)
    own = (repo / folder).resolve()
    kustomizations.sort(key=lambda k: k.parent != own)
    for kustomization in kustomizations:
        found.extend(_patches_of(repo.resolve(), kustomization))
    return found


@functools.cache
def _patches_of(repo: Path, kustomization: Path) -> tuple[_Patch, ...]:
    try:
        data = fast_yaml.load(kustomization.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return ()
    if not isinstance(data, dict):
        return ()
    entries = [e for e in data.get("patches") or [] if isinstance(e, dict) and e.get("path")]
    entries += [{"path": p} for p in data.get("patchesStrategicMerge") or [] if isinstance(p, str)]
    patches = []
    for entry in reversed(entries):  # a later patch wins over an earlier one
        file = (kustomization.parent / str(entry["path"])).resolve()
        if file.is_file() and file.is_relative_to(repo):
            patches.append(_Patch(str(file.relative_to(repo)), mapping(entry, "target")))
    return tuple(patches)


@functools.cache
def _nodes(file: Path) -> tuple[yaml.Node, ...]:
    """The YAML documents of a file as nodes (they keep their lines); none if it does not parse."""
    try:
        return tuple(node for node in yaml.compose_all(file.read_text(), Loader=yaml.SafeLoader) if node)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return ()


def _line_in_patch(repo: Path, patch: _Patch, doc: dict[str, Any], parts: list[Part]) -> int | None:
    if not parts:
        return None
    for node in _nodes(repo / patch.file):
        if isinstance(node, yaml.SequenceNode):  # JSON6902: a list of operations
            if _names(patch.target, doc):
                hit = _json6902_line(node, parts)
                if hit is not None:
                    return hit
        elif isinstance(node, yaml.MappingNode) and _names(patch.target or _identity(node), doc):
            line, depth = _walk(node, doc, parts)
            if depth == len(parts):
                return line
    return None


def _line_in_origin(repo: Path, origin: str, doc: dict[str, Any], parts: list[Part]) -> int | None:
    nodes = [n for n in _nodes(repo / origin) if isinstance(n, yaml.MappingNode)]
    mine = [n for n in nodes if _names(_identity(n), doc)] or (nodes if len(nodes) == 1 else [])
    if not mine:
        return None
    line, depth = _walk(mine[0], doc, parts)
    return line if depth else _kind_line(mine[0])


def _identity(node: yaml.MappingNode) -> dict[str, Any]:
    kind = _child(node, "kind")
    name = _child(_child(node, "metadata"), "name")
    return {
        "kind": kind.value if isinstance(kind, yaml.ScalarNode) else None,
        "name": name.value if isinstance(name, yaml.ScalarNode) else None,
    }


def _names(target: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Whether a patch's target (or a source document's kind and name) is the rendered `doc`."""
    if not target or (target.get("kind") is None and target.get("name") is None):
        return False
    if target.get("kind") not in (None, doc.get("kind")):
        return False
    name, rendered = target.get("name"), str(mapping(doc, "metadata").get("name", ""))
    # namePrefix/nameSuffix: the rendered name holds the source's.
    return name is None or name == rendered or (bool(name) and str(name) in rendered)


def _child(node: Any, key: str) -> Any:
    return _entry(node, key)[1]


def _walk(node: yaml.Node, doc: Any, parts: list[Part]) -> tuple[int, int]:
    """Follow `parts` from a source node beside the rendered `doc`: the deepest part's line and depth."""
    depth, line = 0, node.start_mark.line + 1
    for part in parts:
        if isinstance(part, Named) and isinstance(doc, dict):
            part = part.name  # `data[routes.yaml]`: a key with a dot in it
        if isinstance(part, Named):
            items = doc if isinstance(doc, list) else []
            index = next((i for i, item in enumerate(items) if _name_of(item) == part.name), -1)
            if index < 0:
                break
            part = index
        if isinstance(part, int):
            if not isinstance(node, yaml.SequenceNode) or not isinstance(doc, list) or part >= len(doc):
                break
            child = _item(node, doc[part], part)
            at = child
            doc = doc[part]
        else:
            at, child = _entry(node, part)
            doc = doc.get(part) if isinstance(doc, dict) else None
        if child is None or at is None:
            break
        node, depth, line = child, depth + 1, at.start_mark.line + 1
    return line, depth


def _entry(node: Any, key: str) -> tuple[yaml.Node | None, yaml.Node | None]:
    """The key node (its line is the field's) and the value node of `key` in a mapping node."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k, v
    return None, None


def _name_of(item: Any) -> Any:
    return item.get("name") if isinstance(item, dict) else None


def _item(node: yaml.SequenceNode, rendered: Any, index: int) -> yaml.Node | None:
    """The source item of a rendered list item: by its `name` where it has one, else by position."""
    name = rendered.get("name") if isinstance(rendered, dict) else None
    if name is not None:
        for item in node.value:
            named = _child(item, "name")
            if isinstance(named, yaml.ScalarNode) and named.value == str(name):
                return item
        return None
    return node.value[index] if index < len(node.value) else None


def _json6902_line(node: yaml.SequenceNode, parts: list[Part]) -> int | None:
    wanted = [str(p) for p in parts]
    for op in node.value:
        path = _child(op, "path")
        if isinstance(path, yaml.ScalarNode):
            pointer = [p.replace("~1", "/").replace("~0", "~") for p in path.value.split("/")[1:]]
            if pointer == wanted[: len(pointer)] and pointer:
                return op.start_mark.line + 1
    return None


def _kind_line(node: yaml.MappingNode) -> int:
    kind = _child(node, "kind")
    return (kind or node).start_mark.line + 1
