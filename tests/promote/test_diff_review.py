"""`mlops diff` as a reviewer reads it: embedded files as lines, route weights and weights-only changes in
the summary, and `--base REF...` showing only what the change does."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops.cli import main
from mlops.rendering.manifest_diff import diff_markdown
from promote_support import git

ROUTES = "overlays/dev/gateway/routes.yaml"
DEV_FILE = "overlays/dev/models/support-chat/model-version.yaml"


def _route_canary(clone: Path, weight: int) -> None:
    file = clone / ROUTES
    text = file.read_text()
    old = "        weight: 100\n"
    assert old in text
    file.write_text(
        text.replace(
            old,
            f"        weight: {100 - weight}\n"
            "      canary:\n"
            "        url: http://support-chat-canary-vllm.models.svc.cluster.local:8000\n"
            f"        weight: {weight}\n",
        )
    )


def test_routes_yaml_in_its_configmap_diffs_line_by_line_and_the_summary_names_the_weights(
    clone: Path,
) -> None:
    _route_canary(clone, 10)

    out = diff_markdown(clone, "HEAD", envs=("dev",))

    # the changed lines of routes.yaml, not one escaped string
    assert "-            weight: 100\n+            weight: 90\n" in out, out
    assert "+            weight: 10\n" in out
    assert "\\n" not in out
    assert "**Route weights**\n\n- dev `support-chat`: stable 100 → 90, canary none → 10\n" in out


def test_a_weights_only_change_is_in_the_model_summary(clone: Path) -> None:
    file = clone / DEV_FILE
    text = file.read_text()
    assert "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f" in text
    file.write_text(text.replace("0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f", "ffffffffffffffffffffffffffffffff"))

    out = diff_markdown(clone, "HEAD", envs=("dev",))

    assert "- dev `support-chat`: version 1 unchanged, weights changed (`weightsUri`)" in out, out


def test_three_dot_base_shows_only_what_the_branch_changes(
    clone: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    git(clone, "checkout", "-q", "-b", "feature/canary")
    _route_canary(clone, 10)
    git(clone, "commit", "-q", "-am", "Route 10% of support-chat to its canary")
    # main moves on after the branch was cut: the weights-only change is not this branch's
    git(clone, "checkout", "-q", "main")
    file = clone / DEV_FILE
    file.write_text(file.read_text().replace("0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f", "e" * 32))
    git(clone, "commit", "-q", "-am", "Re-upload support-chat v1 weights")
    git(clone, "checkout", "-q", "feature/canary")
    monkeypatch.setenv("MLOPS_REPO", str(clone))

    capsys.readouterr()
    assert main(["diff", "--base", "main...", "--env", "dev"]) == 0
    three_dot = capsys.readouterr().out
    assert main(["diff", "--base", "main", "--env", "dev"]) == 0
    two_dot = capsys.readouterr().out

    assert "canary none → 10" in three_dot and "weights changed" not in three_dot, three_dot
    assert "(merge base " in three_dot.splitlines()[0]
    assert "weights changed" in two_dot  # against main's tip: a reversal this branch never made

    assert main(["diff", "--base", "main...other"]) == 2
    assert "a three-dot base is REF..." in capsys.readouterr().err
