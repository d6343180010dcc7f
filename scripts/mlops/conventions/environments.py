"""The environments of the platform, and the one check of an environment name.

Every command takes an environment through `check_env` as its argparse `type=`, and every
library entry point (promote, rollback, canary analysis, render) calls it too. Importing this
module costs nothing, so read-only commands (diff, status, registry, render, validate) need
not import the write path for the check.
"""

from __future__ import annotations

from mlops.conventions.errors import InputError, shown

ENVS: tuple[str, ...] = ("dev", "prod")
"""Every environment that has an overlay and a cluster root."""

PR_ENVS: tuple[str, ...] = ("prod",)
"""Environments whose changes go through a pull request instead of a push to the main branch."""


def check_env(env: str) -> str:
    """Return `env` if it is a known environment; commands use it as their argparse `type=`.

    It raises `InputError`, not `argparse.ArgumentTypeError`, on purpose: the CLI reports it like
    every other bad input (one `error: ...` line, exit 2, nothing changed), and library callers
    (promote, rollback, canary analysis) get the same message.

    Raises:
        InputError: naming the value (escapes visible) and the known environments.
    """
    if env not in ENVS:
        raise InputError(f"unknown environment {shown(env)}: use one of {', '.join(ENVS)}")
    return env
