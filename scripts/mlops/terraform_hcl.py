"""Read terraform's HCL with python-hcl2: what `mlops validate` and the terraform tests both need.

python-hcl2 (v8) keeps string literals quoted ('"x"'), wraps expressions as '${...}', quotes
block labels and object keys, and stores comments under `__comments__` /
`__inline_comments__`; these helpers hide that. Nothing here evaluates expressions that
need a provider: `terraform validate` and `plan` are not available offline.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import hcl2


def unquote(value: Any) -> Any:
    """Strip the quotes python-hcl2 keeps around string literals and labels."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def strip_meta(value: Any) -> Any:
    """Drop python-hcl2's markers (`__comments__`, `__inline_comments__`, `__is_block__`), recursively."""
    if isinstance(value, dict):
        return {k: strip_meta(v) for k, v in value.items() if not (k.startswith("__") and k.endswith("__"))}
    if isinstance(value, list):
        return [strip_meta(v) for v in value]
    return value


@cache
def parse(path: Path) -> dict[str, Any]:
    """Parse one .tf / .tfvars file (cached: the tree is read once per process)."""
    with path.open() as handle:
        return strip_meta(hcl2.load(handle))


def locals_of(directory: Path) -> dict[str, Any]:
    """All `locals` of the .tf files in `directory`, merged."""
    merged: dict[str, Any] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in parse(path).get("locals", []):
            merged.update(block)
    return merged
