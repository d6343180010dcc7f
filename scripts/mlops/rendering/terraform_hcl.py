"""Read terraform's HCL with python-hcl2: what `mlops validate` and the terraform tests both need.

python-hcl2 (v8) keeps string literals quoted ('"x"'), wraps expressions as '${...}', quotes
block labels and object keys, and stores comments under `__comments__` /
`__inline_comments__`; these helpers hide that. Nothing here evaluates expressions that
need a provider: `terraform validate` and `plan` are not available offline.
"""

from __future__ import annotations

import re
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
