"""A kustomization that does not build is reported once, with kustomize's message, and nothing else follows.

Issue 22: a leaf that failed to build also drew MLOPS010 ("fix the ApplicationSet path") for the
same folder, and every reference to an object it would have rendered was reported missing. Here
prod's stable model folder (with a canary beside it) and prod's cluster root both fail to build;
`mlops validate prod` must print the two failures and no line that follows from them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.validate_cli import validate_lines

MODELS = "overlays/prod/models"


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    models = repo_copy / MODELS
    shutil.copytree(models / "support-chat", models / "support-chat-canary")
    (models / "support-chat-canary/canary-plan.yaml").unlink()
    canary = models / "support-chat-canary/kustomization.yaml"
    canary.write_text(
        canary.read_text()
        .replace("namePrefix: support-chat-", "namePrefix: support-chat-canary-")
        .replace("components:\n", "components:\n  - ../../../../base/models/components/canary\n", 1)
    )
    stable = models / "support-chat/kustomization.yaml"
    stable.write_text(stable.read_text().replace("- path: resources.yaml", "- path: resource.yaml"))
    root = repo_copy / "clusters/prod/kustomization.yaml"
    root.write_text(root.read_text().replace("  - ../../apps\n", "  - ../../app\n"))
    return validate_lines(repo_copy, crds_dir, "prod")


def _line_of(path: str, text: str) -> int:
    lines = (Path(__file__).resolve().parents[2] / path).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def test_each_failure_is_one_line_on_the_kustomization_line_that_names_the_path(lines: list[str]) -> None:
    problems = [line for line in lines if not line.startswith("notice:") and " problem" not in line]
    stable = f"{MODELS}/support-chat/kustomization.yaml"
    assert sorted(line.split(": kustomize build failed: ")[0] for line in problems) == [
        f"clusters/prod/kustomization.yaml:{_line_of('clusters/prod/kustomization.yaml', '../../apps')}: "
        "Kustomization/cluster: (build)",
        f"{stable}:{_line_of(stable, 'path: resources.yaml')}: Kustomization/models/support-chat: (build)",
    ], lines
    assert any("failed to get the patch file from path(resource.yaml)" in line for line in problems)


def test_nothing_derived_from_the_failures(lines: list[str]) -> None:
    # No "does not build" (MLOPS010), no overlay "not reached" because the root's ApplicationSets are
    # unknown (MLOPS011), no canary "without its stable deployment" (MLOPS075), no missing references.
    derived = ("[MLOPS010:", "[MLOPS011:", "[MLOPS075:", "[MLOPS06")
    assert not [line for line in lines if any(policy in line for policy in derived)], lines
    assert lines[-1].startswith("2 problems in ")
    notice = "notice: prod: 2 kustomizations did not build (clusters/prod, "
    assert any(line.startswith(notice) for line in lines)
