"""`mlops images pin`: prod's overlays pin the platform images by digest, and nothing else moves."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from mlops import cli
from mlops.repository import bootstrap
from mlops.validate.env_rules.delivery import repository_version
from support.validate_cli import by_folder

GATEWAY = "sha256:" + "a" * 64
GIT_BOT = "sha256:" + "b" * 64
PINNED = {
    "overlays/prod/gateway/kustomization.yaml",
    "overlays/prod/mlflow/kustomization.yaml",
    "overlays/prod/model-alias-sync/kustomization.yaml",
}


def _mlops(repo: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_REPO", str(repo))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _overlay_texts(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): p.read_text() for p in sorted((repo / "overlays").rglob("*.yaml"))}


def test_pin_rewrites_only_prods_images_entries_and_prod_renders_and_validates(repo_copy: Path) -> None:
    release = repository_version(repo_copy)
    before = _overlay_texts(repo_copy)
    digests = repo_copy / "digests.txt"
    digests.write_text(
        f"# image digest\ngateway {GATEWAY}\nmlflow {GATEWAY}\ngit-bot {GIT_BOT}\ntrainer {GIT_BOT}\n"
    )
    code, out, err = _mlops(
        repo_copy, "images", "pin", "--env", "prod", "--release", release, "--digests", str(digests)
    )
    assert code == 0, err
    assert "mlops/trainer: no images: entry" in out
    after = _overlay_texts(repo_copy)
    assert {path for path in after if after[path] != before[path]} == PINNED
    gateway = after["overlays/prod/gateway/kustomization.yaml"]
    old_lines, new_lines = (
        before["overlays/prod/gateway/kustomization.yaml"].splitlines(),
        gateway.splitlines(),
    )
    # comments and order kept: the only change is the tag line and the digest line after it
    assert new_lines[: len(old_lines) - 1] == old_lines[:-1]
    assert new_lines[-2:] == [f"    newTag: {release}", f"    digest: {GATEWAY}"]

    # A model in bootstrap mode renders no alias hook: serve it, as its first promote does.
    served = repo_copy / "overlays/prod/models/support-chat/kustomization.yaml"
    served.write_text(bootstrap.without_bootstrap(served.read_text()))
    version_file = served.with_name("model-version.yaml")  # and its digest, as promote writes it
    version_file.write_text(
        version_file.read_text().replace("weightsDigest: none", f"weightsDigest: sha256:{'ab' * 32}")
    )
    code, rendered, err = _mlops(repo_copy, "render", "prod")
    assert code == 0, err
    images = {
        line.split("image: ", 1)[1]
        for line in rendered.splitlines()
        if "image: " in line and "/mlops/" in line
    }
    registry = "444455556666.dkr.ecr.us-west-2.amazonaws.com"
    assert f"{registry}/mlops/gateway:{release}@{GATEWAY}" in images
    assert f"{registry}/mlops/mlflow:{release}@{GATEWAY}" in images
    assert f"{registry}/mlops/git-bot:{release}@{GIT_BOT}" in images

    code, out, err = _mlops(repo_copy, "validate")
    assert code == 0, out + err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["gateway=sha256:" + "A" * 64], "is not sha256:<64 lowercase hex>"),
        (["gateway=sha256:abc"], "is not sha256:<64 lowercase hex>"),
        (["gateway"], "is not IMAGE=sha256:<64 hex>"),
        ([f"gateway={GATEWAY}", "vllm=" + GATEWAY], "builds no mlops/vllm"),
        ([f"gateway={GATEWAY}", f"gateway={GIT_BOT}"], "two digests"),
        (["--release", "v1.2.3", f"gateway={GATEWAY}"], "is not X.Y.Z"),
        ([], "no digests given"),
    ],
)
def test_bad_input_exits_2_and_changes_nothing(repo_copy: Path, argv: list[str], message: str) -> None:
    before = _overlay_texts(repo_copy)
    release = ["--release", "0.3.0"] if "--release" not in argv else []
    code, out, err = _mlops(repo_copy, "images", "pin", "--env", "prod", *release, *argv)
    assert code == 2
    assert message in err
    assert _overlay_texts(repo_copy) == before


def test_needed_lists_every_release_the_overlays_pull(repo_root: Path) -> None:
    code, out, err = _mlops(repo_root, "images", "needed")
    assert code == 0, err
    lines = out.splitlines()
    # git-bot: the alias hook's pin (not rendered while the model is in bootstrap mode, still
    # needed at its first promote) and the canary CronWorkflow's GIT_BOT_TAG
    assert "mlops/git-bot:0.4.0  release  dev, prod" in by_folder(lines)
    assert "mlops/gateway:0.4.0  release  dev, prod" in by_folder(lines)
    assert [line for line in lines if line.startswith("cut release")] == [
        "cut release v0.4.0 (the overlays pull gateway, git-bot, mlflow at it)",
    ]


def test_first_apply_quotes_what_needed_prints(repo_root: Path) -> None:
    text = (repo_root / "docs/first-apply.md").read_text()
    quoted = text.split("<!-- mlops images needed -->\n```\n", 1)[1].split(
        "```\n<!-- /mlops images needed -->"
    )[0]
    code, out, err = _mlops(repo_root, "images", "needed")
    assert code == 0, err
    assert quoted == out, "docs/first-apply.md's `mlops images needed` block differs: paste its output there"
