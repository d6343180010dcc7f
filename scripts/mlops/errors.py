"""Errors the CLI reports as one clear line and an exit code, without a traceback."""

from __future__ import annotations


class MlopsError(Exception):
    """A user-facing error: the message names the file, resource or field and what to do."""

    exit_code: int = 2
