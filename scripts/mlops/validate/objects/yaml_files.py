"""Every YAML file kustomize, Argo CD or Helm reads from this repository, read strictly.

| id       | rule                                                                         |
|----------|------------------------------------------------------------------------------|
| MLOPS048 | no mapping repeats a key (YAML loaders keep one value and drop the other)    |
| MLOPS049 | every YAML file is readable and parses (the file and line of the error)      |

kustomize (sigs.k8s.io/kustomize kyaml, on go-yaml v3) and PyYAML keep the last of two equal
keys without a word; Helm's values files and Argo CD's manifests are read the same way. A
repeated key is nearly always an edit that went to the wrong place: the first value is lost.
The check reads the node tree (`yaml.compose_all`), which keeps both keys and their lines.

Results are cached per file by size and mtime (`$MLOPS_CACHE_DIR/yaml-files/`), so a run
after a one-file change parses one file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from mlops.conventions.paths import cache_root
from mlops.rendering import fast_yaml
from mlops.rendering.build_cache import write_cache_file
from mlops.validate.objects.problems import Problem
from mlops.validate.objects.violations import HINTS

ROOTS = ("apps", "base", "clusters", "overlays")
"""The folders Argo CD's Applications, kustomize and the charts' values read YAML from."""

_CACHE_VERSION = 1


def yaml_files(repo: Path) -> Iterator[Path]:
    """Every `.yaml`/`.yml` file under ROOTS, hidden folders skipped, in a stable order."""
    for root in ROOTS:
        for folder, dirs, files in os.walk(repo / root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.endswith((".yaml", ".yml")):
                    yield Path(folder) / name


def check(repo: Path) -> list[Problem]:
    """Return a problem per repeated key and per file that does not read or parse."""
    # One cache file per checkout: test copies and benchmark repositories do not evict each other.
    digest = hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:16]
    cache_file = cache_root() / "yaml-files" / f"{digest}.json"
    use_cache = os.environ.get("MLOPS_BUILD_CACHE", "1") != "0"
    cache = _load_cache(cache_file) if use_cache else {}
    fresh: dict[str, Any] = {}
    problems: list[Problem] = []
    for path in yaml_files(repo):
        relative = str(path.relative_to(repo))
        try:
            stat = path.stat()
        except OSError as exc:
            problems.append(_unreadable(relative, exc))
            continue
        key = f"{stat.st_size}:{stat.st_mtime_ns}"
        entry = cache.get(relative)
        if entry is None or entry[0] != key:
            entry = [key, _file_findings(path)]
        fresh[relative] = entry
        problems.extend(_problem(relative, finding) for finding in entry[1])
    if use_cache and fresh != cache:
        _save_cache(cache_file, fresh)
    return problems


def _file_findings(path: Path) -> list[list[Any]]:
    """`[policy, line, field, message]` for each finding of one file (JSON-friendly, for the cache)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [["MLOPS049", 0, "", f"cannot be read: {exc}"]]
    try:
        nodes = list(yaml.compose_all(text, Loader=fast_yaml.Loader))
    except yaml.YAMLError as exc:
        return [["MLOPS049", *yaml_error_position(exc)]]
    findings: list[list[Any]] = []
    for node in nodes:
        if node is not None:
            findings.extend(_duplicates(node, []))
    return findings


def yaml_error_position(exc: yaml.YAMLError) -> tuple[int, str, str]:
    """Return (line, column text, message) of a YAML error without PyYAML's `<unicode string>` noise."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else 0
    column = f"column {mark.column + 1}" if mark is not None else ""
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    message = "; ".join(str(p) for p in parts if p) or str(exc).splitlines()[0]
    return line, column, f"not valid YAML: {message}"


def _duplicates(node: yaml.Node, path: list[str]) -> Iterator[list[Any]]:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key != "<<":
                line = key_node.start_mark.line + 1
                if key in seen:
                    yield [
                        "MLOPS048",
                        line,
                        ".".join([*path, key]),
                        f"duplicate key {key!r} (first at line {seen[key]}): "
                        "only one of the two values is kept",
                    ]
                else:
                    seen[key] = line
            yield from _duplicates(value_node, [*path, key or "?"])
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicates(item, [*path[:-1], f"{path[-1]}[{index}]"] if path else [f"[{index}]"])


def _problem(relative: str, finding: list[Any]) -> Problem:
    policy, line, where, message = finding
    file = f"{relative}:{line}" if line else relative
    return Problem(file, "(YAML)", where, message, policy, HINTS[policy])


def _unreadable(relative: str, exc: OSError) -> Problem:
    message = f"cannot be read: {exc.strerror or exc}"
    return Problem(relative, "(YAML)", "", message, "MLOPS049", HINTS["MLOPS049"])


def _load_cache(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def _save_cache(file: Path, files: dict[str, Any]) -> None:
    write_cache_file(file, json.dumps({"version": _CACHE_VERSION, "files": files}))
