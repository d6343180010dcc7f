"""`mlops workflows compile|run-local`: the training workflows' YAML and a local run of their steps."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlops.conventions.paths import find_repo_root


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `mlops workflows` and its sub-commands."""
    parser = subparsers.add_parser("workflows", help="compile the Argo workflows, or run their steps locally")
    commands = parser.add_subparsers(dest="workflows_command", required=True, metavar="SUBCOMMAND")

    compile_parser = commands.add_parser(
        "compile", help="write the workflow YAML (base + overlay patches) from workflows/*.py"
    )
    compile_parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when the committed YAML differs"
    )
    compile_parser.set_defaults(func=_compile)

    local = commands.add_parser(
        "run-local",
        help="run train-and-promote's steps on this machine: train (torchrun), evaluate, promote",
    )
    local.add_argument(
        "--remote", required=True, help="git remote (a bare repository) that promote pushes to"
    )
    local.add_argument(
        "--work-dir", type=Path, help="where the run keeps its files (default: .mlops/run-local)"
    )
    local.add_argument(
        "--mlflow-tracking-uri", help="MLflow to use (default: $MLFLOW_TRACKING_URI, else SQLite)"
    )
    local.add_argument("--nproc", default="2", help="torchrun processes (default: 2)")
    local.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a workflow parameter, e.g. --set max-steps=4 (repeatable)",
    )
    local.set_defaults(func=_run_local)


def _compile(args: argparse.Namespace) -> int:
    from mlops.workflow_bridge import workflow_compiler

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


def _run_local(args: argparse.Namespace) -> int:
    from mlops.workflow_bridge import workflow_local

    repo = find_repo_root()
    overrides = workflow_local.parse_overrides(args.set)
    outcome = workflow_local.run_local(
        repo,
        remote=args.remote,
        work_dir=args.work_dir or repo / ".mlops" / "run-local",
        tracking_uri=args.mlflow_tracking_uri,
        nproc=args.nproc,
        overrides=overrides,
    )
    return 0 if outcome.status == "Succeeded" else 1
