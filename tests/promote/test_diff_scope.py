"""`mlops diff` renders only the folders a change reaches, and says exactly what rendering all would.

Each case edits a clone the way a pull request would, then compares the markdown of the
scoped diff with the markdown of a diff that renders every folder on both sides.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from mlops.conventions.environments import ENVS
from mlops.rendering.manifest_diff import (
    changed_paths,
    compare,
    diff_markdown,
    exported_tree,
    to_markdown,
    untouched,
)
from promote_support import git


def _bump_dev_version(clone: Path) -> None:
    file = clone / "overlays/dev/models/support-chat/model-version.yaml"
    file.write_text(file.read_text().replace('version: "1"', 'version: "9"'))


def _edit_shared_base(clone: Path) -> None:
    file = clone / "base/models/vllm/deployment.yaml"
    text = file.read_text()
    assert "terminationGracePeriodSeconds:" in text
    file.write_text(text.replace("terminationGracePeriodSeconds:", "terminationGracePeriodSeconds: 61 #"))


def _edit_named_patch(clone: Path) -> None:
    file = clone / "overlays/prod/models/support-chat/resources.yaml"
    file.write_text(file.read_text() + "\n# a comment changes no object\n")


def _add_untracked_model(clone: Path) -> None:
    src = clone / "overlays/dev/models/support-chat"
    dst = src.with_name("support-bot")
    shutil.copytree(src, dst)
    for file in dst.iterdir():
        file.write_text(file.read_text().replace("support-chat", "support-bot"))


def _remove_a_folder(clone: Path) -> None:
    git(clone, "rm", "-q", "-r", "overlays/dev/models/support-chat")


def _unread_file(clone: Path) -> None:
    (clone / "overlays/dev/models/support-chat/NOTES.md").write_text("not named by any kustomization\n")


CASES: dict[str, tuple[Callable[[Path], None], set[str]]] = {
    # edit -> folders that must be rendered (the ones the change reaches)
    "a promote": (_bump_dev_version, {"overlays/dev/models/support-chat"}),
    "a shared base": (_edit_shared_base, {f"overlays/{e}/models/support-chat" for e in ENVS}),
    "a patch file": (_edit_named_patch, {"overlays/prod/models/support-chat"}),
    "an untracked model": (_add_untracked_model, {"overlays/dev/models/support-bot"}),
    "a removed model": (_remove_a_folder, set()),
    "a file nothing reads": (_unread_file, {"overlays/dev/models/support-chat"}),
}


@pytest.mark.parametrize("case", CASES)
def test_scoped_diff_says_what_rendering_every_folder_says(clone: Path, case: str) -> None:
    edit, reached = CASES[case]
    edit(clone)
    changed = changed_paths(clone, "HEAD", None)
    skipped = untouched(clone, ENVS, changed)
    assert untouched(clone, ENVS, []) - skipped == reached  # rendered: only what the change reaches
    with exported_tree(clone, "HEAD") as base:
        everything = to_markdown(compare(base, clone, ENVS), "HEAD", "working tree")
    assert diff_markdown(clone, "HEAD") == everything
    quiet = case in ("a patch file", "a file nothing reads")  # a comment, a file no build reads
    assert ("No rendered resource changes." in everything) == quiet, everything


def test_diff_from_an_empty_first_commit_shows_every_object_added(tmp_path: Path) -> None:
    repo_root = Path(__file__).resolve().parents[2]
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "empty")
    for name in ("apps", "base", "clusters", "overlays"):
        shutil.copytree(repo_root / name, tmp_path / name)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "the platform")
    out = diff_markdown(tmp_path, "HEAD~1", "HEAD")
    for env in ENVS:
        assert f"**{env}**: " in out and " added" in out.split(f"**{env}**: ")[1].splitlines()[0]
    assert "(removed)" not in out and "(changed)" not in out and "Render failures" not in out
