"""The error a user can fix (bad path, bad flag, missing model) and how entrypoints report it."""

from __future__ import annotations

import sys

#: Exit status for a user error (same as argparse and the `mlops` CLI).
USER_ERROR = 2
#: Exit status of `trainer.evaluate` when the model misses the gate threshold.
GATE_FAILED = 1


class TrainerError(Exception):
    """A problem in the inputs that the user must fix; the message says what and how."""


def report(error: TrainerError, prog: str) -> int:
    """Print ``error: ...`` to stderr the way argparse does and return the user-error exit status."""
    print(f"{prog}: error: {error}", file=sys.stderr, flush=True)
    return USER_ERROR
