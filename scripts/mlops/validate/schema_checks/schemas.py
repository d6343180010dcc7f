"""Validate one manifest strictly against its schema: Kubernetes 1.35 for core kinds, the CRDs for the rest.

Core kinds use the strict schemas that kubernetes-validate ships (pinned to the EKS version,
1.35). Its own `validate()` re-reads a 1.4 MB definitions file per call, stops at the first
error and only warns for a kind it lacks; here its schema files are loaded once, every error
is reported, and a kind without a schema is an error.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from mlops.validate.objects.problems import field_path
from mlops.validate.objects.quantities import not_a_quantity, parse_quantity
from mlops.validate.schema_checks import cel
from mlops.validate.schema_checks.crds import CrdIndex

KUBERNETES_VERSION = "1.35"
"""The EKS version the terraform creates; core kinds are validated against its schemas."""

_TEMPLATE_EXPR = re.compile(r"\{\{.*?\}\}")


@dataclass
class SchemaResult:
    """The schema errors of one document, as (field path, message), and CEL rules left unevaluated."""

    errors: list[tuple[str, ...]] = field(default_factory=list)
    """(field, message), or (field, message, policy id) for a rule with an id (MLOPS040)."""
    cel_unevaluated: Counter[str] = field(default_factory=Counter)


def split_api_version(api_version: str) -> tuple[str, str]:
    """Return (group, version); the core group is the empty string."""
    group, _, version = api_version.rpartition("/")
    return group, version


def is_core_group(group: str) -> bool:
    """Whether `group` is served by Kubernetes itself (`""`, `apps`, `*.k8s.io`)."""
    return "." not in group or group.endswith(".k8s.io")


QUANTITY_FORMAT = jsonschema.FormatChecker(formats=())
"""Checks `format: quantity` (core `resource.Quantity` fields, CRD quantity fields) and no other format."""


@QUANTITY_FORMAT.checks("quantity")
def _is_quantity(value: object) -> bool:
    return not isinstance(value, str) or "{{" in value or parse_quantity(value) is not None


class CoreSchemas:
    """The strict Kubernetes schemas from kubernetes-validate, loaded once per process."""

    def __init__(self, version: str = KUBERNETES_VERSION) -> None:
        """Find the schema folder for `version` inside the kubernetes-validate package."""
        import importlib.resources

        import kubernetes_validate.utils as kv
        from referencing import Registry, Resource

        self.version = version
        schema_version = [v for v in kv.all_versions() if kv.major_minor(v) == version][-1]
        self._folder = f"kubernetes-json-schema/v{schema_version}-local-strict"
        self._root = importlib.resources.files("kubernetes_validate").joinpath(self._folder)
        definitions = kv.schema_contents(f"{self._folder}/_definitions.json", version)
        # Every core quantity field (requests, limits, sizeLimit, a quota's hard) refs this one.
        definitions["$defs"]["io.k8s.apimachinery.pkg.api.resource.Quantity"]["format"] = "quantity"
        self._registry = Resource.from_contents(definitions) @ Registry()
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator | None] = {}
        # CRD schemas leave `metadata` open (the API server checks it): check it as ObjectMeta here.
        self.object_meta = jsonschema.Draft202012Validator(
            {"$ref": f"{definitions['$id']}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
            registry=self._registry,
        )

    def validator(self, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
        """Return the validator of a core kind, or None when Kubernetes has no such kind."""
        key = (api_version, kind)
        if key not in self._validators:
            # kubernetes-validate's file naming: rbac.authorization.k8s.io/v1 Role -> role-rbac-v1.json
            suffix = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            path = self._root.joinpath(f"{kind.lower()}-{suffix}.json")
            if not path.is_file():
                self._validators[key] = None
            else:
                schema = json.loads(path.read_text())
                self._validators[key] = jsonschema.Draft202012Validator(
                    schema, registry=self._registry, format_checker=QUANTITY_FORMAT
                )
        return self._validators[key]


class Schemas:
    """Every schema validation needs: core kinds and the CRDs of one directory."""

    def __init__(self, crds_dir: Path) -> None:
        """Index the CRDs of `crds_dir` (from the disk cache when current)."""
        self.crds = CrdIndex(crds_dir)
        self.core = CoreSchemas()
        self._crd_validators: dict[tuple[str, str, str], jsonschema.protocols.Validator] = {}

    def check(self, doc: dict[str, Any], *, templated: bool = False) -> SchemaResult:
        """Validate `doc` strictly; with `templated`, Argo `{{...}}` expressions stand for any valid value."""
        result = SchemaResult()
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            result.errors.append(("", "no apiVersion/kind: every manifest needs both"))
            return result
        group, version = split_api_version(api_version)
        if self.crds.has_group(group) or not is_core_group(group):
            validator, cel_schema = self._crd_validator(group, kind, version, result)
        else:
            validator, cel_schema = self.core.validator(api_version, kind), None
            if validator is None:
                result.errors.append(
                    (
                        "",
                        f"no schema for {api_version} {kind} in Kubernetes {self.core.version}: "
                        "fix the kind or apiVersion",
                    )
                )
        if validator is None:
            return result
        subject = _substitute_templates(validator, doc) if templated else doc
        errors = list(validator.iter_errors(subject))
        if cel_schema is not None and isinstance(subject.get("metadata"), dict):
            errors += [_under("metadata", e) for e in self.core.object_meta.iter_errors(subject["metadata"])]
        for error in errors:
            if templated and _is_templated(error):
                continue  # e.g. a pattern on a string that Argo fills in at run time
            result.errors.extend(_describe(error))
        if cel_schema is not None:
            outcome = cel.evaluate(cel_schema, subject)
            result.errors.extend(outcome.violations)
            result.cel_unevaluated.update(outcome.unevaluated)
        return result

    def _crd_validator(
        self, group: str, kind: str, version: str, result: SchemaResult
    ) -> tuple[jsonschema.protocols.Validator | None, dict[str, Any] | None]:
        crd = self.crds.get(group, kind, version)
        if crd is None:
            versions = self.crds.versions(group, kind)
            if versions:
                hint = f"the CRDs define {group}/{kind} only at {', '.join(versions)}: use one of them"
            else:
                hint = (
                    f"no CRD in {self.crds.crds_dir} defines kind {kind} in group {group or '(core)'}: "
                    "fix the kind or add the upstream CRD to the --crds directory"
                )
            result.errors.append(("", f"no schema for {group}/{version} {kind}: {hint}"))
            return None, None
        key = (group, kind, version)
        if key not in self._crd_validators:
            self._crd_validators[key] = jsonschema.Draft4Validator(crd.schema, format_checker=QUANTITY_FORMAT)
        return self._crd_validators[key], crd.schema


def _under(key: str, error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Return `error` as if raised for `doc[key]` (its path starts with `key`)."""
    error.path.appendleft(key)
    return error


def _describe(error: jsonschema.ValidationError) -> list[tuple[str, ...]]:
    """Turn one jsonschema error into (field, message) lines; unknown fields get one line each."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties") or {})
        patterns = list(error.schema.get("patternProperties") or {})
        unknown = [
            name
            for name in error.instance
            if name not in allowed and not any(re.search(p, name) for p in patterns)
        ]
        if unknown:
            return [(field_path([*path, name]), f'unknown field "{name}"') for name in unknown]
    if error.validator == "format" and error.validator_value == "quantity":
        return [(field_path(path), not_a_quantity(error.instance), "MLOPS040")]
    if error.validator in ("oneOf", "anyOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return [(field_path(path), best.message)]
    return [(field_path(path), error.message)]


def _substitute_templates(validator: jsonschema.protocols.Validator, doc: dict[str, Any]) -> dict[str, Any]:
    """Replace Argo `{{...}}` expressions that the schema rejects with a sample value it accepts.

    Argo fills `{{inputs.parameters.workers}}` in at run time, so a field typed integer holds
    a string in the committed manifest. Each such string is swapped for a sample of the
    wanted type (integer 1, number 1.0, boolean true, or the first enum value) and the object
    is checked again; an expression inside a string field already passes as is. Errors on
    strings without an expression are left for the caller to report.
    """
    doc = copy.deepcopy(doc)
    for _ in range(5):
        changed = False
        for error in validator.iter_errors(doc):
            for leaf in _leaf_errors(error):
                value = leaf.instance
                if not (isinstance(value, str) and _TEMPLATE_EXPR.search(value)):
                    continue
                sample = _sample(leaf)
                if sample is not _NO_SAMPLE and _set(doc, list(leaf.absolute_path), sample):
                    changed = True
        if not changed:
            break
    return doc


_NO_SAMPLE = object()


def _is_templated(error: jsonschema.ValidationError) -> bool:
    """Whether every leaf of `error` is about a string holding an Argo expression."""
    return all(
        isinstance(leaf.instance, str) and _TEMPLATE_EXPR.search(leaf.instance)
        for leaf in _leaf_errors(error)
    )


def _leaf_errors(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    if error.context:
        return [leaf for sub in error.context for leaf in _leaf_errors(sub)]
    return [error]


def _sample(error: jsonschema.ValidationError) -> Any:
    if error.validator == "enum" and error.validator_value:
        return error.validator_value[0]
    if error.validator == "type":
        wanted = error.validator_value
        wanted = wanted if isinstance(wanted, list) else [wanted]
        for kind, sample in (("integer", 1), ("number", 1.0), ("boolean", True)):
            if kind in wanted:
                return sample
    return _NO_SAMPLE


def _set(doc: Any, path: list[Any], value: Any) -> bool:
    if not path:
        return False
    target = doc
    for part in path[:-1]:
        target = target[part]
    if target[path[-1]] == value:
        return False
    target[path[-1]] = value
    return True
