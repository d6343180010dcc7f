"""Schema-check results kept across runs, keyed by document content and everything the check reads.

A pull request that touches one model changes a few documents; the other models' documents
are byte for byte what the last run checked. With builds cached (`mlops.rendering.build_cache`) the
schema checks of those unchanged documents were what still grew with the number of models,
so their results are kept too: one JSON file under `$MLOPS_CACHE_DIR/schema-results/`, named
by a fingerprint of what a result depends on (the validation code, the CRD files, the
Kubernetes schema version, and the versions of Python and of every distribution whose code or
data decides a result, `schema_checks.deciders`: kubernetes-validate's packaged schemas,
referencing, jsonschema, cel-python and its parser). Any change to those starts a new file.
Policies and the environment-wide checks are never cached: they run on every document, every
time. `MLOPS_BUILD_CACHE=0` turns this cache off too.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from mlops.rendering.build_cache import enabled
from mlops.validate.schema_checks import deciders
from mlops.validate.schema_checks.crds import cache_root, crd_files
from mlops.validate.schema_checks.schemas import SchemaResult

# Past this many entries a file keeps only what the last run used (a bound on its size).
_MAX_ENTRIES = 50_000


def _fingerprint(crds_dir: Path, kubernetes_version: str) -> str:
    digest = hashlib.sha256()
    # every module of mlops.validate, in all its rooms: a change to any may change a result
    code = sorted(Path(__file__).resolve().parents[1].rglob("*.py"))
    for file in code:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    for file in crd_files(crds_dir):
        stat = file.stat()
        digest.update(f"{file.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    distributions = deciders.SCHEMA_DISTRIBUTIONS + deciders.CEL_DISTRIBUTIONS
    digest.update(f"{kubernetes_version}\0{deciders.versions(distributions)}".encode())
    return digest.hexdigest()[:24]


class SchemaResultCache:
    """Results of `Schemas.check` by document key, loaded at the start of a run, saved at its end."""

    def __init__(self, crds_dir: Path, kubernetes_version: str) -> None:
        """Open the result file of the current fingerprint (none when the cache is off)."""
        self.path: Path | None = None
        # key -> [[[field, message], ...], {CEL rule: count}]
        self._stored: dict[str, list[Any]] = {}
        self._used: dict[str, list[Any]] = {}
        self._new = False
        if not enabled():
            return
        self.path = cache_root() / "schema-results" / f"{_fingerprint(crds_dir, kubernetes_version)}.json"
        try:
            self._stored = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self._stored = {}

    @staticmethod
    def key(document_key: str) -> str:
        """The stored key of a document (a hash: the file holds no manifests)."""
        return hashlib.sha256(document_key.encode()).hexdigest()

    def get(self, key: str) -> SchemaResult | None:
        """The stored result of `key`, if an earlier run checked the same document."""
        entry = self._stored.get(key)
        if entry is None:
            return None
        self._used[key] = entry
        errors, unevaluated = entry
        return SchemaResult(
            errors=[tuple(str(part) for part in error) for error in errors],
            cel_unevaluated=Counter(unevaluated),
        )

    def put(self, key: str, result: SchemaResult) -> None:
        """Remember a fresh result."""
        if self.path is None:
            return
        entry: list[Any] = [[list(e) for e in result.errors], dict(result.cel_unevaluated)]
        self._stored[key] = self._used[key] = entry
        self._new = True

    def save(self) -> None:
        """Write the file if this run checked a new document (a read-only home only costs speed)."""
        if self.path is None or not self._new:
            return
        keep = self._stored if len(self._stored) <= _MAX_ENTRIES else self._used
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(keep))
            temporary.replace(self.path)
        except OSError:
            pass
