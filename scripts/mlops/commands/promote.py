"""`mlops promote`: put a registered, gate-passed model version into an environment through git."""

from __future__ import annotations

import argparse

from mlops.conventions.environments import check_env
from mlops.conventions.paths import find_repo_root


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `mlops promote`."""
    parser = subparsers.add_parser(
        "promote",
        help="promote a model version to an environment (commit + push; PR for prod)",
        description=(
            "Check the version in the MLflow registry (MLFLOW_TRACKING_URI) and its evaluation gate, "
            "edit overlays/ENV/models/MODEL/model-version.yaml as the remote branch has it, commit with "
            "trailers, push (dev: to the branch; prod, or --propose: to branch promote/MODEL-VERSION-prod "
            "or the --propose branch, and a pull request when GITHUB_TOKEN is set), then point the MLflow "
            "alias ENV at it (for a pull request, the deployment's Argo CD Sync hook does once it is merged)."
        ),
    )
    parser.add_argument("--env", required=True, type=check_env, help="environment: dev or prod")
    parser.add_argument("--model", required=True, help="model name (folder and registered model name)")
    parser.add_argument("--version", required=True, help="registered model version (1, 2, ...)")
    parser.add_argument(
        "--canary",
        action="store_true",
        help="the model's canary deployment: overlays/ENV/models/MODEL-canary/, MLflow alias ENV-canary",
    )
    parser.add_argument("--workflow", help="the Argo workflow asking for it (commit trailer Workflow:)")
    parser.add_argument("--remote", default="origin", help="git remote to push to (default: origin)")
    parser.add_argument("--branch", default="main", help="branch Argo CD follows (default: main)")
    parser.add_argument(
        "--propose",
        metavar="NEW_BRANCH",
        help="push to this new branch and open a pull request into --branch instead of pushing to it "
        "(dev's review path; prod always goes through a pull request)",
    )
    parser.add_argument(
        "--automated",
        action="store_true",
        help="the caller is automation (the git-bot): refuse versions a rollback held back",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from mlops.release.promotion import promote

    promote(
        find_repo_root(), env=args.env, model=args.model, version=args.version, workflow=args.workflow,
        remote=args.remote, branch=args.branch, canary=args.canary, automated=args.automated,
        propose=args.propose,
    )  # fmt: skip
    return 0
