"""`mlops images`: the platform images the overlays need (`needed`), and pinning them (`pin`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.conventions.environments import check_env
from mlops.conventions.errors import MlopsError
from mlops.conventions.paths import find_repo_root


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `mlops images` and its sub-commands `needed` and `pin`."""
    parser = subparsers.add_parser("images", help="the platform images the overlays run (needed, pin)")
    commands = parser.add_subparsers(dest="images_command", required=True, metavar="SUBCOMMAND")
    needed = commands.add_parser(
        "needed",
        help="list every mlops/<image>:<tag> the rendered overlays pull, and the releases that push them",
        description=(
            "Render the environments and print one line per mlops/IMAGE:TAG their manifests run, "
            "with the environments that run it, then one `cut release vX.Y.Z` line per release tag "
            "among them: the releases whose images workflow must have finished before the first apply. "
            "Tags set at run time (a workflow's own build) are printed as such."
        ),
    )
    needed.add_argument("--env", type=check_env, help="only this environment (default: all)")
    needed.set_defaults(func=_needed)
    pin = commands.add_parser(
        "pin",
        help="set the overlays' mlops/<image> entries to a release tag and its digest",
        description=(
            "Rewrite every kustomize `images:` entry named mlops/IMAGE under overlays/ENV to "
            "`newTag: RELEASE` and `digest: DIGEST`, keeping comments and key order; kustomize then "
            "renders IMAGE:RELEASE@DIGEST. The images workflow runs it on a release tag with the "
            "digests it pushed and proposes the change as a pull request. Exit 2, nothing changed, "
            "on a malformed digest or an image .github/workflows/images.yaml does not build."
        ),
    )
    pin.add_argument("--env", required=True, type=check_env, help="environment: dev or prod")
    pin.add_argument("--release", required=True, help="the release the digests belong to: X.Y.Z")
    pin.add_argument(
        "--digests",
        type=Path,
        metavar="FILE",
        help="a file of 'IMAGE sha256:<64 hex>' lines ('-' reads stdin)",
    )
    pin.add_argument("pins", nargs="*", metavar="IMAGE=DIGEST", help="e.g. gateway=sha256:<64 hex>")
    pin.set_defaults(func=_pin)


def _needed(args: argparse.Namespace) -> int:
    from mlops.conventions.environments import ENVS
    from mlops.rendering.render import render_envs
    from mlops.validate.env_rules.delivery import needed_images

    envs = (args.env,) if args.env else ENVS
    repo = find_repo_root()
    images = needed_images(render_envs(repo, envs), envs, repo)
    for image in images:
        kind = "release" if image.release else "set at run time" if "{{" in image.tag else "commit build"
        print(f"mlops/{image.name}:{image.tag}  {kind}  {', '.join(image.envs)}")
    for release in sorted(
        {i.release for i in images if i.release}, key=lambda r: tuple(map(int, r[1:].split(".")))
    ):
        names = ", ".join(sorted({i.name for i in images if i.release == release}))
        print(f"cut release {release} (the overlays pull {names} at it)")
    return 0


def _pin(args: argparse.Namespace) -> int:
    import sys

    from mlops.release.image_pins import parse_pins, pin_images

    lines: list[str] = []
    if args.digests is not None:
        if str(args.digests) == "-":
            lines = sys.stdin.read().splitlines()
        elif args.digests.is_file():
            lines = args.digests.read_text().splitlines()
        else:
            raise MlopsError(f"digest list {args.digests} is not a file")
    pins = parse_pins(args.pins, lines)
    done, unused = pin_images(find_repo_root(), args.env, args.release, pins)
    for pin in done:
        print(f"{pin.path}: mlops/{pin.image} {pin.old or '(no tag)'} -> {pin.new}")
    for image in unused:
        print(f"mlops/{image}: no images: entry under overlays/{args.env} names it; left as is")
    return 0
