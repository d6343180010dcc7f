"""`mlops render ENV [COMPONENT]`: print the rendered manifests of an environment."""

from __future__ import annotations

import argparse
import sys

from mlops.conventions.environments import ENVS, check_env
from mlops.conventions.paths import find_repo_root


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `mlops render`."""
    parser = subparsers.add_parser(
        "render", help="print the rendered manifests of an environment (or one component)"
    )
    parser.add_argument("env", type=check_env, metavar="{" + ",".join(ENVS) + "}", help="environment")
    parser.add_argument(
        "component", nargs="?", help="component, e.g. mlflow, models/support-chat, cluster (default: all)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the manifests; a failed build is an error naming its folder."""
    from mlops.rendering.render import render_text

    sys.stdout.write(render_text(find_repo_root(), args.env, args.component))
    return 0
