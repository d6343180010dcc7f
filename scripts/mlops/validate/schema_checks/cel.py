"""Evaluate the CEL rules (`x-kubernetes-validations`) of a CRD schema against a custom resource.

The API server runs these rules on admission; cel-python runs them here. Like the API
server, schema defaults are applied before a rule sees an object. Transition rules (those
that read `oldSelf`) need the stored object and are skipped: a new object has none. A rule
that cel-python cannot compile or evaluate (for example one that calls a Kubernetes CEL
library function cel-python lacks, such as `quantity()`) is counted, never silently dropped.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import pickle
import re
import tempfile
import types
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mlops.validate.objects.problems import field_path


@dataclass
class CelOutcome:
    """Rule violations found in one object, and the rules that could not be evaluated."""

    violations: list[tuple[str, str]] = field(default_factory=list)
    """(field path, message) of each failed rule."""
    unevaluated: Counter[str] = field(default_factory=Counter)
    """Rule text → how often it could not be evaluated."""


def _find(value: Any, pattern: Any) -> Any:
    """Kubernetes' regex library `find`: the first match of `pattern`, or the empty string."""
    from celpy import celtypes

    match = re.search(str(pattern), str(value))
    return celtypes.StringType(match.group(0) if match else "")


def _find_all(value: Any, pattern: Any, limit: Any = -1) -> Any:
    """Kubernetes' regex library `findAll`."""
    from celpy import celtypes

    found = re.findall(str(pattern), str(value))
    if int(limit) >= 0:
        found = found[: int(limit)]
    return celtypes.ListType([celtypes.StringType(f) for f in found])


def _split(value: Any, separator: Any, limit: Any = -1) -> Any:
    """Kubernetes' strings library `split`."""
    from celpy import celtypes

    parts = str(value).split(str(separator), int(limit) - 1 if int(limit) > 0 else -1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


_FUNCTIONS: dict[str, Any] = {"find": _find, "findAll": _find_all, "split": _split}


class _AstCache:
    """Parsed rules, kept on disk: building cel-python's parser costs more than checking a repository.

    The file is keyed by the versions of cel-python and its parser (`deciders`); it holds lark
    trees for rule texts seen before.
    """

    def __init__(self) -> None:
        from mlops.validate.schema_checks.crds import cache_root
        from mlops.validate.schema_checks.deciders import CEL_DISTRIBUTIONS, fingerprint

        self.path = cache_root() / f"cel-ast-{fingerprint(CEL_DISTRIBUTIONS)}.pickle"
        self.asts: dict[str, Any] = {}
        self.dirty = False
        try:
            with self.path.open("rb") as stream:
                self.asts = pickle.load(stream)
        except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError):
            self.asts = {}

    def get(self, rule: str) -> Any:
        if rule not in self.asts:
            self.asts[rule] = _parser().compile(rule)
            self.dirty = True
        return self.asts[rule]

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as stream:
                pickle.dump(self.asts, stream)
            os.replace(tmp, self.path)
            self.dirty = False
        except OSError:
            pass  # only costs speed next time


class _ResultCache:
    """Outcomes of (rule, value) pairs from earlier runs, kept on disk."""

    def __init__(self) -> None:
        from mlops.validate.schema_checks.crds import cache_root
        from mlops.validate.schema_checks.deciders import CEL_DISTRIBUTIONS, fingerprint

        self.path = cache_root() / f"cel-results-{fingerprint(CEL_DISTRIBUTIONS)}.json"
        self.used: dict[str, bool | None] = {}
        self.dirty = False
        try:
            self.outcomes: dict[str, bool | None] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.outcomes = {}

    def save(self) -> None:
        if not self.dirty:
            return
        # Keep what this run used plus the most recent others, so the file stays small.
        kept = dict(list(self.outcomes.items())[-_MAX_RESULTS:])
        kept.update(self.used)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
            with os.fdopen(fd, "w") as stream:
                json.dump(kept, stream)
            os.replace(tmp, self.path)
            self.dirty = False
        except OSError:
            pass


_MAX_RESULTS = 20_000


@functools.cache
def _results() -> _ResultCache:
    return _ResultCache()


@functools.cache
def _parser() -> Any:
    import celpy

    return celpy.Environment()


@functools.cache
def _asts() -> _AstCache:
    return _AstCache()


@functools.cache
def _environment() -> Any:
    """Return what a runner reads from a celpy Environment, without building its parser."""
    import celpy

    return types.SimpleNamespace(package=None, annotations=dict(celpy.googleapis))


@functools.cache
def _program(rule: str) -> Any:
    """Compile a rule once per process; raises when cel-python cannot parse it."""
    import celpy

    return celpy.InterpretedRunner(_environment(), _asts().get(rule), _FUNCTIONS)


def save_cache() -> None:
    """Write newly parsed rules and new outcomes to the disk cache (call once, after validating)."""
    if _asts.cache_info().currsize:
        _asts().save()
    if _results.cache_info().currsize:
        _results().save()


def is_transition_rule(rule: str) -> bool:
    """Whether a rule compares with the stored object (`oldSelf`), which a new object lacks."""
    return re.search(r"\boldSelf\b", rule) is not None


def evaluate(schema: dict[str, Any], obj: Any) -> CelOutcome:
    """Run every CEL rule in `schema` against `obj` (the whole custom resource)."""
    outcome = CelOutcome()
    _walk(schema, _with_defaults(schema, obj), [], outcome)
    return outcome


def _with_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Return `value` with the schema's `default`s filled in where a field is absent."""
    value = copy.deepcopy(value)
    _fill_defaults(schema, value)
    return value


def _fill_defaults(schema: dict[str, Any], value: Any) -> None:
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name, sub in props.items():
            if name not in value and isinstance(sub, dict) and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _fill_defaults(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                if name not in props:
                    _fill_defaults(extra, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _fill_defaults(schema["items"], item)


def _walk(schema: dict[str, Any], value: Any, path: list[Any], outcome: CelOutcome) -> None:
    if value is None or not isinstance(schema, dict):
        return
    for rule in schema.get("x-kubernetes-validations") or ():
        _check(rule, value, path, outcome)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name, sub in props.items():
            if name in value:
                _walk(sub, value[name], [*path, name], outcome)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                if name not in props:
                    _walk(extra, item, [*path, name], outcome)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _walk(schema["items"], item, [*path, index], outcome)


def _check(rule: dict[str, Any], value: Any, path: list[Any], outcome: CelOutcome) -> None:
    text = rule.get("rule", "")
    if not text or is_transition_rule(text):
        return
    passed = _run(text, json.dumps(value, sort_keys=True))
    if passed is None:
        outcome.unevaluated[text] += 1
    elif not passed:
        where = field_path([*path, *_field_path_parts(rule.get("fieldPath", ""))])
        message = rule.get("message") or f"failed rule: {text}"
        outcome.violations.append((where, f"{message} (CEL rule `{text}`)"))


def _run(rule: str, value_json: str) -> bool | None:
    """Evaluate `rule` on a value (given as JSON, so that equal values share one evaluation).

    Returns None when cel-python cannot compile or evaluate the rule. Outcomes are kept in
    the disk cache: a rule's outcome depends only on the rule and the value, and cel-python
    needs a few milliseconds per evaluation, which adds up over a repository.
    """
    results = _results()
    key = hashlib.sha256(f"{rule}\0{value_json}".encode()).hexdigest()[:32]
    if key in results.outcomes:
        results.used[key] = results.outcomes[key]
        return results.outcomes[key]
    outcome = _evaluate(rule, value_json)
    results.outcomes[key] = results.used[key] = outcome
    results.dirty = True
    return outcome


def _evaluate(rule: str, value_json: str) -> bool | None:
    from celpy import CELEvalError, json_to_cel

    try:
        result = _program(rule).evaluate({"self": json_to_cel(json.loads(value_json))})
    except Exception:  # cel-python raises CELEvalError, TypeError, lark errors...: all "cannot evaluate"
        return None
    if isinstance(result, CELEvalError):
        return None
    return bool(result)


def _field_path_parts(field_path_expr: str) -> list[str]:
    """Turn a rule's `fieldPath` (`.spec.replicas`) into path parts."""
    return [part for part in field_path_expr.split(".") if part]
