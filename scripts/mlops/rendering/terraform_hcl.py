"""Read terraform's HCL with python-hcl2: what `mlops validate` and the terraform tests both need.

python-hcl2 (v8) keeps string literals quoted ('"x"'), wraps expressions as '${...}', quotes
block labels and object keys, and stores comments under `__comments__` /
`__inline_comments__`; these helpers hide that. Nothing here evaluates expressions that
need a provider: `terraform validate` and `plan` are not available offline.

Parsing is slow (python-hcl2's Lark grammar: about 15 ms a file, a second for the tree), and
every `mlops validate` reads the same files, so parsed files are kept in the cache folder under
`$MLOPS_CACHE_DIR/hcl/`, keyed by the file's content and python-hcl2's version, and written
through the one cache writer (`build_cache.write_cache_file`). `MLOPS_BUILD_CACHE=0` turns
this off with the build cache.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from mlops.conventions.paths import cache_root
from mlops.rendering import build_cache

FORMAT = "1"
"""Bumped when what an entry holds changes (what `strip_meta` keeps), so old entries are never read."""


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
    """Parse one .tf / .tfvars file (once per process, and from the cache folder while unchanged)."""
    return parse_text(path.read_text())


def parse_text(text: str) -> dict[str, Any]:
    """Parse HCL text without python-hcl2's markers; from the cache folder when parsed before."""
    if not build_cache.enabled():
        return _parse_fresh(text)
    key = hashlib.sha256(f"{FORMAT}\0{_hcl2_version()}\0{text}".encode()).hexdigest()
    entry = cache_root() / "hcl" / key[:2] / f"{key}.json"
    try:
        return json.loads(entry.read_bytes())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        pass
    parsed = _parse_fresh(text)
    data = json.dumps(parsed, separators=(",", ":"))
    if json.loads(data) == parsed:  # a tree JSON would change is parsed again next time
        build_cache.write_cache_file(entry, data)
    return parsed


def _parse_fresh(text: str) -> dict[str, Any]:
    import hcl2  # here: 80 ms of imports (Lark) that a run from the cache never pays

    return strip_meta(hcl2.loads(text))  # type: ignore[no-any-return]


@cache
def _hcl2_version() -> str:
    return metadata.version("python-hcl2")


def locals_of(directory: Path) -> dict[str, Any]:
    """All `locals` of the .tf files in `directory`, merged."""
    merged: dict[str, Any] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in parse(path).get("locals", []):
            merged.update(block)
    return merged


ARTIFACT_BUCKET_PURPOSE = "mlflow-artifacts"
"""The data bucket MLflow stores run artifacts in, registered model weights included."""

_INTERPOLATION = re.compile(r"\$\{\s*(var|local|each)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}")


def data_bucket(repo: Path, env: str, purpose: str = ARTIFACT_BUCKET_PURPOSE) -> str | None:
    """The name terraform gives `env`'s data bucket for `purpose`, or None if terraform does not make one.

    Follows the chain as written: `terraform/envs/<env>/terraform.tfvars` sets `env`; the platform
    root's `locals.name` and its `module "data"` `name_prefix`; `modules/data`'s
    `aws_s3_bucket.data` `bucket` over `for_each = local.purposes`.
    """
    tfvars = repo / "terraform" / "envs" / env / "terraform.tfvars"
    platform = repo / "terraform" / "platform"
    if not tfvars.is_file() or not platform.is_dir():
        return None
    variables = {k: unquote(v) for k, v in parse(tfvars).items()}
    platform_locals = {k: _interpolate(unquote(v), variables, {}, "") for k, v in locals_of(platform).items()
                       if isinstance(v, str)}  # fmt: skip
    module = _block(platform, "module", "data")
    if module is None:
        return None
    source = platform / str(unquote(module.get("source", "")))
    module_vars = {
        k: _interpolate(unquote(v), variables, platform_locals, "")
        for k, v in module.items()
        if isinstance(v, str)
    }
    bucket = _block(source, "resource", "aws_s3_bucket", "data")
    module_locals = locals_of(source)
    purposes = [unquote(p) for p in module_locals.get("purposes") or []]
    if bucket is None or purpose not in purposes:
        return None
    return _interpolate(unquote(bucket.get("bucket", "")), module_vars, module_locals, purpose)


def _block(directory: Path, block_type: str, *labels: str) -> dict[str, Any] | None:
    """The body of `block_type "label" ...` in the .tf files of `directory`."""
    for path in sorted(directory.glob("*.tf")):
        for block in parse(path).get(block_type, []):
            body: Any = block
            for label in labels:
                body = body.get(f'"{label}"', body.get(label)) if isinstance(body, dict) else None
            if isinstance(body, dict):
                return body
    return None


def _interpolate(text: str, variables: dict[str, Any], local_values: dict[str, Any], each_key: str) -> str:
    """Substitute `${var.x}`, `${local.x}` and `${each.key}` in a string; anything else stays as written."""

    def value(match: re.Match[str]) -> str:
        scope, name = match.groups()
        if scope == "each":
            return each_key if name == "key" else match.group(0)
        table = variables if scope == "var" else local_values
        found = table.get(name)
        return str(unquote(found)) if isinstance(found, str) and "${" not in str(found) else match.group(0)

    return _INTERPOLATION.sub(value, text)
