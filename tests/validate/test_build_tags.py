"""MLOPS110: an in-cluster build that pushes a tag CI pushes too is reported, with the file, task and tag."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import yaml
from mlops import cli
from mlops.validate.objects.violations import HINTS
from support.validate_cli import by_folder

WORKFLOW = "base/workflows/generated/train-and-promote.yaml"
# dev's registry is set by the generated patch, which is where the rendered value comes from.
DEV_PATCH = "overlays/dev/workflows/generated/train-and-promote.patch.yaml"
BUILT = "mlops/trainer:wf-{{tasks.resolve-commit.outputs.result}}"
PLANTED = "mlops/trainer:{{tasks.resolve-commit.outputs.result}}"


def _destination_field(repo: Path) -> str:
    workflow = yaml.safe_load((repo / WORKFLOW).read_text())
    for t_index, template in enumerate(workflow["spec"]["templates"]):
        for k_index, task in enumerate((template.get("dag") or {}).get("tasks") or []):
            for p_index, param in enumerate(task.get("arguments", {}).get("parameters", [])):
                if param["name"] == "destination" and BUILT in str(param["value"]):
                    where = f"spec.templates[{t_index}].dag.tasks[{k_index}]"
                    return f"{where}.arguments.parameters[{p_index}].value"
    raise AssertionError(f"no trainer build destination in {WORKFLOW}")


@pytest.fixture(scope="module")
def planted(repo_copy: Path, crds_dir: Path) -> tuple[list[str], str]:
    # The trainer build goes back to CI's tag scheme: the bare commit.
    path = repo_copy / DEV_PATCH
    text = path.read_text()
    assert BUILT in text, f"{DEV_PATCH} no longer builds {BUILT}: update the planted defect"
    path.write_text(text.replace(BUILT, PLANTED))
    mp = pytest.MonkeyPatch()
    mp.setenv("MLOPS_REPO", str(repo_copy))
    mp.setenv("MLOPS_CRDS_DIR", str(crds_dir))
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = cli.main(["validate", "dev"])
    finally:
        mp.undo()
    assert code == 1
    return out.getvalue().splitlines(), _destination_field(repo_copy)


def test_a_build_under_cis_commit_tag_is_reported(planted: tuple[list[str], str]) -> None:
    lines, field = planted
    ref = f"111122223333.dkr.ecr.us-west-2.amazonaws.com/{PLANTED}"
    assert (
        f"overlays/dev/workflows: WorkflowTemplate/train-and-promote: {field}: the build pushes "
        f'"{ref}", whose tag is a 40-hex commit as .github/workflows/images.yaml pushes too: ECR tags '
        "are immutable, so whichever of the two pushes mlops/trainer second fails "
        f"[MLOPS110: {HINTS['MLOPS110']}]"
    ) in by_folder(lines)


def test_the_other_build_stays_apart(planted: tuple[list[str], str]) -> None:
    lines, _ = planted
    assert [line for line in lines if "MLOPS110" in line and "mlops/git-bot" in line] == []
