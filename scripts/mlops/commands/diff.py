"""`mlops diff`: what a change does to the rendered manifests of every environment, as PR markdown."""

from __future__ import annotations

import argparse

from mlops.conventions.environments import ENVS, check_env
from mlops.conventions.paths import find_repo_root
from mlops.rendering.manifest_diff import diff_markdown


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `mlops diff`."""
    parser = subparsers.add_parser(
        "diff",
        help="render every environment at a git ref and in the working tree; print the diff as markdown",
    )
    parser.add_argument(
        "--base",
        default="HEAD",
        help="git ref to compare against (default: HEAD); REF... compares with the merge base of REF and "
        "HEAD, so only what your branch changes shows (what CI posts: origin/main...)",
    )
    parser.add_argument(
        "--env", action="append", type=check_env, help="only this environment (repeatable; default: all)"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    envs = tuple(args.env) if args.env else ENVS
    print(diff_markdown(find_repo_root(), args.base, None, envs=envs), end="")
    return 0
