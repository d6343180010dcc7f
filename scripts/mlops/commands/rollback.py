"""`mlops rollback`: go back to the previous (or a given) version and hold the current one back."""

from __future__ import annotations

import argparse

from mlops.environments import check_env
from mlops.paths import find_repo_root


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `mlops rollback`."""
    parser = subparsers.add_parser(
        "rollback",
        help="roll a model back to its previous version and hold the current one back",
        description=(
            "Set the model's version file back to the previous version in its git history (or --to), "
            "record the current version in data.heldBack so automated promotes skip it, commit, push "
            "(prod: branch rollback/MODEL-VERSION-prod and a pull request), and point the MLflow alias back."
        ),
    )
    parser.add_argument("--env", required=True, type=check_env, help="environment: dev or prod")
    parser.add_argument("--model", required=True, help="model name")
    parser.add_argument("--to", help="version to roll back to (default: the previous one in git history)")
    parser.add_argument(
        "--canary",
        action="store_true",
        help="the model's canary deployment: overlays/ENV/models/MODEL-canary/, MLflow alias ENV-canary",
    )
    parser.add_argument("--workflow", help="the Argo workflow asking for it (commit trailer Workflow:)")
    parser.add_argument("--remote", default="origin", help="git remote to push to (default: origin)")
    parser.add_argument("--branch", default="main", help="branch Argo CD follows (default: main)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from mlops.rollback import rollback

    rollback(
        find_repo_root(), env=args.env, model=args.model, to=args.to, workflow=args.workflow,
        remote=args.remote, branch=args.branch, canary=args.canary,
    )  # fmt: skip
    return 0
