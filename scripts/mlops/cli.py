"""Entry point of the `mlops` console script: one sub-command per module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module named here exposes `add_parser(subparsers)`, which registers its
# sub-command and sets `func(args) -> int` as the default to call.
COMMAND_MODULES: tuple[str, ...] = (
    "mlops.commands.render",
    "mlops.commands.validate",
    "mlops.commands.promote",
    "mlops.commands.rollback",
    "mlops.commands.status",
    "mlops.commands.diff",
    "mlops.commands.workflows",
    "mlops.commands.demo",
    "mlops.commands.registry",
    "mlops.commands.canary",
    "mlops.commands.crds",
    "mlops.commands.images",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="mlops", description="GitOps MLOps platform: render, validate, promote, roll back."
    )
    parser.add_argument("--repo", help="repository root (default: found from the working directory)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    try:
        # inside the try: an argument's `type=` check (mlops.conventions.environments.check_env) raises
        # MlopsError, reported below as one line like any other bad input
        args = build_parser().parse_args(argv)
        if args.repo:
            import os

            os.environ["MLOPS_REPO"] = args.repo
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `mlops render dev | head`: the reader left; that is not an error of ours.
        sys.stderr.close()
        return 0
    except Exception as exc:  # a clear one-line error, not a traceback, for user errors
        from mlops.conventions.errors import MlopsError

        if isinstance(exc, MlopsError):
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        raise
