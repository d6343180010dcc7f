"""Find the manifests embedded in Argo workflows (`resource.manifest`) so they are validated too."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from mlops.conventions.argo_json import plain_text
from mlops.rendering import fast_yaml
from mlops.validate.objects.problems import mapping

_WORKFLOW_KINDS = {"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"}
# Argo substitutes `{{...}}` in the manifest's text before parsing it, so `replicas: {{x}}` is
# valid for Argo but reads as a YAML flow mapping; quote such a bare expression to parse it.
_BARE_EXPRESSION = re.compile(
    r"^(\s*(?:-\s+)?(?:[^\s:#'\"][^:#]*:\s+)?)(\{\{[^\n]*?\}\})(\s*(?:#.*)?)$", re.M
)


@dataclass(frozen=True)
class Embedded:
    """A manifest found inside a workflow: the parsed object and where it sits in its parent."""

    field: str
    document: dict[str, Any] | None
    error: str | None = None


def workflow_templates(doc: dict[str, Any]) -> tuple[str, list[Any]]:
    """Return (field path prefix, templates) of an Argo workflow kind; empty for any other kind."""
    if doc.get("kind") not in _WORKFLOW_KINDS or not str(doc.get("apiVersion", "")).startswith(
        "argoproj.io/"
    ):
        return "", []
    spec = mapping(doc, "spec")
    if doc["kind"] == "CronWorkflow":
        spec = mapping(spec, "workflowSpec")
        prefix = "spec.workflowSpec.templates"
    else:
        prefix = "spec.templates"
    templates = spec.get("templates")
    return prefix, templates if isinstance(templates, list) else []


def parse_manifest(text: str) -> list[Any]:
    """Parse an embedded manifest, reading a bare `{{...}}` value as the string Argo substitutes.

    A `{{=toJson(...)}}` value (mlops.conventions.argo_json) reads as the text it stands for, with simple
    tags.
    """
    return copy.deepcopy(_parsed(text))  # a copy: a caller may change what it is given


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> list[Any]:
    """Parsed once per run: a dozen rules walk each workflow's embedded manifests."""
    quoted = _BARE_EXPRESSION.sub(lambda m: f'{m.group(1)}"{m.group(2)}"{m.group(3)}', plain_text(text))
    return fast_yaml.load_documents(quoted)


def embedded_manifests(doc: dict[str, Any]) -> Iterator[Embedded]:
    """Yield every `resource.manifest` of an Argo workflow kind, parsed."""
    prefix, templates = workflow_templates(doc)
    for index, template in enumerate(templates):
        resource = template.get("resource") if isinstance(template, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("manifest"), str):
            continue
        where = f"{prefix}[{index}].resource.manifest"
        try:
            parsed = parse_manifest(resource["manifest"])
        except yaml.YAMLError as exc:
            yield Embedded(where, None, f"manifest is not valid YAML: {exc}".replace("\n", " "))
            continue
        if len(parsed) != 1 or not isinstance(parsed[0], dict):
            yield Embedded(where, None, "manifest must hold exactly one object")
            continue
        yield Embedded(where, parsed[0])
