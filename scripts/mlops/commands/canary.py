"""`mlops canary analyze`: judge a canary from Prometheus; commit wait/start/advance/finish/abort."""

from __future__ import annotations

import argparse

from mlops.conventions.environments import check_env
from mlops.conventions.paths import find_repo_root


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `mlops canary`."""
    parser = subparsers.add_parser(
        "canary", help="canary analysis: judge a canary from live metrics and commit the decision"
    )
    sub = parser.add_subparsers(dest="canary_command", required=True, metavar="SUBCOMMAND")
    analyze_parser = sub.add_parser(
        "analyze",
        help="compare the canary with stable over the current step and commit the decision",
        description=(
            "Read overlays/ENV/models/MODEL/canary-plan.yaml and the routes on the remote branch, ask "
            "Prometheus what the gateway measured for the canary and stable backends since the step "
            "began, and decide: wait, start, advance (next weight), finish (canary version becomes "
            "stable) or abort (weight 0, version held back). A decision that changes something is a "
            "commit with Canary-* trailers; abort is pushed to the branch in every environment, the "
            "others open a pull request in prod. docs/promotion.md, Canary analysis."
        ),
    )
    analyze_parser.add_argument("--env", required=True, type=check_env, help="environment: dev or prod")
    analyze_parser.add_argument("--model", required=True, help="model name")
    analyze_parser.add_argument(
        "--prometheus",
        help="Prometheus base URL (default: $PROMETHEUS_URL, else the in-cluster service; from a laptop "
        "port-forward it and pass http://127.0.0.1:9090)",
    )
    analyze_parser.add_argument("--workflow", help="the Argo workflow running it (commit trailer Workflow:)")
    analyze_parser.add_argument("--remote", default="origin", help="git remote to push to (default: origin)")
    analyze_parser.add_argument("--branch", default="main", help="branch Argo CD follows (default: main)")
    analyze_parser.add_argument("--dry-run", action="store_true", help="decide and print; commit nothing")
    analyze_parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from mlops.release.canary_analysis import analyze

    analyze(
        find_repo_root(), env=args.env, model=args.model, prometheus_url=args.prometheus,
        workflow=args.workflow, remote=args.remote, branch=args.branch, dry_run=args.dry_run,
    )  # fmt: skip
    return 0
