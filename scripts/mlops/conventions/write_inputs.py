"""The checks every value entering the write path passes first: versions, names, branches, trailer text.

Promote, rollback, `mlops registry sync-alias` and `mlops workflows run-local` (and, through the
patterns below, the first step of the `train-and-promote` workflow) check their inputs here
before anything reads the registry or writes to git, so a hostile or mistyped value fails with
one clear line, exit 2, and nothing changed. The patterns are plain regular expressions (Python
`re` and Go RE2 agree on them) so the workflow's check step can embed the same text.

Free text that reaches a commit (a `--workflow` name, a run id, a weights URI) must be one line
without control characters: a line break could start a forged trailer (`Version: 9`) or a
forged paragraph, and the audit trail in git must say only what promote wrote.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlparse

from mlops.conventions.deployment import CANARY_SUFFIX
from mlops.conventions.errors import InputError, shown

MAX_VERSION = 2**31 - 1
"""MLflow stores registered model versions in a 32-bit integer column; larger numbers cannot exist."""

MODEL_NAME_PATTERN = r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?"
"""A DNS-1123 label short enough that `<model>-canary-...` Kubernetes names stay within 63 characters."""
BRANCH_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}"
"""A conservative subset of git's branch names (git check-ref-format), further checked below."""
REMOTE_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}"
ALIAS_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,99}"
"""An MLflow alias as this platform names them (`dev`, `prod-canary`)."""
FREE_TEXT_MAX = 200
"""Longest free-text value (a trailer, a workflow parameter) accepted."""

_KNOWN_SCHEMES = (
    "http",
    "https",
    "file",
    "sqlite",
    "postgresql",
    "mysql",
    "mssql",
    "databricks",
    "databricks-uc",
)


def _full(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def check_version(version: str, what: str = "version") -> str:
    """Return `version` if it is an MLflow registered model version (1 .. 2147483647); raise otherwise.

    The whole string must be digits: a trailing newline or space is not the same version.
    """
    text = str(version)
    if not _full(r"[1-9][0-9]*", text):
        raise InputError(
            f"{what} {shown(text)} is not a registered model version: MLflow numbers versions 1, 2, 3, ..."
        )
    if int(text) > MAX_VERSION:
        raise InputError(
            f"{what} {shown(text)} is larger than any MLflow model version can be (at most {MAX_VERSION}): "
            "check the number"
        )
    return text


def check_model_name(model: str, what: str = "model name") -> str:
    """Return `model` if it can name a model folder, registered model and Kubernetes objects; else raise."""
    if not _full(MODEL_NAME_PATTERN, model):
        raise InputError(
            f"{what} {shown(model)} is not a model name: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 40 characters (like support-chat)"
        )
    if model.endswith(CANARY_SUFFIX):
        raise InputError(
            f"{what} {shown(model)} ends in {CANARY_SUFFIX!r}, which names a canary deployment: pass the "
            "model's own name and --canary"
        )
    return model


def check_branch(branch: str, what: str = "--branch") -> str:
    """Return `branch` if git accepts it as a branch name (and it is plain ASCII); raise otherwise."""
    malformed = (
        not _full(BRANCH_PATTERN, branch)
        or ".." in branch
        or "//" in branch
        or branch.endswith(("/", ".", ".lock"))
        or any(part.startswith(".") for part in branch.split("/"))
    )
    if malformed:
        raise InputError(
            f"{what} {shown(branch)} is not a valid git branch name: letters, digits, '.', '_', '-' "
            "and '/', no '..', no '//', not ending in '/', '.' or '.lock' (like main or release/1.2)"
        )
    return branch


def check_remote(remote: str) -> str:
    """Return `remote` if it can name a configured git remote; raise otherwise."""
    if not _full(REMOTE_PATTERN, remote):
        raise InputError(
            f"--remote {shown(remote)} is not a git remote name: letters, digits, '.', '_' and '-' "
            "(like origin)"
        )
    return remote


def control_characters(text: str) -> list[str]:
    """Return the control and line-separator characters in `text`, as escapes (empty when clean)."""
    found = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch not in found:
            found.append(ch)
    return [repr(ch)[1:-1] for ch in found]


def check_single_line(value: str, what: str) -> str:
    """Return `value` if it is one line of printable text, at most FREE_TEXT_MAX characters; else raise."""
    bad = control_characters(value)
    if bad:
        raise InputError(
            f"{what} {shown(value)} contains control characters ({', '.join(bad)}): it must be one line "
            "of printable text"
        )
    if len(value) > FREE_TEXT_MAX:
        raise InputError(f"{what} is {len(value)} characters long: at most {FREE_TEXT_MAX} are accepted")
    return value


def check_trailer_value(value: str, what: str) -> str:
    """Return `value` if it can follow `Key: ` in a commit trailer without adding or hiding one; else raise.

    One line (so it cannot start a new trailer), no control characters, not empty, no leading
    or trailing blanks (git trims them, so the trailer would say something else).
    """
    check_single_line(value, what)
    if not value.strip() or value != value.strip():
        raise InputError(
            f"{what} {shown(value)} is empty or starts or ends with blanks: commit trailers need a value"
        )
    return value


def check_tracking_uri(uri: str) -> str:
    """Return `uri` if it names an MLflow tracking server or store MLflow knows; raise otherwise."""
    check_single_line(uri, "MLFLOW_TRACKING_URI")
    parsed = urlparse(uri)
    scheme = parsed.scheme.split("+", 1)[0]
    if scheme not in _KNOWN_SCHEMES:
        raise InputError(
            f"MLFLOW_TRACKING_URI {shown(uri)} has no scheme MLflow knows "
            f"({'none' if not parsed.scheme else repr(parsed.scheme)}): write the server as "
            "http://HOST:PORT (or https://, sqlite:///PATH, postgresql://...)"
        )
    if scheme in ("http", "https") and not parsed.hostname:
        raise InputError(f"MLFLOW_TRACKING_URI {shown(uri)} names no host: write http://HOST:PORT")
    return uri


def check_pattern(name: str, value: str, pattern: str) -> str:
    """Return `value` if the whole of it matches `pattern`; raise naming the parameter and the pattern."""
    if control_characters(value) or not _full(pattern, value):
        raise InputError(f"parameter {name}={shown(value)} does not match {pattern}: fix the value")
    return value
