"""Index the upstream CRDs of a directory and turn their `openAPIV3Schema` into strict JSON Schemas.

Loading the CRD files is slow (the Argo Workflows ones are 11 MB), so the derived schemas are
cached on disk under `~/.cache/mlops/crd-schemas/<hash>/` (`$MLOPS_CACHE_DIR` overrides the
root), one folder per CRD file keyed by its path, size and mtime and this converter's version.
A run reads small indexes and, lazily, the schemas of the kinds the manifests use; a file
without a cache is parsed only when one of its kinds is used.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.conventions.errors import MlopsError
from mlops.conventions.paths import cache_root
from mlops.rendering import fast_yaml

CONVERTER_VERSION = "5"

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)"
    r"|(\.[0-9]+))))?$"
)
"""The pattern controller-gen writes for every `resource.Quantity` field of a CRD."""
"""Bump when `strict_schema` changes so that cached schemas are rebuilt."""

DOC_KEYS = ("description", "example", "externalDocs")
"""Keys that only document a schema: dropped from the cache and from the packaged schemas."""

_SUFFIXES = (".yaml", ".yml", ".json")
"""CRD files: upstream YAML, or the compact JSON that ships with the CLI (schema_checks.packaged_crds)."""


class CrdDirError(MlopsError):
    """The CRD directory is missing or holds no CRDs."""


@dataclass(frozen=True)
class CrdSchema:
    """The strict JSON Schema of one group/kind/version and where it came from."""

    group: str
    kind: str
    version: str
    source: str
    schema: dict[str, Any]


def crd_files(crds_dir: Path) -> list[Path]:
    """Return every YAML or JSON file below `crds_dir`, sorted.

    Raises:
        CrdDirError: the directory does not exist or has no YAML file.
    """
    if not crds_dir.is_dir():
        raise CrdDirError(
            f"CRD directory {crds_dir} does not exist: pass --crds DIR or set $MLOPS_CRDS_DIR to a "
            "folder of upstream CRDs at the pinned versions (see docs/validation.md)"
        )
    files = sorted(p for p in crds_dir.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
    if not files:
        raise CrdDirError(
            f"CRD directory {crds_dir} holds no *.yaml or *.json file: fetch the upstream CRDs into it"
        )
    return files


class CrdIndex:
    """The strict schemas of every CRD in a directory, indexed by (group, kind, version).

    Each CRD file has its own cache folder, keyed by the file's path, size and modification
    time (like make; hashing 15 MB of YAML on every run would cost more than the lookup).
    A file with no cache yet is only scanned for its group and kind; it is parsed the first
    time a manifest needs one of its kinds, so a cold run parses only the CRDs in use.
    """

    def __init__(self, crds_dir: Path, *, use_cache: bool = True) -> None:
        """Index `crds_dir` from the per-file caches, scanning the files that have none."""
        self.crds_dir = crds_dir
        self.use_cache = use_cache
        self._schemas: dict[tuple[str, str, str], CrdSchema] = {}
        self._entries: dict[tuple[str, str, str], dict[str, str]] = {}
        self._pending: dict[tuple[str, str], Path] = {}  # (group, kind) -> file not parsed yet
        for file in crd_files(crds_dir):
            index_file = self._cache_dir(file) / "index.json"
            if use_cache and index_file.is_file():
                for entry in json.loads(index_file.read_text()):
                    self._entries[(entry["group"], entry["kind"], entry["version"])] = entry
                continue
            found = _scan(file)
            if found:
                self._pending.update(dict.fromkeys(found, file))
            else:  # not laid out as usual: parse it now rather than guess
                self._load(file)

    def _cache_dir(self, file: Path) -> Path:
        stat = file.stat()
        key = f"{CONVERTER_VERSION}\0{file.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
        return cache_root() / "crd-schemas" / hashlib.sha256(key.encode()).hexdigest()[:24]

    def _load(self, file: Path) -> None:
        """Parse one CRD file, derive its strict schemas and cache them."""
        with file.open("rb") as stream:
            if file.suffix == ".json":  # a list of CRDs: the packaged schemas
                loaded = json.load(stream)
                docs = loaded if isinstance(loaded, list) else [loaded]
            else:
                docs = fast_yaml.load_documents(stream)
        cache_dir = self._cache_dir(file)
        entries = []
        for crd in docs:
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            self._pending.pop((spec["group"], spec["names"]["kind"]), None)
            for version in spec.get("versions", []):
                raw = (version.get("schema") or {}).get("openAPIV3Schema")
                if raw is None:
                    continue
                item = CrdSchema(
                    group=spec["group"],
                    kind=spec["names"]["kind"],
                    version=version["name"],
                    source=str(file.relative_to(self.crds_dir)),
                    schema=strict_schema(raw),
                )
                key = (item.group, item.kind, item.version)
                self._schemas[key] = item
                entry = {
                    "group": item.group,
                    "kind": item.kind,
                    "version": item.version,
                    "source": item.source,
                    "file": str(cache_dir / f"{item.group}_{item.kind}_{item.version}.json"),
                }
                self._entries[key] = entry
                entries.append(entry)
        for group_kind, pending in list(self._pending.items()):  # the scan promised a kind the file lacks
            if pending == file:
                del self._pending[group_kind]
        if self.use_cache:
            self._write_cache(cache_dir, entries)

    def _write_cache(self, cache_dir: Path, entries: list[dict[str, str]]) -> None:
        """Write schemas, then the index last, each atomically, so a reader never sees half a cache."""
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            for entry in entries:
                key = (entry["group"], entry["kind"], entry["version"])
                _atomic_write(Path(entry["file"]), json.dumps(self._schemas[key].schema))
            _atomic_write(cache_dir / "index.json", json.dumps(entries))
        except OSError:
            pass  # a read-only home only costs speed: the next run parses the CRDs again

    def _resolve(self, group: str, kind: str) -> None:
        if (group, kind) in self._pending:
            self._load(self._pending[(group, kind)])

    def groups(self) -> set[str]:
        """Return every API group that has a CRD."""
        return {group for group, _, _ in self._entries} | {group for group, _ in self._pending}

    def has_group(self, group: str) -> bool:
        """Whether any CRD serves `group`."""
        return group in self.groups()

    def versions(self, group: str, kind: str) -> list[str]:
        """Return the versions the CRDs define for `group`/`kind`."""
        self._resolve(group, kind)
        return sorted(v for g, k, v in self._entries if g == group and k == kind)

    def get(self, group: str, kind: str, version: str) -> CrdSchema | None:
        """Return the strict schema of `group`/`kind`/`version`, loading it on first use."""
        self._resolve(group, kind)
        key = (group, kind, version)
        if key in self._schemas:
            return self._schemas[key]
        entry = self._entries.get(key)
        if entry is None:
            return None
        try:
            schema = json.loads(Path(entry["file"]).read_text())
        except (OSError, ValueError):  # the cache lost a file: parse the CRD again
            self._load(self.crds_dir / entry["source"])
            return self._schemas.get(key)
        item = CrdSchema(group, kind, version, entry["source"], schema)
        self._schemas[key] = item
        return item


_SCAN_GROUP = re.compile(r"^  group: ['\"]?([\w.-]+)", re.M)
_SCAN_KIND = re.compile(r"^  names:\n(?:    .*\n)*?    kind: ['\"]?(\w+)", re.M)
_SCAN_SPLIT = re.compile(r"^---\s*$", re.M)


def _scan(file: Path) -> list[tuple[str, str]]:
    """Find (group, kind) of each CRD in a file without parsing it (controller-gen layout)."""
    if file.suffix == ".json":  # compact JSON parses fast: load it at once rather than scan it
        return []
    found = []
    for chunk in _SCAN_SPLIT.split(file.read_text()):
        if "kind: CustomResourceDefinition" not in chunk:
            continue
        group, kind = _SCAN_GROUP.search(chunk), _SCAN_KIND.search(chunk)
        if not group or not kind:
            return []
        found.append((group.group(1), kind.group(1)))
    return found


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as stream:
        stream.write(text)
    os.replace(tmp, path)


def strict_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """Return a Draft 4 JSON Schema that rejects what a strict Kubernetes API server rejects.

    - An object with `properties` gets `additionalProperties: false` (unknown fields are
      errors), unless it has `x-kubernetes-preserve-unknown-fields: true`.
    - `x-kubernetes-int-or-string: true` admits an integer or a string.
    - `nullable: true` admits null.
    - `x-kubernetes-embedded-resource: true` admits `apiVersion`, `kind` and `metadata` even
      when the embedded object lists other properties.
    - Draft 4 is used because OpenAPI 3.0 shares its boolean `exclusiveMinimum`/`Maximum`.
    The `x-kubernetes-validations` (CEL) rules are kept for `mlops.validate.schema_checks.cel`.
    """
    return _convert(copy.deepcopy(openapi), top=True)


def _convert(node: Any, *, top: bool = False) -> Any:
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    for key in DOC_KEYS:
        node.pop(key, None)
    for key in ("properties", "patternProperties", "definitions"):
        if isinstance(node.get(key), dict):
            node[key] = {name: _convert(sub) for name, sub in node[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict | list):
            node[key] = _convert(node[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            node[key] = [_convert(sub) for sub in node[key]]

    if node.get("format") == "quantity" or (
        node.get("x-kubernetes-int-or-string") and node.get("pattern") == QUANTITY_PATTERN
    ):
        # A resource.Quantity field: judged by the API server's grammar, so that a NodePool's
        # `memory: 6GB` reads as a core container's would (MLOPS040), not as a raw pattern.
        node.pop("pattern", None)
        node["format"] = "quantity"
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
        node["type"] = ["integer", "string"]
        # The anyOf that upstream adds says the same thing; dropping it keeps error messages short.
        node.pop("anyOf", None)
    if node.get("x-kubernetes-embedded-resource"):
        props = node.setdefault("properties", {}) if "properties" in node else None
        if props is not None:
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            props.setdefault("metadata", {"type": "object"})
    if (
        "properties" in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in node
    ):
        node["additionalProperties"] = False
    if top and "properties" in node:
        # The API server handles these itself; a CRD schema may omit them.
        for name in ("apiVersion", "kind"):
            node["properties"].setdefault(name, {"type": "string"})
        node["properties"].setdefault("metadata", {"type": "object"})
    if node.get("nullable"):
        kind = node.get("type")
        if isinstance(kind, str):
            node["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            node["type"] = [*kind, "null"]
        if isinstance(node.get("enum"), list) and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
    return node
