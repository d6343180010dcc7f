"""Which ServiceAccounts terraform gives an AWS role through EKS Pod Identity, read from the HCL.

The reader starts where terraform does, at the platform root (`terraform/platform`), and
follows every `module` call whose `source` is a local folder down to the
`aws_eks_pod_identity_association` blocks (all of them in `modules/pod-identity-role`). A
call's `for_each` gives one instance per key; its arguments become the callee's `var.*`, each
evaluated where it is written. What it evaluates, exactly: literals, `each.key`,
`each.value` (and `each.value.<attribute>` of a map of objects), `local.<name>`, `var.<name>`
(what the call passes, else the variable's default), string templates made of those,
`toset(<one of those>)`, and an association's `count = <bool> ? 1 : 0`. Anything else (a
function call, a resource attribute) is returned as `Unresolved`, never guessed: MLOPS141
reports it, since an association whose ServiceAccount is unknown cannot be checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from mlops.rendering.terraform_hcl import parse, unquote

PLATFORM = "terraform/platform"
WORKLOAD_ROLES = "terraform/modules/workload-roles"
ASSOCIATION = "aws_eks_pod_identity_association"
_REFERENCE = r"each\.key|each\.value(?:\.[A-Za-z0-9_-]+)?|var\.[A-Za-z0-9_]+|local\.[A-Za-z0-9_]+"
_WHOLE_REFERENCE = re.compile(rf"^\$\{{\s*({_REFERENCE})\s*\}}$")
_TOSET = re.compile(rf"^\$\{{\s*toset\(\s*({_REFERENCE})\s*\)\s*\}}$")
_COUNT = re.compile(rf"^\$\{{\s*({_REFERENCE})\s*\?\s*(\d+)\s*:\s*(\d+)\s*\}}$")
_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")


@dataclass(frozen=True)
class Association:
    """One Pod Identity association: the ServiceAccount it names and where terraform chooses it."""

    namespace: str
    service_account: str
    file: str
    """The file that chooses the ServiceAccount: the one calling the module that holds the association."""
    resource: str
    """The association's full address, as `terraform state list` prints it."""


@dataclass(frozen=True)
class Unresolved:
    """An association argument (or a `for_each`/`count` on its way) this reader cannot evaluate."""

    file: str
    resource: str
    field: str
    expression: str


@dataclass(frozen=True)
class Reading:
    """What the HCL says: the associations with concrete names, and what could not be evaluated."""

    associations: list[Association]
    unresolved: list[Unresolved]


class _Unresolvable(Exception):
    def __init__(self, file: str, expression: str) -> None:
        super().__init__(expression)
        self.file = file
        self.expression = expression


@dataclass(frozen=True)
class _Scope:
    """One module instance: its folder, its address, and its `var.*` (evaluated on first use)."""

    repo: Path
    directory: Path
    address: str
    variables: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    caller_file: str = ""

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.repo))


def read(repo: Path) -> Reading:
    """Every Pod Identity association the platform root creates, through every local module call."""
    found: list[Association] = []
    unresolved: list[Unresolved] = []
    root = repo / PLATFORM
    if root.is_dir():
        _module(_Scope(repo.resolve(), root.resolve(), ""), found, unresolved)
    return Reading(found, unresolved)


def associations(repo: Path) -> list[Association]:
    """Every Pod Identity association terraform creates, with concrete names."""
    return read(repo).associations


def associated(repo: Path) -> set[tuple[str, str]]:
    """(namespace, ServiceAccount) of every association."""
    return {(a.namespace, a.service_account) for a in associations(repo)}


def _module(scope: _Scope, found: list[Association], unresolved: list[Unresolved]) -> None:
    for path, rtype, name, body in _blocks(scope.directory, "resource"):
        if rtype == ASSOCIATION:
            _association(scope, path, name, body, found, unresolved)
    for path, _, name, body in _blocks(scope.directory, "module", labels=1):
        source = str(unquote(body.get("source", "")))
        if not source.startswith(("./", "../")):
            continue  # a registry module: not in this repository
        callee = (scope.directory / source).resolve()
        if not _holds_association(callee):
            continue
        file = scope.rel(path)
        call = f"{scope.address}module.{name}"
        try:
            instances = _instances(scope, file, body.get("for_each"))
        except _Unresolvable as error:
            unresolved.append(Unresolved(error.file, call, "for_each", error.expression))
            continue
        for key, each in instances:
            variables = {
                argument: _lazy(scope, file, expression, each)
                for argument, expression in body.items()
                if argument not in {"source", "version", "providers", "depends_on", "count", "for_each"}
            }
            address = f'{call}["{key}"].' if key is not None else f"{call}."
            _module(_Scope(scope.repo, callee, address, variables, file), found, unresolved)


def _association(
    scope: _Scope,
    path: Path,
    name: str,
    body: dict[str, Any],
    found: list[Association],
    unresolved: list[Unresolved],
) -> None:
    file = scope.rel(path)
    address = f"{scope.address}{ASSOCIATION}.{name}"
    where = scope.caller_file or file
    try:
        instances = _instances(scope, file, body.get("for_each"))
        count = _count(scope, file, body.get("count"))
    except _Unresolvable as error:
        unresolved.append(Unresolved(error.file, address, "for_each/count", error.expression))
        return
    for key, each in instances:
        for index in range(count) if count is not None else [None]:
            instance = address + (f'["{key}"]' if key is not None else "")
            instance += f"[{index}]" if index is not None else ""
            values: dict[str, str] = {}
            for argument in ("namespace", "service_account"):
                try:
                    value = _value(scope, file, body.get(argument), each)
                except _Unresolvable as error:
                    unresolved.append(Unresolved(error.file, instance, argument, error.expression))
                    continue
                if not isinstance(value, str):
                    unresolved.append(Unresolved(file, instance, argument, str(body.get(argument))))
                    continue
                values[argument] = value
            if len(values) == 2:
                found.append(Association(values["namespace"], values["service_account"], where, instance))


def _instances(scope: _Scope, file: str, for_each: Any) -> list[tuple[str | None, dict[str, Any]]]:
    """(key, each) per instance: one without a key when there is no `for_each`."""
    if for_each is None:
        return [(None, {})]
    items = _value(scope, file, for_each, {})
    if isinstance(items, dict):
        return [(str(unquote(k)), {"key": str(unquote(k)), "value": v}) for k, v in items.items()]
    if isinstance(items, list):  # toset(<list of strings>)
        keys = [_value(scope, file, item, {}) for item in items]
        if all(isinstance(k, str) for k in keys):
            return [(k, {"key": k, "value": k}) for k in keys]
    raise _Unresolvable(file, str(for_each))


def _count(scope: _Scope, file: str, count: Any) -> int | None:
    if count is None:
        return None
    if isinstance(count, int) and not isinstance(count, bool):
        return count
    match = _COUNT.match(str(count))
    if match:
        condition = _reference(scope, file, match.group(1), {})
        if isinstance(condition, bool):
            return int(match.group(2)) if condition else int(match.group(3))
    raise _Unresolvable(file, str(count))


def _lazy(scope: _Scope, file: str, expression: Any, each: dict[str, Any]) -> Callable[[], Any]:
    def value() -> Any:
        return _value(scope, file, expression, each)

    return value


def _value(scope: _Scope, file: str, expression: Any, each: dict[str, Any]) -> Any:
    """`expression` (as python-hcl2 gives it, written in `file` of `scope`) to its value."""
    if expression is None or isinstance(expression, bool | int | float | dict | list):
        return expression
    text = str(expression)
    if match := _WHOLE_REFERENCE.match(text):
        return _reference(scope, file, match.group(1), each)
    if match := _TOSET.match(text):
        items = _reference(scope, file, match.group(1), each)
        if isinstance(items, list):
            return items
        raise _Unresolvable(file, text)
    if text.startswith("${"):
        raise _Unresolvable(file, text)
    text = str(unquote(text))

    def substitute(part: re.Match[str]) -> str:
        reference = part.group(1).strip()
        if not re.fullmatch(_REFERENCE, reference):
            raise _Unresolvable(file, str(expression))
        value = _reference(scope, file, reference, each)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _Unresolvable(file, str(expression))
        return str(value)

    return _INTERPOLATION.sub(substitute, text)


def _reference(scope: _Scope, file: str, reference: str, each: dict[str, Any]) -> Any:
    kind, _, rest = reference.partition(".")
    if kind == "each":
        if not each:
            raise _Unresolvable(file, f"${{{reference}}}")  # each.* outside a for_each
        if rest == "key":
            return each["key"]
        value = each["value"]
        _, _, attribute = rest.partition(".")
        if attribute:
            fields = {str(unquote(k)): v for k, v in value.items()} if isinstance(value, dict) else {}
            if attribute not in fields:
                raise _Unresolvable(file, f"${{{reference}}}")
            value = fields[attribute]
        # A value written in a local map: evaluated where the map is, without `each`.
        return _value(scope, file, value, {})
    if kind == "local":
        local_file, value = _local(scope.directory, rest)
        if local_file is None:
            raise _Unresolvable(file, f"${{{reference}}} (no such local)")
        return _value(scope, scope.rel(local_file), value, {})
    if rest in scope.variables:
        return scope.variables[rest]()
    for path, _, name, body in _blocks(scope.directory, "variable", labels=1):
        if name == rest and "default" in body:
            return _value(scope, scope.rel(path), body["default"], {})
    raise _Unresolvable(scope.caller_file or file, f"${{{reference}}} (not passed, no default)")


def _local(directory: Path, name: str) -> tuple[Path | None, Any]:
    for path in sorted(directory.glob("*.tf")):
        for block in parse(path).get("locals", []):
            if name in block:
                return path, block[name]
    return None, None


def _blocks(directory: Path, kind: str, labels: int = 2) -> Iterator[tuple[Path, str, str, dict[str, Any]]]:
    """(file, type, name, body) of the `kind` blocks of `directory`; type is '' for one-label blocks."""
    for path in sorted(directory.glob("*.tf")):
        for block in parse(path).get(kind, []):
            for first, inner in block.items():
                if labels == 1:
                    yield path, "", str(unquote(first)), inner
                else:
                    for name, body in inner.items():
                        yield path, str(unquote(first)), str(unquote(name)), body


@cache
def _holds_association(directory: Path) -> bool:
    """Whether `directory`, or a local module it calls, writes an association."""
    if any(rtype == ASSOCIATION for _, rtype, _, _ in _blocks(directory, "resource")):
        return True
    for _, _, _, body in _blocks(directory, "module", labels=1):
        source = str(unquote(body.get("source", "")))
        if source.startswith(("./", "../")) and _holds_association((directory / source).resolve()):
            return True
    return False
