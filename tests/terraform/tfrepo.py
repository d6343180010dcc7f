"""Read the terraform/ tree with python-hcl2 and evaluate the few string expressions that name things.

`terraform validate` and `plan` need provider downloads, which CI here cannot do, so the
tests parse the HCL themselves, with `mlops.rendering.terraform_hcl` (which `mlops validate` uses to
read the workflow roles too).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mlops.rendering.terraform_hcl import locals_of, parse, unquote

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = REPO_ROOT / "terraform"
MODULES = TERRAFORM / "modules"
# The one root module both environments apply; envs/<env>/ holds only its tfvars and
# backend settings.
PLATFORM = TERRAFORM / "platform"
ENVS = ("dev", "prod")

# Meta-arguments of a module block: not inputs of the module.
MODULE_META_ARGS = {"source", "version", "providers", "depends_on", "count", "for_each"}

_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
_REFERENCE = re.compile(r"^[a-z_]+(\.[A-Za-z0-9_-]+)+$")


def platform_name(env: str, purpose: str) -> str:
    """The platform's naming rule for AWS resources: `mlops-<env>-<purpose>`.

    Both sides go through this one function: the names terraform computes and the names
    the overlays and chart values use.
    """
    return f"mlops-{env}-{purpose}"


def platform_secret(env: str, purpose: str) -> str:
    """The platform's naming rule for Secrets Manager secrets: `mlops/<env>/<purpose>`."""
    return f"mlops/{env}/{purpose}"


def tf_files(directory: Path = TERRAFORM) -> list[Path]:
    """Every .tf file under `directory`, without provider caches."""
    return sorted(p for p in directory.rglob("*.tf") if ".terraform" not in p.parts)


def module_dirs() -> list[Path]:
    """The folders under terraform/modules."""
    return sorted(p for p in MODULES.iterdir() if p.is_dir())


def blocks(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    """Blocks with one label (variable, output, module) of every .tf file in `directory`: name -> body."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in parse(path).get(kind, []):
            for label, body in block.items():
                found[unquote(label)] = body
    return found


def resources(directory: Path, kind: str = "resource") -> dict[tuple[str, str], dict[str, Any]]:
    """Two-label blocks (resource, data) of every .tf file in `directory`: (type, name) -> body."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in parse(path).get(kind, []):
            for rtype, named in block.items():
                for name, body in named.items():
                    found[(unquote(rtype), unquote(name))] = body
    return found


def tfvars(env: str) -> dict[str, Any]:
    """terraform.tfvars of an environment, literals unquoted."""
    return {k: _unquote_deep(v) for k, v in parse(TERRAFORM / "envs" / env / "terraform.tfvars").items()}


def backend_config(env: str) -> dict[str, Any]:
    """envs/<env>/backend.s3.tfbackend: the env's half of the platform's partial S3 backend."""
    return {k: _unquote_deep(v) for k, v in parse(TERRAFORM / "envs" / env / "backend.s3.tfbackend").items()}


def _unquote_deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {unquote(k): _unquote_deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unquote_deep(v) for v in value]
    return unquote(value)


class Unresolved(Exception):
    """An expression refers to something only known at apply time (a resource attribute)."""


def evaluate(expression: Any, scope: dict[str, Any]) -> Any:
    """Evaluate a literal or a string template made of references found in `scope`.

    Supports what the naming expressions use: "mlops-${var.env}", "${var.name_prefix}-${each.key}",
    bare references "${local.name}". Anything else (function calls, resource attributes)
    raises `Unresolved`.
    """
    if not isinstance(expression, str):
        return expression
    if expression.startswith("${") and expression.endswith("}") and _INTERPOLATION.fullmatch(expression):
        return _lookup(expression[2:-1].strip(), scope)
    if not (expression.startswith('"') and expression.endswith('"')):
        raise Unresolved(expression)

    def substitute(match: re.Match[str]) -> str:
        value = _lookup(match.group(1).strip(), scope)
        if not isinstance(value, str | int | float):
            raise Unresolved(match.group(0))
        return str(value)

    return _INTERPOLATION.sub(substitute, unquote(expression))


def _lookup(reference: str, scope: dict[str, Any]) -> Any:
    if not _REFERENCE.match(reference) or reference not in scope:
        raise Unresolved(reference)
    value = scope[reference]
    if callable(value):
        value = value()
    return value


def env_scope(env: str) -> dict[str, Any]:
    """`var.*` from the env's tfvars and `local.*` of the platform root, lazily evaluated."""
    scope: dict[str, Any] = {f"var.{k}": v for k, v in tfvars(env).items()}
    for name, expression in locals_of(PLATFORM).items():
        scope[f"local.{name}"] = _lazy(expression, scope)
    return scope


def module_scope(env: str, call: str) -> dict[str, Any]:
    """`var.*` of the module called as `module.<call>` by the platform root with env's tfvars
    (the arguments that evaluate from tfvars and locals) plus the module's own `local.*`."""
    outer = env_scope(env)
    body = blocks(PLATFORM, "module")[call]
    directory = module_source(call)
    scope: dict[str, Any] = {}
    for name, variable in blocks(directory, "variable").items():
        if "default" in variable:
            scope[f"var.{name}"] = unquote(variable["default"])
    for name, expression in body.items():
        if name not in MODULE_META_ARGS:
            scope[f"var.{name}"] = _lazy(expression, outer)
    for name, expression in locals_of(directory).items():
        scope[f"local.{name}"] = _lazy(expression, scope)
    return scope


def _lazy(expression: Any, scope: dict[str, Any]) -> Any:
    def value() -> Any:
        return evaluate(expression, scope)

    return value


def module_source(call: str, caller: Path = PLATFORM) -> Path:
    """The module folder that `module.<call>` of `caller` (the platform root by default) points at."""
    return (caller / unquote(blocks(caller, "module")[call]["source"])).resolve()


def for_each_keys(expression: str, scope: dict[str, Any], directory: Path) -> list[str]:
    """The keys a `for_each` of `local.<name>` (a map) or `toset(local.<name>)` (a list) iterates."""
    match = re.fullmatch(r"\$\{(?:toset\()?local\.([a-z_]+)\)?\}", expression)
    if not match:
        raise Unresolved(expression)
    value = locals_of(directory)[match.group(1)]
    if isinstance(value, dict):
        return [unquote(k) for k in value]
    return [str(evaluate(v, scope)) for v in value]
