"""Argo expression tags that put a value into a manifest's text as a JSON literal, and back.

Argo substitutes a simple tag (`{{workflow.parameters.dataset}}`) into a resource template's
manifest as plain text, so a value holding a quote and a line break can add YAML fields. An
expression tag `{{=toJson(...)}}` is replaced by a JSON string literal instead: quoted and
escaped, one scalar whatever the value holds (Argo's docs/variables.md: `toJson`, and
`inputs.parameters['my-param']` for hyphenated names).

`json_expression` writes such a tag for a text with simple tags in it; `plain_text` reads it
back into that text, so `mlops validate` and the tests see the value a field takes
(`{{inputs.parameters.registry}}/mlops/trainer:{{inputs.parameters.commit}}`).
"""

from __future__ import annotations

import re

_SIMPLE_TAG = re.compile(r"\{\{([^{}=][^{}]*)\}\}")
_JSON_TAG = re.compile(r"\{\{=toJson\(([^\n]*?)\)\}\}")
_TERM = re.compile(
    r"\s*(?:'((?:[^'\\]|\\.)*)'|([a-z]+)\.parameters\['([A-Za-z0-9_-]+)'\]|([a-z]+\.[a-z]+))\s*"
)


def _accessor(tag: str) -> str:
    """Return the expression reading an Argo variable (`workflow.parameters['model-name']`)."""
    scope, _, name = tag.strip().partition(".parameters.")
    return f"{scope}.parameters['{name}']" if name else tag.strip()


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def json_expression(text: str) -> str:
    """Return an expression tag whose result is `text`, its simple tags substituted, as a JSON string.

    `--nproc_per_node={{inputs.parameters.gpus}}` becomes
    `{{=toJson('--nproc_per_node=' + inputs.parameters['gpus'])}}`.
    """
    parts: list[str] = []
    position = 0
    for match in _SIMPLE_TAG.finditer(text):
        if match.start() > position:
            parts.append(_literal(text[position : match.start()]))
        parts.append(_accessor(match.group(1)))
        position = match.end()
    if position < len(text) or not parts:
        parts.append(_literal(text[position:]))
    return "{{=toJson(" + " + ".join(parts) + ")}}"


def _terms(expression: str) -> list[tuple[str, str]]:
    """Split `'lit' + scope.parameters['x'] + workflow.name` into ("literal"|"tag", text) terms."""
    terms = []
    for piece in re.split(r"\+(?=(?:[^']*'[^']*')*[^']*$)", expression):
        match = _TERM.fullmatch(piece)
        if not match:
            raise ValueError(f"not a concatenation of literals and variables: {expression!r}")
        literal, scope, name, variable = match.groups()
        if literal is not None:
            terms.append(("literal", re.sub(r"\\(.)", r"\1", literal)))
        elif scope is not None:
            terms.append(("tag", f"{scope}.parameters.{name}"))
        else:
            terms.append(("tag", variable))
    return terms


def plain_text(manifest: str) -> str:
    """Return `manifest` with each `json_expression` tag written back as a YAML string of simple tags."""

    def back(match: re.Match[str]) -> str:
        text = "".join(t if kind == "literal" else "{{" + t + "}}" for kind, t in _terms(match.group(1)))
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return _JSON_TAG.sub(back, manifest)


def substitute(manifest: str, values: dict[str, str]) -> str:
    """Return `manifest` as Argo submits it: simple tags replaced as plain text, JSON tags as JSON literals.

    `values` maps a variable (`workflow.parameters.dataset`, `inputs.parameters.gpus`) to its
    value. Expression tags other than `json_expression`'s (`asInt(...)`) are left as they are.
    """
    import json

    def as_json(expression: str) -> str:
        text = "".join(t if kind == "literal" else values[t] for kind, t in _terms(expression))
        # what Go's json.Marshal (Argo's toJson) writes: UTF-8 kept, <, >, &, U+2028/9 escaped
        out = json.dumps(text, ensure_ascii=False)
        for ch in "<>&\u2028\u2029":
            out = out.replace(ch, f"\\u{ord(ch):04x}")
        return out

    def one(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return as_json(match.group(1))
        return values.get(match.group(2).strip(), match.group(0))

    # one pass, as Argo's: a substituted value is never scanned for tags again
    return re.sub(f"{_JSON_TAG.pattern}|{_SIMPLE_TAG.pattern}", one, manifest)
