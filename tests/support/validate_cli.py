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


class ByFolder:
    """Printed lines, matched against `FOLDER: KIND/NAME: FIELD: MESSAGE` by the folder that rendered them.

    A problem about a rendered object names the file it came from: a file of the folder
    (`overlays/dev/mlflow/resources.yaml:13`) or a base's with the folder beside it
    (`base/mlflow/deployment.yaml:34 (overlays/dev/mlflow)`); one about a file gains its line
    (`.../model-version.yaml:9`). Tests about what a rule says
    (rather than which line it names: tests/validate/test_api_rules.py) expect the folder.
    """

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def __contains__(self, expected: object) -> bool:
        folder, _, rest = str(expected).partition(": ")
        for line in self.lines:
            if line == expected:
                return True
            where, _, tail = line.partition(": ")
            if tail == rest and (
                where.startswith((f"{folder}/", f"{folder}:")) or where.endswith(f" ({folder})")
            ):
                return True
        return False

    def __repr__(self) -> str:
        return "\n".join(self.lines)


def by_folder(lines: list[str]) -> ByFolder:
    """`lines` for `in` by the folder that rendered each problem's object (see ByFolder)."""
    return ByFolder(lines)


def plant(repo: Path, path: str, old: str, new: str) -> None:
    """Plant a defect: replace the first `old` in `repo/path` by `new` (failing if `old` is gone)."""
    file = repo / path
    text = file.read_text()
    assert old in text, f"{path} no longer contains {old!r}: update the planted defect"
    file.write_text(text.replace(old, new, 1))
