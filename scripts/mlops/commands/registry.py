"""`mlops registry sync-alias`: point an environment's MLflow alias at the version it runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.conventions import write_inputs
from mlops.conventions.deployment import Deployment
from mlops.conventions.environments import check_env
from mlops.conventions.errors import MlopsError
from mlops.release.registry import Registry, point_alias
from mlops.repository.model_version_file import read_deployed


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `mlops registry` and its sub-command `sync-alias`."""
    parser = subparsers.add_parser(
        "registry",
        help="MLflow registry chores (sync-alias)",
        description="MLflow registry chores that follow git; they never edit git.",
    )
    commands = parser.add_subparsers(dest="registry_command", required=True, metavar="SUBCOMMAND")
    sync = commands.add_parser(
        "sync-alias",
        help="point the MLflow alias ENV (ENV-canary for --canary) at the version a version file names",
        description=(
            "Point MLflow alias ENV (ENV-canary with --canary, or --alias) of the model at the version "
            "that the version file (or --model/--version) names, in the registry at MLFLOW_TRACKING_URI. "
            "No change when the alias already points there; exit 2 when the version is not registered. "
            "Argo CD runs it as a Sync hook of every model deployment, so the alias follows what "
            "was synced (a merged prod PR included). Never edits git."
        ),
    )
    sync.add_argument("--env", required=True, type=check_env, help="environment: dev or prod")
    sync.add_argument(
        "--version-file",
        type=Path,
        help="overlays/ENV/models/DEPLOYMENT/model-version.yaml, or the folder its ConfigMap is mounted at",
    )
    sync.add_argument("--model", help="registered model name (instead of --version-file)")
    sync.add_argument("--version", help="registered model version (instead of --version-file)")
    which = sync.add_mutually_exclusive_group()
    which.add_argument("--canary", action="store_true", help="the canary deployment: alias ENV-canary")
    which.add_argument("--alias", help="the alias to set (default: ENV, or ENV-canary with --canary)")
    sync.set_defaults(func=_sync_alias)


def _sync_alias(args: argparse.Namespace) -> int:
    env = args.env
    if args.version_file is not None:
        if args.model or args.version:
            raise MlopsError("pass either --version-file or --model and --version, not both")
        model, version = read_deployed(args.version_file)
    elif args.model and args.version:
        model, version = args.model, args.version
    else:
        raise MlopsError("say which version: --version-file PATH, or --model M --version V")
    # the same checks as promote, whether the values came from flags or from a (mounted) file
    write_inputs.check_model_name(model, "model")
    write_inputs.check_version(version)
    alias = args.alias or Deployment(env, model, args.canary).alias
    write_inputs.check_pattern("--alias", alias, write_inputs.ALIAS_PATTERN)
    registry = Registry()
    done = point_alias(registry, model, alias, version)
    if done.changed:
        print(
            f"MLflow alias {alias!r} of {model!r} -> version {version} "
            f"(was {done.previous or 'unset'}) in the registry at {registry.uri}"
        )
    else:
        print(f"MLflow alias {alias!r} of {model!r} already names version {version}: nothing to do")
    return 0
