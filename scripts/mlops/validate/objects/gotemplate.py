"""A small Go `text/template` evaluator for ApplicationSet templates (`goTemplate: true`).

Argo CD renders ApplicationSet templates with Go templates and Sprig. Validation needs the
generated Applications' names, paths and namespaces, which use a small subset: field
access (`.path.basename`, `.metadata.labels.env`), `index`, `printf`, `default`, `lower`,
`upper`, `trimPrefix`, `trimSuffix`, `replace`, `quote`, `eq`/`ne`/`and`/`or`/`not` and
`if`/`else`/`end`. Anything else raises `TemplateError`, so a template this subset cannot
evaluate is reported, not guessed.
"""

from __future__ import annotations

import functools
import re
import shlex
from typing import Any


class TemplateError(ValueError):
    """The template uses syntax or a function this evaluator does not support, or a key is missing."""


_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)


def render(text: str, params: dict[str, Any]) -> str:
    """Render `text` (a string of an ApplicationSet template) with generator `params`."""
    tokens = _tokenize(text)
    out, rest = _render_block(tokens, params)
    if rest:
        raise TemplateError(f"unexpected {{{{{rest[0][1]}}}}}")
    return out


def render_object(obj: Any, params: dict[str, Any]) -> Any:
    """Render every string inside `obj` (keys and values)."""
    if isinstance(obj, dict):
        return {render_object(k, params): render_object(v, params) for k, v in obj.items()}
    if isinstance(obj, list):
        return [render_object(v, params) for v in obj]
    if isinstance(obj, str) and "{{" in obj:
        return render(obj, params)
    return obj


_Tokens = tuple[tuple[str, str], ...]


@functools.lru_cache(maxsize=4096)
def _tokenize(text: str) -> _Tokens:
    """Text and actions of a template string, parsed once: each is rendered for every generated app."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    for match in _ACTION.finditer(text):
        if match.start() > pos:
            tokens.append(("text", text[pos : match.start()]))
        tokens.append(("action", match.group(1)))
        pos = match.end()
    if pos < len(text):
        tokens.append(("text", text[pos:]))
    return tuple(tokens)


def _render_block(tokens: _Tokens, params: dict[str, Any]) -> tuple[str, _Tokens]:
    """Render until an `else`/`end` at this level; return the output and the remaining tokens."""
    out = []
    while tokens:
        kind, body = tokens[0]
        if kind == "text":
            out.append(body)
            tokens = tokens[1:]
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in ("else", "end"):
            return "".join(out), tokens
        if word == "if":
            condition = _truthy(_pipeline(body[2:].strip(), params))
            then, tokens = _render_block(tokens[1:], params)
            otherwise = ""
            if tokens and tokens[0][1].startswith("else"):
                if tokens[0][1].strip() != "else":
                    raise TemplateError(f"unsupported {{{{{tokens[0][1]}}}}}")
                otherwise, tokens = _render_block(tokens[1:], params)
            if not tokens or tokens[0][1] != "end":
                raise TemplateError("{{if}} without {{end}}")
            tokens = tokens[1:]
            out.append(then if condition else otherwise)
            continue
        if word in ("range", "with", "define", "template", "block"):
            raise TemplateError(f"unsupported action {{{{{body}}}}}")
        if body.startswith("/*"):
            tokens = tokens[1:]
            continue
        out.append(_to_text(_pipeline(body, params)))
        tokens = tokens[1:]
    return "".join(out), tokens


def _truthy(value: Any) -> bool:
    return bool(value) and value != "<no value>"


def _to_text(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pipeline(text: str, params: dict[str, Any]) -> Any:
    value: Any = _NOTHING
    for words in _commands(text):
        args: list[Any] = list(words)
        if value is not _NOTHING:
            args.append(_Literal(value))
        value = _call(args, params)
    return value


_NOTHING = object()


class _Literal:
    def __init__(self, value: Any) -> None:
        self.value = value


@functools.lru_cache(maxsize=4096)
def _commands(text: str) -> tuple[tuple[str, ...], ...]:
    """The words of each command of a pipeline, parsed once per pipeline text."""
    return tuple(tuple(_words(command)) for command in _split_pipes(text))


def _split_pipes(text: str) -> list[str]:
    parts, depth, current, quote = [], 0, "", ""
    for ch in text:
        if quote:
            current += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += ch
    parts.append(current.strip())
    return parts


def _words(command: str) -> list[str]:
    if "(" in command:
        raise TemplateError(f"unsupported parenthesised expression in {{{{{command}}}}}")
    try:
        return list(shlex.split(command, posix=True)) if command else []
    except ValueError as exc:
        raise TemplateError(f"cannot parse {{{{{command}}}}}: {exc}") from exc


def _value(word: Any, params: dict[str, Any]) -> Any:
    if isinstance(word, _Literal):
        return word.value
    if word.startswith("."):
        value: Any = params
        for part in [p for p in word.split(".") if p]:
            try:
                value = value[part] if isinstance(value, dict) else _missing(word)
            except KeyError:
                _missing(word)
        return value
    if re.fullmatch(r"-?\d+", word):
        return int(word)
    if word in ("true", "false"):
        return word == "true"
    return word  # a quoted string, already unquoted by shlex


def _missing(word: str) -> Any:
    raise TemplateError(f"map has no entry for key {word!r}")


def _call(args: list[Any], params: dict[str, Any]) -> Any:
    if not args:
        raise TemplateError("empty action")
    head = args[0]
    if isinstance(head, _Literal) or head.startswith(".") or head.startswith('"'):
        if len(args) != 1:
            raise TemplateError(f"cannot call {head}")
        return _value(head, params)
    values = [_value(a, params) for a in args[1:]]
    func = _FUNCTIONS.get(head)
    if func is None:
        if len(args) == 1:
            return _value(head, params)
        raise TemplateError(f"unsupported function {head!r}")
    return func(*values)


def _index(container: Any, *keys: Any) -> Any:
    for key in keys:
        try:
            container = container[int(key) if isinstance(container, list) else key]
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise TemplateError(f"index {key!r} out of range") from exc
    return container


def _printf(fmt: str, *values: Any) -> str:
    return re.sub(r"%[svdq]", "{}", fmt).format(*values)


_FUNCTIONS: dict[str, Any] = {
    "index": _index,
    "printf": _printf,
    "default": lambda fallback, value=None: value if value not in (None, "", "<no value>") else fallback,
    "lower": lambda s: str(s).lower(),
    "upper": lambda s: str(s).upper(),
    "trimPrefix": lambda prefix, s: str(s).removeprefix(prefix),
    "trimSuffix": lambda suffix, s: str(s).removesuffix(suffix),
    "replace": lambda old, new, s: str(s).replace(old, new),
    "quote": lambda s: f'"{s}"',
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "and": lambda *xs: all(_truthy(x) for x in xs),
    "or": lambda *xs: any(_truthy(x) for x in xs),
    "not": lambda x: not _truthy(x),
    "toString": str,
    "base": lambda s: str(s).rstrip("/").rsplit("/", 1)[-1],
    "dir": lambda s: str(s).rstrip("/").rsplit("/", 1)[0],
}
