"""`mlops validate [ENV...] [--crds DIR]`: render every environment and validate it strictly."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.conventions.environments import ENVS, check_env
from mlops.conventions.paths import default_crds_dir, find_repo_root


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `mlops validate`."""
    parser = subparsers.add_parser(
        "validate",
        help="render every kustomization and check schemas, CEL rules, policies and ApplicationSet coverage",
        description="One line per problem (FILE: KIND/NAME: FIELD: MESSAGE [ID: hint]), then a summary; "
        "exit code 1 on any problem. See docs/validation.md.",
    )
    parser.add_argument(
        "envs", nargs="*", type=check_env, metavar="ENV", help=f"{', '.join(ENVS)} (default: all)"
    )
    parser.add_argument(
        "--crds",
        type=Path,
        help="directory of upstream CRDs (default: $MLOPS_CRDS_DIR, else the schemas packaged with the CLI, "
        "scripts/mlops/crd_schemas)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the problems, the notices and the summary; 1 when anything needs fixing."""
    from mlops.validate.runner.engine import validate

    repo = find_repo_root()
    crds = args.crds.resolve() if args.crds else default_crds_dir(repo)
    envs = tuple(dict.fromkeys(args.envs)) or ENVS
    report = validate(repo, envs, crds)
    for problem in report.problems:
        print(problem)
    for notice in report.notices():
        print(notice)
    print(report.summary())
    return 0 if report.ok else 1
