"""`mlops rollback`: go back to the previous (or a given) version and hold the current one back."""

from __future__ import annotations

import argparse

from mlops.conventions.environments import check_env
from mlops.conventions.paths import find_repo_root


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `mlops rollback`."""
    parser = subparsers.add_parser(
        "rollback",
        help="roll a model back to its previous version and hold the current one back",
        description=(
            "Set the model's version file back to the previous version in the history of the remote "
            "branch (or --to), taking version, weightsUri and mlflowRun from git; record the current "
            "version in data.heldBack so automated promotes skip it; commit and push (prod: branch "
            "rollback/MODEL-VERSION-prod and a pull request, unless --emergency); point the MLflow alias "
            "back. A --canary rollback also sets the canary's route to weight 0. Without a reachable "
            "registry (MLFLOW_TRACKING_URI unset, MLflow down) it still commits, prints a warning naming "
            "what it could not check, and exits 0; the deployment's Sync hook moves the alias later. "
            "Exit 2 when the registry answers and its run for the version differs from git's mlflowRun."
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
    path = parser.add_mutually_exclusive_group()
    path.add_argument(
        "--emergency",
        metavar="REASON",
        help="push straight to --branch even in prod (no pull request); REASON becomes trailer Emergency:",
    )
    path.add_argument(
        "--propose",
        metavar="NEW_BRANCH",
        help="push to this new branch and open a pull request into --branch instead (dev's review path)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from mlops.release.rollback import rollback

    rollback(
        find_repo_root(), env=args.env, model=args.model, to=args.to, workflow=args.workflow,
        remote=args.remote, branch=args.branch, canary=args.canary, emergency=args.emergency,
        propose=args.propose,
    )  # fmt: skip
    return 0
