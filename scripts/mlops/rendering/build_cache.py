"""A content-addressed cache of kustomize builds: a folder is rebuilt only when a file it reads changed.

With a hundred models in two environments, `mlops validate` and `mlops diff` would run two
hundred kustomize processes on every pull request although a pull request touches one or two
folders. The cache key of a build is a hash of every file the build can read:

- every file below the kustomization's folder, and below every local folder it references
  (`resources`, `components`, bases), recursively through their own kustomizations;
- every file any of those kustomizations names in its other file-naming fields (patches'
  and replacements' `path`, generators' `files` (also `key=path`) and `envs`,
  `configurations`, `crds`, `openapi.path`, ...), the list kustomize's own types declare;
  a string anywhere else (a literal, an image) is data and changes nothing;
- the kustomize binary (path, size, mtime) and the folder's path relative to the repository.

Taking too much only costs a rebuild; taking too little could hide a change, so whatever the
key cannot see is never cached: a kustomization that names, in any file-naming field,
something that is not an existing local path (a URL, which kustomize fetches in a patch's
`path` as in `resources`; a git reference; a missing file), renders Helm charts, or runs
generator/transformer/validator plugins from a configuration is always built. Failed
builds are never stored, so an error is reported on every run. The folder's path relative to
the repository (not the absolute path) is in the key, so `mlops diff`'s export of a git ref
hits the entries the working tree made for unchanged folders.

Every build asks kustomize where each object came from (`kustomize.build_with_origins`);
the origin annotation is taken off each document before anything else sees it, and kept
beside the documents as the file's path relative to the repository (`Built.origins`), so a
problem can name the file rather than the folder.

Entries live under `$MLOPS_CACHE_DIR/builds/` (default `~/.cache/mlops`) as the parsed
documents in JSON, which load about ten times faster than the YAML parses (kustomize's output
is JSON inside, so it always fits; output that would not keeps its YAML). `MLOPS_BUILD_CACHE=0`
turns the cache off.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from mlops.conventions.paths import cache_root
from mlops.rendering import fast_yaml, kustomize

FORMAT = "3"
"""Bumped when what an entry holds changes, so old entries are never read."""

_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def enabled() -> bool:
    """Whether builds are cached (`MLOPS_BUILD_CACHE=0` turns it off)."""
    return os.environ.get("MLOPS_BUILD_CACHE", "1") != "0"


class Built(NamedTuple):
    """One kustomization's build: its documents, the file each came from, and its cache key."""

    documents: list[Any]
    origins: list[str | None]
    """Per document: the file it came from, relative to the repository (`repo@ref:path` for a
    remote base's, the kustomization for a generated one); None where kustomize did not say."""
    key: str | None
    """None when the build cannot be cached."""


def build(folder: Path, *, cwd: Path) -> Built:
    """Build `folder` and parse kustomize's output, from the cache when nothing the build reads changed.

    Args:
        folder: the kustomization folder.
        cwd: the repository root; keys and origins use paths relative to it.

    Raises:
        KustomizeError: the build failed (failures are never cached).
        yaml.YAMLError: kustomize's output is not YAML.
    """
    key = build_key(folder, cwd) if enabled() else None
    if key:
        cached = _read(key)
        if cached is not None:
            return Built(cached[0], cached[1], key)
    text, root = kustomize.build_with_origins(folder, cwd=cwd)
    documents = fast_yaml.load_documents(text)
    origins = [_take_origin(doc, root, cwd) for doc in documents]
    if key:
        _store(key, documents, origins)
    return Built(documents, origins, key)


def _take_origin(doc: Any, root: str, repo: Path) -> str | None:
    """Remove kustomize's origin annotation from `doc` and return the file it names, repo-relative.

    The annotation holds `path:` (relative to the wrapper kustomization), with `repo:` and
    `ref:` for a remote base, or `configuredIn:` for an object a generator made.
    """
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict) or kustomize.ORIGIN_ANNOTATION not in annotations:
        return None
    fields: dict[str, str] = {}
    for line in str(annotations.pop(kustomize.ORIGIN_ANNOTATION)).splitlines():
        name, _, value = line.partition(":")
        if value.strip() and not line.startswith(" "):
            fields[name.strip()] = value.strip().strip("'\"")
    if not annotations:
        del meta["annotations"]
    if "repo" in fields:
        return f"{fields['repo']}@{fields.get('ref', '')}:{fields.get('path', '')}"
    local = fields.get("path") or fields.get("configuredIn")
    if not local:
        return None
    return _shown(Path(os.path.normpath(os.path.join(root, local))), repo)


def _read(key: str) -> tuple[list[Any], list[str | None]] | None:
    try:
        entry = json.loads(_entry(key, ".json").read_bytes())
        return entry["documents"], entry["origins"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        header, _, text = _entry(key, ".yaml").read_text().partition("\n")
        origins = json.loads(header.removeprefix(_ORIGINS_HEADER))
        documents = fast_yaml.load_documents(text)
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return documents, origins


_ORIGINS_HEADER = "# origins: "


def _store(key: str, documents: list[Any], origins: list[str | None]) -> None:
    """Keep the documents as JSON when JSON holds them exactly, else as YAML.

    Loading JSON is about ten times faster than parsing the YAML again; dates or non-string
    keys do not survive JSON, so such a build keeps YAML, its origins on a first comment line.
    """
    try:
        data = json.dumps({"documents": documents, "origins": origins}, separators=(",", ":"))
        exact = json.loads(data)["documents"] == documents
    except (TypeError, ValueError):
        exact = False
    if exact:
        write_cache_file(_entry(key, ".json"), data)
    else:
        text = "".join("---\n" + fast_yaml.dump(doc) for doc in documents)
        write_cache_file(_entry(key, ".yaml"), f"{_ORIGINS_HEADER}{json.dumps(origins)}\n{text}")


def build_key(folder: Path, repo: Path) -> str | None:
    """Return the hash of everything the build of `folder` can read, or None when that is not knowable.

    Made of one digest per folder in the build's scope (`_folder_digest`, once per process: a
    hundred models share their bases) and the digests of the single files besides, so a key
    costs the folders and files of its own overlay, not every file of every base again.
    """
    scope = build_scope(folder)
    if scope is None:
        return None
    folders, files = scope
    shown = _shown(folder.resolve(), repo)
    digest = hashlib.sha256(f"{FORMAT}\0{_kustomize_identity()}\0{shown}\0".encode())
    for walked in folders:
        digest.update(f"{_shown(walked, repo)}/\0{_folder_digest(walked)}\0".encode())
    for file in files:
        digest.update(f"{_shown(file, repo)}\0{_file_digest(file)}\0".encode())
    return digest.hexdigest()


def _folder_digest(folder: Path) -> str:
    """sha256 over every file below `folder` (names relative to it, and contents).

    Kept per process while no file's size or mtime moved, so a base that a hundred overlays
    share is hashed once and then only stat'ed.
    """
    listed = _walk(folder)  # cached: build_scope walked it
    files = sorted(listed[0] if listed else ())
    stamps = []
    for file in files:
        st = file.stat()
        stamps.append((st.st_mtime_ns, st.st_size))
    known = _FOLDERS.get(folder)
    if known is not None and known[0] == stamps:
        return known[1]
    digest = hashlib.sha256()
    prefix = len(str(folder)) + 1
    for file in files:
        digest.update(f"{str(file)[prefix:]}\0{_file_digest(file)}\0".encode())
    _FOLDERS[folder] = (stamps, digest.hexdigest())
    return _FOLDERS[folder][1]


_FOLDERS: dict[Path, tuple[list[tuple[int, int]], str]] = {}


def build_scope(folder: Path) -> tuple[tuple[Path, ...], tuple[Path, ...]] | None:
    """What the build of `folder` can read: folders (every file below each) and single files besides.

    None when it reads something non-local (a remote base, a Helm chart, a missing folder).
    `mlops diff` uses it to skip folders that no changed path reaches.
    """
    files: set[Path] = set()
    seen: set[Path] = set()
    pending = [folder.resolve()]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        listed = _walk(current)
        if listed is None:
            return None
        for kustomization in listed[1]:
            refs = _references(kustomization)
            if refs is None:
                return None
            for ref in refs:
                if ref.is_dir():
                    pending.append(ref)
                else:
                    files.add(ref)
    return tuple(sorted(seen)), tuple(sorted(files))


def kustomization_files(scope: tuple[tuple[Path, ...], tuple[Path, ...]]) -> list[Path]:
    """The kustomization files of the folders of a `build_scope`."""
    return [k for folder in scope[0] for k in (_walk(folder) or ((), ()))[1]]


@functools.cache
def _walk(folder: Path) -> tuple[tuple[Path, ...], tuple[Path, ...]] | None:
    """Every file below `folder` and the kustomization files among them (one walk per process)."""
    if not folder.is_dir():
        return None
    files, kustomizations = [], []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            path = Path(root, name)
            files.append(path)
            if name in _KUSTOMIZATION_FILES:
                kustomizations.append(path)
    return tuple(files), tuple(kustomizations)


def _references(kustomization: Path) -> tuple[Path, ...] | None:
    """Local paths a kustomization file names; None when it names anything that is not a local path.

    kustomize fetches a URL (or a git repository) named in any file-naming field, not only in
    `resources`, and a missing file fails the build: either is never cached. The file is read
    on every call (an edit in a long-lived process is seen); only its parse is kept.
    """
    try:
        named = _named(kustomization.read_text())
    except (OSError, ValueError):  # unreadable, or not text
        return None  # kustomize reports it; a broken file is never cached
    if named is None:
        return None
    # Paths joined and normalised as strings, not resolved: a resolve is a system call per path
    # component. The folder itself was resolved (build_scope), so the result is absolute; a
    # symbolic link inside the repository only makes two names for one input, and the content
    # is hashed under each.
    base = str(kustomization.parent)
    refs: set[Path] = set()
    paths, plugins = named
    for entry in paths:
        local = _local(base, entry)
        if local is None:
            return None
        refs.add(Path(local))
    for entry in plugins:
        local = _local(base, entry)
        if local is None or not os.path.isdir(local):
            # A plugin's configuration (a file, or inline) names files in fields of its own
            # (a PatchTransformer's `path`) that this module does not read.
            return None
        refs.add(Path(local))
    return tuple(sorted(refs))


@functools.lru_cache(maxsize=4096)
def _named(text: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """What a kustomization's text names: paths, and plugin entries; None when it cannot be cached."""
    try:
        data = fast_yaml.load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict) or data.get("helmCharts") or data.get("helmChartInflationGenerator"):
        return None
    plugins = [entry for field in _PLUGIN_FIELDS for entry in _listed(data, field)]
    if not all(isinstance(entry, str) and "\n" not in entry for entry in plugins):
        return None  # an inline plugin configuration
    return tuple(_named_paths(data)), tuple(plugins)


# Every field of a kustomization that names a file or folder kustomize reads, after
# kubernetes-sigs/kustomize api/types (kustomization.go, patch.go, replacementfield.go,
# kvpairsources.go). kustomize refuses unknown fields, so a string anywhere else (a literal, an
# image, a replacement's fieldPath) is data, not something read.
_LIST_FIELDS = ("resources", "components", "bases", "crds", "configurations", "patchesStrategicMerge")
_PATH_LIST_FIELDS = ("patches", "patchesJson6902", "replacements")  # entries' `path`
_GENERATOR_FIELDS = ("configMapGenerator", "secretGenerator")  # entries' `files`, `envs`, `env`
_PLUGIN_FIELDS = ("generators", "transformers", "validators")


def _named_paths(data: dict[str, Any]) -> Iterator[str]:
    """The strings of `data`'s file-naming fields (an inline patch, with its newline, is skipped)."""
    named: list[Any] = []
    for field in _LIST_FIELDS:
        named += _listed(data, field)
    for field in _PATH_LIST_FIELDS:
        named += [entry.get("path") for entry in _listed(data, field) if isinstance(entry, dict)]
    for field in _GENERATOR_FIELDS:
        for entry in _listed(data, field):
            if isinstance(entry, dict):
                named += [_file_source(s) for s in _listed(entry, "files")]
                named += _listed(entry, "envs") + [entry.get("env")]
    openapi = data.get("openapi")
    if isinstance(openapi, dict):
        named.append(openapi.get("path"))
    for value in named:
        if value is not None and not (isinstance(value, str) and "\n" in value):
            yield str(value)


def _listed(data: dict[str, Any], field: str) -> list[Any]:
    value = data.get(field)
    return value if isinstance(value, list) else [] if value is None else [value]


def _file_source(source: Any) -> Any:
    """A generator's `files` entry `[key=]path`: its path (a URL holding `=` stays whole, then fails)."""
    if not isinstance(source, str) or "=" not in source or "://" in source:
        return source
    return source.split("=", 1)[1]


def _local(base: str, named: str) -> str | None:
    """`named` joined to the kustomization's folder if it exists; None for a URL, a git reference, a miss."""
    if not named or "\0" in named or len(named) > 4096:
        return None
    path = os.path.normpath(os.path.join(base, named))
    try:
        return path if os.path.exists(path) else None
    except (OSError, ValueError):
        return None


_DIGESTS: dict[tuple[Path, int, int], str] = {}
_DIGESTS_LOCK = threading.Lock()


def _file_digest(file: Path) -> str:
    """sha256 of a file's content, once per process for an unchanged file (bases are shared)."""
    st = file.stat()
    memo = (file, st.st_mtime_ns, st.st_size)
    with _DIGESTS_LOCK:
        known = _DIGESTS.get(memo)
    if known is None:
        known = hashlib.sha256(file.read_bytes()).hexdigest()
        with _DIGESTS_LOCK:
            _DIGESTS[memo] = known
    return known


@functools.cache
def _kustomize_identity() -> str:
    command = kustomize.kustomize_command()
    exe = shutil.which(command[0]) or command[0]
    st = Path(exe).stat()
    return f"{' '.join(command)}:{st.st_size}:{st.st_mtime_ns}"


def _shown(path: Path, repo: Path) -> str:
    """`path` (resolved already: every input comes from resolved folders) relative to `repo`."""
    text, root = str(path), _resolved(repo) + os.sep
    return text[len(root) :] if text.startswith(root) else text


@functools.lru_cache(maxsize=64)
def _resolved(repo: Path) -> str:
    return str(repo.resolve())


def _entry(key: str, suffix: str) -> Path:
    return cache_root() / "builds" / key[:2] / f"{key}{suffix}"


def write_cache_file(path: Path, text: str) -> None:
    """Write `text` to a cache file atomically; a read-only or full cache folder is ignored."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    except OSError:
        pass  # a read-only or full cache folder only costs the next run the work again
