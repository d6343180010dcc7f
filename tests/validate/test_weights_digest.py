"""MLOPS085: a model-version.yaml names a weights digest the model server's fetch can verify.

One copy of the repository gets the defects; `mlops validate` runs over both environments, once
with a digest left out and once with one cut short (prod has one model folder to plant in).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops.validate.objects.violations import HINTS
from support.validate_cli import by_folder, plant, validate_lines

DEV_MODEL = "overlays/dev/models/support-chat"
PROD_MODEL = "overlays/prod/models/support-chat"
BOOTSTRAP_LINES = (
    "  # Bootstrap: not served until the first promote removes this line (docs/first-apply.md).\n"
    "  - ../../../../base/models/components/bootstrap\n"
)


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    # dev leaves bootstrap mode by hand (the kustomization line removed) and keeps `none`.
    plant(repo_copy, f"{DEV_MODEL}/kustomization.yaml", BOOTSTRAP_LINES, "")
    # prod's file has no digest at all (a hand-written file, or one from before digests).
    plant(repo_copy, f"{PROD_MODEL}/model-version.yaml", "  weightsDigest: none\n", "")
    first = validate_lines(repo_copy, crds_dir, "dev", "prod")
    # prod names a digest cut short (still in bootstrap mode: only `none` or a digest pass there).
    plant(
        repo_copy,
        f"{PROD_MODEL}/model-version.yaml",
        '  version: "1"',
        '  version: "1"\n  weightsDigest: sha256:abc',
    )
    return first + validate_lines(repo_copy, crds_dir, "prod")


def _line(file: str, field: str, message: str) -> str:
    return f"{file}: ConfigMap/model-version: {field}: {message} [MLOPS085: {HINTS['MLOPS085']}]"


def test_none_outside_bootstrap_mode_is_refused(lines: list[str]) -> None:
    assert _line(
        f"{DEV_MODEL}/model-version.yaml",
        "data.weightsDigest",
        '"none" is only for a folder in bootstrap mode, and this one serves a version: promote it '
        "again (`mlops promote`) to write the version's sha256:<64 hex> digest",
    ) in by_folder(lines)


def test_a_malformed_digest_is_refused(lines: list[str]) -> None:
    assert _line(
        f"{PROD_MODEL}/model-version.yaml",
        "data.weightsDigest",
        "'sha256:abc' is not sha256:<64 lowercase hex> (the digest of the trainer's weights manifest)",
    ) in by_folder(lines)


def test_a_missing_digest_is_refused(lines: list[str]) -> None:
    assert _line(
        f"{PROD_MODEL}/model-version.yaml",
        "data.weightsDigest",
        "missing: the weights fetch verifies what it downloads against data.weightsDigest "
        "(sha256:<64 hex>, which `mlops promote` copies from the version's weights_digest tag); a folder "
        'in bootstrap mode says "none"',
    ) in by_folder(lines)


def test_only_the_planted_files_are_reported(lines: list[str]) -> None:
    assert len([line for line in lines if "[MLOPS085:" in line]) == 3
