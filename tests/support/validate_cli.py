"""Run `mlops validate` on a repository copy as a user would, and return its printed lines."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from mlops import cli


def validate_lines(repo: Path, crds_dir: Path, *envs: str, expect: int = 1) -> list[str]:
    """`mlops validate ENVS` against `repo` with the CRDs of `crds_dir`: its stdout lines.

    Asserts the exit code (1: problems found, the usual case for a copy with planted defects).
    """
    mp = pytest.MonkeyPatch()
    mp.setenv("MLOPS_REPO", str(repo))
    mp.setenv("MLOPS_CRDS_DIR", str(crds_dir))
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = cli.main(["validate", *envs])
    finally:
        mp.undo()
    assert code == expect
    return out.getvalue().splitlines()
