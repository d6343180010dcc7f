"""The `resolve-commit` step's script, run with git against a local remote: only commits on main pass."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from workflows.build_steps import MAIN_BRANCH, resolve_commit
from workflows.environments import BASE

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env={**os.environ, **GIT_ENV})  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def remote(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A bare remote with `main` (two commits) and an unmerged branch `feature` (one more)."""
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q", "-b", MAIN_BRANCH)
    commits = {}
    for name in ("first", "merged"):
        (work / name).write_text(name)
        _git(work, "add", name)
        _git(work, "commit", "-q", "-m", name)
        commits[name] = _git(work, "rev-parse", "HEAD")
    _git(work, "checkout", "-q", "-b", "feature")
    (work / "unmerged").write_text("unmerged")
    _git(work, "add", "unmerged")
    _git(work, "commit", "-q", "-m", "unmerged")
    commits["unmerged"] = _git(work, "rev-parse", "HEAD")
    _git(work, "tag", "v-unmerged")
    bare = tmp_path / "remote.git"
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare, commits


def _resolve(remote: Path, revision: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    container = resolve_commit(BASE)
    env = {e.name: e.value for e in container.env if getattr(e, "value", None) is not None}
    env |= {"REPOSITORY": str(remote), "REVISION": revision, "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    env["PATH"] = os.environ["PATH"]
    return subprocess.run(container.command, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("revision", ["main", "first", "merged"])
def test_a_commit_on_main_resolves(
    remote: tuple[Path, dict[str, str]], tmp_path: Path, revision: str
) -> None:
    bare, commits = remote
    done = _resolve(bare, MAIN_BRANCH if revision == "main" else commits[revision], tmp_path)
    assert (done.returncode, done.stdout.strip()) == (
        0,
        commits["merged" if revision == "main" else revision],
    )


@pytest.mark.parametrize("revision", ["feature", "v-unmerged", "sha"])
def test_an_unmerged_branch_tag_or_commit_is_refused(
    remote: tuple[Path, dict[str, str]], tmp_path: Path, revision: str
) -> None:
    bare, commits = remote
    done = _resolve(bare, commits["unmerged"] if revision == "sha" else revision, tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    shown = commits["unmerged"] if revision == "sha" else revision
    assert done.stderr.strip() == (
        f"commit {commits['unmerged']} ({shown}) is not on main of {bare}: the workflow builds and promotes "
        "only commits merged into main; merge the pull request, then run it again"
    )
