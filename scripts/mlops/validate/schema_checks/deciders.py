"""The installed distributions whose code or data decide a schema check's result, named in cache keys."""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version

SCHEMA_DISTRIBUTIONS = ("kubernetes-validate", "jsonschema", "jsonschema-specifications", "referencing")
"""kubernetes-validate ships the core schemas the checks load; jsonschema validates against them,
resolving their `$ref`s through referencing; jsonschema-specifications holds the metaschemas."""

CEL_DISTRIBUTIONS = ("cel-python", "lark", "google-re2", "pendulum")
"""cel-python evaluates a CRD's x-kubernetes-validations: lark parses each rule, google-re2 runs
`matches()`, pendulum reads timestamps and durations."""


def versions(distributions: Iterable[str]) -> str:
    """`name=version` of Python and of each distribution (Python's `re` runs jsonschema's `pattern`)."""
    parts = [f"python={platform.python_version()}"]
    for name in distributions:
        try:
            parts.append(f"{name}={version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name}=absent")
    return "\0".join(parts)


def fingerprint(distributions: Iterable[str]) -> str:
    """A short hash of `versions(distributions)`, for a cache file's name."""
    return hashlib.sha256(versions(distributions).encode()).hexdigest()[:16]
