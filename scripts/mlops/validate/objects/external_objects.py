"""The objects a cluster holds that no kustomization here renders, declared once with a reason each.

A Helm chart's Services and pods (an Argo CD Application of a chart renders them on the
cluster, not here), a Secret terraform writes: `mlops validate` cannot see them, so a
reference to one resolves only when `clusters/external-objects.yaml` declares it. An entry
names its kind, namespace, name and/or labels (what selectors match), keys (for a ConfigMap or
Secret; absent: any key), the environments (default: all), what makes it (`madeBy`) and why
the platform relies on it (`reason`). An entry without a reason is a problem (MLOPS069): the
file is the list of what the repository trusts, never a silent skip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops.conventions.environments import ENVS
from mlops.rendering import fast_yaml
from mlops.validate.objects.problems import Problem
from mlops.validate.objects.violations import HINTS

PATH = "clusters/external-objects.yaml"
_KINDS = ("Service", "Pod", "ConfigMap", "Secret", "ServiceAccount", "SecretStore", "ClusterSecretStore")


@dataclass(frozen=True)
class Declared:
    """One declared object (see the module docstring)."""

    where: str
    kind: str
    namespace: str
    name: str
    labels: dict[str, Any] = field(hash=False, compare=False)
    keys: frozenset[str] | None
    envs: tuple[str, ...]


@dataclass
class ExternalObjects:
    """The declared objects and the problems of the file itself."""

    declared: list[Declared]
    problems: list[Problem]

    def for_env(self, env: str) -> list[Declared]:
        """The objects declared for `env`."""
        return [d for d in self.declared if env in d.envs]


def load(repo: Path) -> ExternalObjects:
    """Read `clusters/external-objects.yaml` (an absent file declares nothing)."""
    file = repo / PATH
    if not file.is_file():
        return ExternalObjects([], [])
    try:
        data = fast_yaml.load(file.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        return ExternalObjects([], [_problem(f"{PATH}{line}", "", f"not valid YAML: {exc}")])
    entries = data.get("objects") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return ExternalObjects(
            [], [_problem(PATH, "objects", "expected a list `objects:` of declared objects")]
        )
    declared: list[Declared] = []
    problems: list[Problem] = []
    for i, entry in enumerate(entries):
        where = f"objects[{i}]"
        found = _check(entry, where)
        if found:
            problems.extend(_problem(PATH, f"{where}.{key}" if key else where, msg) for key, msg in found)
            continue
        keys = entry.get("keys")
        declared.append(
            Declared(
                where=f"{PATH} {where} ({entry['madeBy']})",
                kind=str(entry["kind"]),
                namespace=str(entry.get("namespace") or ""),
                name=str(entry.get("name") or ""),
                labels=dict(entry.get("labels") or {}),
                keys=frozenset(str(k) for k in keys) if isinstance(keys, list) else None,
                envs=tuple(entry.get("envs") or ENVS),
            )
        )
    return ExternalObjects(declared, problems)


def _check(entry: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(entry, dict):
        return [("", "an entry is a mapping with kind, namespace, name or labels, madeBy and reason")]
    found = []
    if entry.get("kind") not in _KINDS:
        found.append(("kind", f"kind {entry.get('kind')!r} is not one of {', '.join(_KINDS)}"))
    if entry.get("kind") != "ClusterSecretStore" and not entry.get("namespace"):
        found.append(("namespace", "missing: the namespace the object lives in"))
    if not entry.get("name") and not entry.get("labels"):
        found.append(("name", "name or labels is needed: what a reference or a selector finds"))
    for key in ("madeBy", "reason"):
        if not str(entry.get(key) or "").strip():
            found.append(
                (key, f"missing: say {'what makes the object' if key == 'madeBy' else 'why it is relied on'}")
            )
    unknown = [e for e in entry.get("envs") or [] if e not in ENVS]
    if unknown:
        found.append(("envs", f"unknown environment {unknown[0]!r} (known: {', '.join(ENVS)})"))
    if "keys" in entry and not isinstance(entry["keys"], list):
        found.append(("keys", "a list of the keys the ConfigMap or Secret holds"))
    return found


def _problem(file: str, field: str, message: str) -> Problem:
    return Problem(file, "ExternalObjects", field, message, "MLOPS069", HINTS["MLOPS069"])
