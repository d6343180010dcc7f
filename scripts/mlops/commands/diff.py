"""`mlops diff`: what a change does to the rendered manifests of every environment, as PR markdown."""

from __future__ import annotations

import argparse

from mlops.manifest_diff import diff_markdown
from mlops.paths import ENVS, find_repo_root
from mlops.promotion import check_env


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `mlops diff`."""
    parser = subparsers.add_parser(
        "diff",
        help="render every environment at a git ref and in the working tree; print the diff as markdown",
    )
    parser.add_argument("--base", default="HEAD", help="git ref to compare against (default: HEAD)")
    parser.add_argument("--env", action="append", help="only this environment (repeatable; default: all)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    envs = tuple(check_env(e) for e in args.env) if args.env else ENVS
    print(diff_markdown(find_repo_root(), args.base, None, envs=envs), end="")
    return 0
