"""`mlops status`: per environment and deployment (stable, canary): version in git, MLflow alias, commit."""

from __future__ import annotations

import argparse
import json
import sys

from mlops.conventions.environments import ENVS, check_env
from mlops.conventions.paths import find_repo_root
from mlops.release.deployment_status import collect, to_table


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `mlops status`."""
    parser = subparsers.add_parser(
        "status", help="which model version each environment (and canary) runs, in git and MLflow"
    )
    parser.add_argument("--env", type=check_env, help="only this environment (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    envs = (args.env,) if args.env else ENVS
    rows = collect(find_repo_root(), envs)
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        print(to_table(rows), end="")
        if reasons := {row.registry_error for row in rows if row.registry_error}:
            print(f"MLflow alias unknown: {reasons.pop()}", file=sys.stderr)
    return 0
