"""`mlops workflows compile`: the training workflows' YAML, generated from workflows/*.py."""

from __future__ import annotations

import argparse
import sys

from mlops.paths import find_repo_root


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `mlops workflows` and its sub-commands."""
    parser = subparsers.add_parser("workflows", help="compile the Argo workflows")
    commands = parser.add_subparsers(dest="workflows_command", required=True, metavar="SUBCOMMAND")

    compile_parser = commands.add_parser(
        "compile", help="write the workflow YAML (base + overlay patches) from workflows/*.py"
    )
    compile_parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when the committed YAML differs"
    )
    compile_parser.set_defaults(func=_compile)


def _compile(args: argparse.Namespace) -> int:
    from mlops import workflow_compiler

    repo = find_repo_root()
    if args.check:
        drifted = workflow_compiler.drifted(repo)
        if drifted:
            for path in drifted:
                print(f"{path}: differs from workflows/*.py", file=sys.stderr)
            print(
                f"generated workflow YAML is out of date: run `{workflow_compiler.COMPILE_COMMAND}`",
                file=sys.stderr,
            )
            return 1
        print("generated workflow YAML is up to date")
        return 0
    changed = workflow_compiler.write(repo)
    for path in changed:
        print(f"wrote {path}")
    if not changed:
        print("generated workflow YAML is up to date")
    return 0
