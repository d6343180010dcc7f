"""What validation reports: one problem per line, naming the file, the resource and the field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Problem:
    """One thing to fix.

    Printed as `FILE: KIND/NAME: FIELD: MESSAGE [ID: hint]`; FILE is the kustomization folder
    (or the ApplicationSet's file) the resource was rendered from.
    """

    file: str
    resource: str
    field: str
    message: str
    policy_id: str = ""
    hint: str = ""

    def __str__(self) -> str:
        line = f"{self.file}: {self.resource}: {self.field or '(document)'}: {self.message}"
        if self.policy_id:
            line += f" [{self.policy_id}: {self.hint}]"
        return line


def mapping(obj: Any, key: str) -> dict[str, Any]:
    """Return `obj[key]` when it is a mapping, else an empty one (manifests may hold anything)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def resource_name(doc: dict[str, Any]) -> str:
    """Return `Kind/name` (or `Kind/namespace/name`-free short form) of a manifest."""
    kind = doc.get("kind") or "(no kind)"
    meta = mapping(doc, "metadata")
    name = meta.get("name") or meta.get("generateName") or "(no name)"
    return f"{kind}/{name}"


def field_path(parts: Sequence[Any]) -> str:
    """Return a readable path: `spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"]`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif any(ch in str(part) for ch in "./ ") or not str(part):
            out += f'["{part}"]'
        else:
            out += f".{part}" if out else str(part)
    return out
