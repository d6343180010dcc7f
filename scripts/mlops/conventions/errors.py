"""Errors the CLI reports as one clear line and an exit code, without a traceback."""

from __future__ import annotations


class MlopsError(Exception):
    """A user-facing error: the message names the file, resource or field and what to do."""

    exit_code: int = 2


class InputError(MlopsError):
    """A value given to promote, rollback or the workflow is malformed; nothing was read or changed."""


def shown(value: object) -> str:
    """Return the value as a message shows it: quoted, escapes visible, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
