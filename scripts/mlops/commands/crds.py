"""`mlops crds refresh`: rebuild the CRD schemas packaged with the CLI, and their lock, from upstream."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from mlops.conventions.paths import find_repo_root

SCHEMA_DIR = Path("scripts/mlops/crd_schemas")
"""The packaged schemas' folder in the repository (what `mlops validate` reads by default)."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `mlops crds` and its sub-command."""
    parser = subparsers.add_parser("crds", help="the CRD schemas packaged with the CLI")
    commands = parser.add_subparsers(dest="crds_command", required=True, metavar="SUBCOMMAND")
    refresh = commands.add_parser(
        "refresh",
        help="rewrite scripts/mlops/crd_schemas and its lock from upstream CRD files",
        description="Compact every pinned upstream CRD file "
        "(mlops.validate.schema_checks.packaged_crds.SOURCES) into scripts/mlops/crd_schemas/ and rewrite "
        "crds.lock. Reads --upstream DIR (laid out "
        "<project>-<version>/<file>, like ../shared/crds); with --download, fetches the files from the "
        "pinned release URLs first (network), into DIR when given.",
    )
    refresh.add_argument("--upstream", type=Path, metavar="DIR", help="folder of upstream CRD files")
    refresh.add_argument(
        "--download",
        action="store_true",
        help="fetch the pinned upstream files first (the only use of network)",
    )
    refresh.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when the packaged schemas or lock differ"
    )
    refresh.set_defaults(func=_refresh)


def _refresh(args: argparse.Namespace) -> int:
    from mlops.validate.schema_checks import packaged_crds

    if not args.upstream and not args.download:
        raise packaged_crds.PackagedCrdsError(
            "pass --upstream DIR (upstream CRD files laid out <project>-<version>/<file>) or --download"
        )
    schema_dir = find_repo_root() / SCHEMA_DIR
    with tempfile.TemporaryDirectory(prefix="mlops-crds-") as scratch:
        upstream = (args.upstream or Path(scratch)).resolve()
        if args.download:
            packaged_crds.download(upstream)
        bundle = packaged_crds.build(upstream)
    if args.check:
        differences = packaged_crds.differences(bundle, schema_dir)
        for line in differences:
            print(line)
        if differences:
            print(f"run `mlops crds refresh --upstream {upstream}` and commit the result")
            return 1
        print(f"{len(bundle.files)} packaged CRD files match {upstream}")
        return 0
    packaged_crds.write(bundle, schema_dir)
    megabytes = sum(len(content) for content in bundle.files.values()) / 1e6
    print(f"wrote {len(bundle.files)} CRD files ({megabytes:.1f} MB) and the lock to {schema_dir}")
    return 0
