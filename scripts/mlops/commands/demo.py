"""`mlops demo`: the whole loop locally (validate, train, register, promote, diff, serve, chat)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.conventions.paths import find_repo_root


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `mlops demo`."""
    parser = subparsers.add_parser(
        "demo",
        help="run the platform's loop on this machine: validate, train, promote, serve, chat",
        description="Runs on the committed HEAD with local stand-ins: MLflow on SQLite with the cluster's "
        "basic-auth app and roles (logins generated per run, in .mlops/demo/mlflow-auth), a local bare "
        "git remote, CPU training with 2 ranks, vLLM's CPU build (in .venv-vllm, installed on first "
        "use) started with the dev Deployment's flags, behind the gateway. "
        "Everything lands in .mlops/demo/ (emptied at the start of each run).",
    )
    parser.add_argument(
        "--crds",
        type=Path,
        help="directory of upstream CRDs (default: $MLOPS_CRDS_DIR, else the schemas packaged with the CLI, "
        "scripts/mlops/crd_schemas)",
    )
    parser.add_argument(
        "--canary",
        action="store_true",
        help="instead: one bad canary behind the gateway, judged from a local Prometheus by "
        "`mlops canary analyze` and rolled back by a commit (about 30 s; needs the prometheus binary)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from mlops.local.demo import run_demo

    if args.canary:
        from mlops.local.canary_demo import run_canary_demo

        run_canary_demo(find_repo_root())
        return 0

    run_demo(find_repo_root(), args.crds.resolve() if args.crds else None)
    return 0
