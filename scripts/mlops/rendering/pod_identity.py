"""Which ServiceAccounts terraform gives an AWS role through EKS Pod Identity, read from the HCL.

Every `aws_eks_pod_identity_association` under `terraform/modules/` is read as written: its
`namespace` and `service_account` are literals, `each.key`/`each.value` (or
`each.value.<attribute>` of a map of objects) of a `for_each` over a `local` map, a `local.`
string, or a `var.` that the module's one call in `terraform/platform/main.tf` sets
(or the variable's default). The role is whatever `role_arn` names; its IAM name follows the
platform's rule `<name_prefix>-<ServiceAccount>` (modules/workload-roles, modules/karpenter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.rendering.terraform_hcl import locals_of, parse, unquote

MODULES = "terraform/modules"
WORKLOAD_ROLES = "terraform/modules/workload-roles"
PLATFORM = "terraform/platform/main.tf"
ASSOCIATION = "aws_eks_pod_identity_association"
_REFERENCE = re.compile(
    r"^\$\{\s*(each\.key|each\.value(?:\.[A-Za-z0-9_]+)?|var\.[A-Za-z0-9_]+|local\.[A-Za-z0-9_]+)\s*\}$"
)


@dataclass(frozen=True)
class Association:
    """One Pod Identity association: the ServiceAccount it names and where terraform writes it."""

    namespace: str
    service_account: str
    file: str
    resource: str
    """`<type>.<name>["<key>"]` as terraform addresses it."""


def associations(repo: Path) -> list[Association]:
    """Every Pod Identity association terraform's modules create, with concrete names."""
    found: list[Association] = []
    for path in sorted((repo / MODULES).glob("*/*.tf")):
        for block in parse(path).get("resource", []):
            for rtype, named in block.items():
                if unquote(rtype) != ASSOCIATION:
                    continue
                for name, body in named.items():
                    found.extend(_expand(repo, path, unquote(name), body))
    return found


def associated(repo: Path) -> set[tuple[str, str]]:
    """(namespace, ServiceAccount) of every association."""
    return {(a.namespace, a.service_account) for a in associations(repo)}


def irsa_service_accounts(repo: Path) -> set[str]:
    """ServiceAccounts whose role also trusts IRSA (workload-roles `local.irsa_service_accounts`)."""
    value = locals_of(repo / WORKLOAD_ROLES).get("irsa_service_accounts")
    return {str(unquote(v)) for v in re.findall(r'"([^"]+)"', str(value))} if value else set()


def _expand(repo: Path, path: Path, name: str, body: dict[str, Any]) -> list[Association]:
    module = path.parent
    file = str(path.relative_to(repo))
    address = f"{ASSOCIATION}.{name}"
    if "for_each" in body:
        items = _resolve(repo, module, body["for_each"], {})
        if not isinstance(items, dict):
            return []  # a for_each this reader cannot follow: the terraform tests pin the shape
        pairs = [(str(unquote(k)), v) for k, v in items.items()]
    else:
        pairs = [("", "")]
    result = []
    for key, value in pairs:
        each = {"each.key": key}
        if isinstance(value, dict):
            # modules/ingress: controllers = { <name> = { namespace = ..., service_account = ... } }
            each.update({f"each.value.{unquote(k)}": str(unquote(v)) for k, v in value.items()})
        else:
            each["each.value"] = str(unquote(value))
        namespace = _resolve(repo, module, body.get("namespace"), each)
        account = _resolve(repo, module, body.get("service_account"), each)
        if isinstance(namespace, str) and isinstance(account, str):
            where = f'{address}["{key}"]' if key else address
            result.append(Association(namespace, account, file, where))
    return result


def _resolve(repo: Path, module: Path, expression: Any, each: dict[str, str]) -> Any:
    """A literal, `each.*`, `local.*` or `var.*` to its value; None when it is anything else."""
    text = unquote(expression) if isinstance(expression, str) else expression
    if not isinstance(text, str):
        return text
    match = _REFERENCE.match(text)
    if match is None:
        return None if "${" in text else text
    ref = match.group(1)
    if ref in each:
        return each[ref]
    kind, _, attribute = ref.partition(".")
    if kind == "local":
        value = locals_of(module).get(attribute)
        return unquote(value) if isinstance(value, str) else value
    return _variable(repo, module, attribute)


def _variable(repo: Path, module: Path, name: str) -> Any:
    """What the platform's call of `module` passes for `var.name`, else the variable's default."""
    platform = repo / PLATFORM
    if platform.is_file():
        for block in parse(platform).get("module", []):
            for call in block.values():
                source = str(unquote(call.get("source", "")))
                if Path(source).name == module.name and name in call:
                    value = unquote(call[name])
                    return value if isinstance(value, str) and "${" not in value else None
    for path in sorted(module.glob("*.tf")):
        for block in parse(path).get("variable", []):
            for variable, body in block.items():
                if unquote(variable) == name and "default" in body:
                    return unquote(body["default"])
    return None
